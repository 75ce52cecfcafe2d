"""Schema assembly and the Strawberry ASGI view."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.types import ExecutionContext, ExecutionResult

from app.config import Settings
from app.graphql_errors import classify
from app.graphql_limits import QueryDepthLimit
from resolvers.context import Context, Loaders, Services
from resolvers.root import Mutation, Query


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Silence Strawberry's own logging: ``classify`` logs each unexpected error once."""


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema with its abuse limits; the limits add validation rules, so they come
    before ValidationCache (which caches a document's validation, limits included)."""
    settings = settings or Settings()
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: MaxAliasesLimiter(max_alias_count=settings.max_aliases),
        lambda: QueryDepthLimit(max_depth=settings.max_query_depth),
    ]
    if not settings.introspection_enabled:
        extensions.append(DisableIntrospection)
    extensions += [lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256)]
    return Schema(query=Query, mutation=Mutation, extensions=extensions)


def export_sdl() -> str:
    return build_schema(Settings(env="development")).as_str() + "\n"


class GraphQLView(GraphQL[Context, None]):
    """``GET /graphql`` serves GraphiQL to browsers; ``POST /graphql`` executes operations."""

    def __init__(self, schema: strawberry.Schema, *, services: Services, **kwargs: Any) -> None:
        super().__init__(schema, **kwargs)
        self._services = services

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        if result.errors:
            result.errors = [classify(error) for error in result.errors]
        return process_result(result)

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
