"""What every answer of the GraphQL endpoint must satisfy, whatever it was sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import graphql
import httpx

SDL = (Path(__file__).resolve().parents[2] / "schema.graphql").read_text()
SCHEMA = graphql.build_schema(SDL)

#: Every top-level error carries one of these (Apollo-style ``extensions.code``).
ERROR_CODES = frozenset(
    {
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
        "BAD_USER_INPUT",
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "INTERNAL_SERVER_ERROR",
    }
)
#: A bug or an outage; generated input must never cause one.
UNEXPECTED = "INTERNAL_SERVER_ERROR"
_user_error = SCHEMA.get_type("UserError")
assert isinstance(_user_error, graphql.GraphQLInterfaceType)
#: Typed errors of the result unions: "rejected, nothing recorded".
USER_ERROR_TYPES = frozenset(t.name for t in SCHEMA.get_implementations(_user_error).objects)

JSON_TYPES = ("application/json", "application/graphql-response+json")
#: Statuses a well-formed GraphQL request may get without a GraphQL body (size limits).
BODYLESS_STATUSES = frozenset({413})
#: The body-size limit answers 413 with its own code, outside the Apollo set: accepted on a
#: 413 only (reported to the team: document it, or use BAD_USER_INPUT).
LIMIT_CODES = {413: frozenset({"PAYLOAD_TOO_LARGE"})}


def is_json(response: httpx.Response) -> bool:
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    return media_type in JSON_TYPES


def check_http(response: httpx.Response, *, expect: str) -> dict[str, Any] | None:
    """No 5xx, ever. Then, by what was sent (``expect``):

    - ``"graphql"``, a well-formed GraphQL request: a GraphQL response (or a bodyless 413);
    - ``"rejection"``, a request that is not one: a 4xx;
    - ``"any"``: either (a 200 is a GraphQL response).

    A JSON body is always a well-formed GraphQL response, and a non-200 one carries no data
    (only a request error, before execution, may answer with a 4xx). Returns the body, or
    None when there is no JSON body.
    """
    assert expect in {"graphql", "rejection", "any"}, expect
    status, text = response.status_code, response.text[:2000]
    assert status < 500, (status, text)
    if expect == "rejection":
        assert 400 <= status < 500, (status, text)
    if (expect == "graphql" and status not in BODYLESS_STATUSES) or status == 200:
        assert is_json(response), (status, response.headers, text)
    if not is_json(response):
        return None
    body = json.loads(response.content)
    check_graphql_body(body, extra_codes=LIMIT_CODES.get(status, frozenset()))
    if status != 200:
        assert body.get("data") is None, body
    return body  # type: ignore[no-any-return]


def check_graphql_body(body: object, *, extra_codes: frozenset[str] = frozenset()) -> None:
    """A GraphQL response: an object with ``data`` and/or ``errors``; every error has a
    message, well-formed locations and path, and a known ``extensions.code`` that is never
    INTERNAL_SERVER_ERROR."""
    assert isinstance(body, dict), body
    assert set(body) <= {"data", "errors", "extensions"}, body
    assert "data" in body or "errors" in body, body
    if "data" in body:
        assert body["data"] is None or isinstance(body["data"], dict), body
    if "errors" not in body:
        assert body["data"] is not None, body
        return
    errors = body["errors"]
    assert isinstance(errors, list) and errors, body
    for error in errors:
        assert isinstance(error, dict), body
        assert isinstance(error.get("message"), str) and error["message"], body
        for location in error.get("locations") or []:
            assert isinstance(location, dict), body
            assert isinstance(location.get("line"), int), body
            assert isinstance(location.get("column"), int), body
        path = error.get("path")
        assert path is None or all(isinstance(p, str | int) for p in path), body
        extensions = error.get("extensions")
        assert isinstance(extensions, dict), body
        code = extensions.get("code")
        assert code in ERROR_CODES | extra_codes, body
        assert code != UNEXPECTED, body


def parse(document: str) -> graphql.DocumentNode | None:
    try:
        return graphql.parse(document)
    except graphql.GraphQLError:
        return None
    except RecursionError:  # our own parse of a pathological document; the server's is tested
        return None


def operation_types(document: graphql.DocumentNode | None) -> set[str]:
    if document is None:
        return set()
    return {
        d.operation.value
        for d in document.definitions
        if isinstance(d, graphql.OperationDefinitionNode)
    }


def with_typenames(document: graphql.DocumentNode) -> graphql.DocumentNode:
    """Select ``__typename`` (and ``replayed`` on a success) under every root mutation field,
    so the test can tell a rejected submission from a recorded one. Adding them changes
    neither validity nor the meaning of the document (fields merge with any selected twice).
    """
    success = graphql.parse("{ ... on CompleteOnboardingStepSuccess { replayed } }")
    assert isinstance(success.definitions[0], graphql.OperationDefinitionNode)
    replayed_fragment = success.definitions[0].selection_set.selections[0]
    typename = graphql.FieldNode(name=graphql.NameNode(value="__typename"))
    definitions = []
    for definition in document.definitions:
        if (
            isinstance(definition, graphql.OperationDefinitionNode)
            and definition.operation is graphql.OperationType.MUTATION
        ):
            roots = []
            for node in definition.selection_set.selections:
                if isinstance(node, graphql.FieldNode) and node.selection_set is not None:
                    extra = [typename]
                    if node.name.value == "completeOnboardingStep":
                        extra.append(replayed_fragment)  # type: ignore[arg-type]
                    node = graphql.FieldNode(
                        alias=node.alias,
                        name=node.name,
                        arguments=node.arguments,
                        directives=node.directives,
                        selection_set=graphql.SelectionSetNode(
                            selections=(*node.selection_set.selections, *extra)
                        ),
                    )
                roots.append(node)
            definition = graphql.OperationDefinitionNode(
                operation=definition.operation,
                name=definition.name,
                variable_definitions=definition.variable_definitions,
                directives=definition.directives,
                selection_set=graphql.SelectionSetNode(selections=tuple(roots)),
            )
        definitions.append(definition)
    return graphql.DocumentNode(definitions=tuple(definitions))


def must_not_write(document: graphql.DocumentNode | None, body: dict[str, Any] | None) -> bool:
    """Whether the request must have left the database as it was.

    True for anything that did not parse, any query, any request without data, and any
    mutation whose every root field was rejected (null, or a typed UserError) or answered
    from a stored result (``replayed: true``). False when some root field may have written,
    or when the answer does not say (a root field selected without ``__typename``).
    """
    kinds = operation_types(document)
    if "mutation" not in kinds or body is None or not body.get("data"):
        return True
    for value in body["data"].values():
        if value is None:
            continue
        if not isinstance(value, dict) or "__typename" not in value:
            return False
        if value["__typename"] in USER_ERROR_TYPES:
            continue
        if value["__typename"] == "CompleteOnboardingStepSuccess" and value.get("replayed"):
            continue
        return False
    return True
