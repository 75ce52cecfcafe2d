"""Schema assembly and the Strawberry ASGI view."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import strawberry
from cross_web import HTTPException
from graphql import ASTValidationRule, GraphQLError, NoSchemaIntrospectionCustomRule
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as create_alias_validator
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionContext, ExecutionResult

from app.config import Settings
from app.graphql_errors import classify
from app.graphql_limits import depth_limit_rule
from resolvers.context import Context, Loaders, Services
from resolvers.root import Mutation, Query
from schema.scalars import AwareDateTime


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Silence Strawberry's own logging: ``classify`` logs each unexpected error once."""


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema with its abuse limits.

    The limits are validation rules, created once here: ValidationCache keys on the rule
    classes, so rules made afresh per request (as Strawberry's limiter extensions do when
    constructed per request) would miss the cache and re-validate every document.
    """
    settings = settings or Settings()
    rules: list[type[ASTValidationRule]] = [
        depth_limit_rule(settings.max_query_depth),
        create_alias_validator(settings.max_aliases),
    ]
    if not settings.introspection_enabled:
        rules.append(NoSchemaIntrospectionCustomRule)
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: AddValidationRules(rules),  # before the cache, which then includes them
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
    ]
    return Schema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        config=StrawberryConfig(scalar_map={datetime: AwareDateTime}),
    )


def export_sdl() -> str:
    return build_schema(Settings(env="development")).as_str() + "\n"


GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"


class _SubResponse(Response):
    """Strawberry's per-request response stub, remembering its request for negotiation."""

    request: Request


def wants_graphql_response_json(request: Request) -> bool:
    """GraphQL over HTTP: clients that accept the new media type get its semantics."""
    return GRAPHQL_RESPONSE_JSON in request.headers.get("accept", "")


class GraphQLView(GraphQL[Context, None]):
    """``GET /graphql`` serves GraphiQL to browsers; ``POST /graphql`` executes operations.

    Follows the GraphQL-over-HTTP spec: with ``Accept: application/graphql-response+json``
    the answer has that media type, and a request that fails before execution (parse,
    validation, variable coercion) gets 400 and no ``data``; ``application/json`` clients
    keep the legacy 200. A mutation sent with GET gets 405.
    """

    def __init__(self, schema: strawberry.Schema, *, services: Services, **kwargs: Any) -> None:
        super().__init__(schema, **kwargs)
        self._services = services

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        if result.errors:
            result.errors = [classify(error) for error in result.errors]
        response = process_result(result)
        errors = result.errors or []
        failed_before_execution = (
            result.data is None and bool(errors) and all(e.path is None for e in errors)
        )
        if failed_before_execution and wants_graphql_response_json(request):
            request.state.graphql_status = 400
            response.pop("data", None)
        return response

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = _SubResponse()
        sub_response.status_code = None  # type: ignore[assignment]
        del sub_response.headers["content-length"]
        assert isinstance(request, Request)
        sub_response.request = request
        return sub_response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        request = getattr(sub_response, "request", None)
        if request is not None and wants_graphql_response_json(request):
            response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
            response.status_code = getattr(request.state, "graphql_status", response.status_code)
        return response

    def parse_json(self, data: str | bytes) -> Any:
        """A body that is not a JSON object (or a list, refused later as a batch) is a 400."""
        try:
            decoded = self.decode_json(data)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
            raise HTTPException(400, "Unable to parse request body as JSON") from exc
        if not isinstance(decoded, dict | list):
            raise HTTPException(400, "The request body must be a JSON object")
        return decoded

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        try:
            return await super().execute_single(*args, **kwargs)
        except HTTPException as exc:
            if isinstance(exc.__cause__, InvalidOperationTypeError):
                raise HTTPException(405, "Mutations are only accepted with POST.") from exc
            raise

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
