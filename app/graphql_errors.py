"""Top-level GraphQL errors: Apollo-style ``extensions.code`` on every one, and masking.

- errors raised on purpose by resolvers already carry a code (UNAUTHENTICATED,
  FORBIDDEN) and pass through unchanged; ``InvalidQuery`` becomes BAD_USER_INPUT;
- errors graphql-core reports before execution get GRAPHQL_PARSE_FAILED,
  GRAPHQL_VALIDATION_FAILED or, for variables that do not fit their types, BAD_USER_INPUT;
- anything else is a bug or an outage: the client sees a generic message with the request
  id (never a stack trace or SQL), and the server logs it once, with the trace.
"""

from __future__ import annotations

import structlog
from graphql import GraphQLError, GraphQLSyntaxError

from app.errors import InvalidQuery
from app.logging import get_logger

log = get_logger(__name__)


def classify(error: GraphQLError) -> GraphQLError:
    if error.extensions and "code" in error.extensions:
        return error
    original = error.original_error
    if isinstance(original, InvalidQuery):  # a resolver's argument out of bounds
        return GraphQLError(
            original.message,
            nodes=error.nodes,
            positions=error.positions,
            source=error.source,
            path=error.path,
            extensions={"code": "BAD_USER_INPUT"},
        )
    # graphql-core turns some bad literals into ValueErrors before execution (an Int over
    # 4300 digits): without a path they are the document's fault, not ours.
    before_execution = error.path is None and isinstance(original, ValueError | OverflowError)
    if original is None or isinstance(original, GraphQLError) or before_execution:
        if isinstance(error, GraphQLSyntaxError) or error.message.startswith("Syntax Error"):
            code = "GRAPHQL_PARSE_FAILED"
        elif error.message.startswith("Variable '$"):
            code = "BAD_USER_INPUT"
        else:
            code = "GRAPHQL_VALIDATION_FAILED"
        error.extensions = {**(error.extensions or {}), "code": code}
        return error
    request_id = structlog.contextvars.get_contextvars().get("request_id", "unknown")
    log.error("graphql.unexpected_error", path=error.path, error=repr(original), exc_info=original)
    return GraphQLError(
        f"Internal server error. Quote request id {request_id} when reporting it.",
        nodes=error.nodes,
        positions=error.positions,
        source=error.source,
        path=error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
    )
