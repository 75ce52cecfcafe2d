"""Schema assembly and the Strawberry ASGI view."""

from __future__ import annotations

from typing import Any

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache

from resolvers.context import Context, Loaders, Services
from resolvers.root import Mutation, Query


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=[lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256)],
    )


def export_sdl() -> str:
    return build_schema().as_str() + "\n"


class GraphQLView(GraphQL[Context, None]):
    """``GET /graphql`` serves GraphiQL to browsers; ``POST /graphql`` executes operations."""

    def __init__(self, schema: strawberry.Schema, *, services: Services, **kwargs: Any) -> None:
        super().__init__(schema, **kwargs)
        self._services = services

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        assert isinstance(request, Request) and isinstance(response, Response)
        return Context(
            request=request,
            response=response,
            services=self._services,
            loaders=Loaders(self._services),
        )
