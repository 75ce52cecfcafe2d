"""Fuzzing the HTTP GraphQL endpoint (issue 6, "Fuzzing").

Generated operations (hypothesis-graphql over ``schema.graphql``: valid ones, ones with one
schema violation, randomly edited ones, pathological and random strings), hand-written
operations with generated variables (well- and ill-typed), and malformed HTTP requests go
through httpx's ASGITransport to the real app on a real database, signed in as nobody, a
user, an analyst, an admin, or with a broken token. For every request:

- never a 5xx;
- the answer to a GraphQL request is a well-formed GraphQL response: a JSON object with
  ``data`` and/or ``errors``, every error with a message and an ``extensions.code`` from the
  Apollo set, and never INTERNAL_SERVER_ERROR;
- a rejected request (parse or validation failure, bad variables, a typed UserError, a
  top-level error with no data, a replayed answer, or any query) changes no row count in
  any table a request can write;
- a new completion adds exactly one completion, one stored key, and one event or failure
  record as its analytics status says; an exact retry gets the same answer (the stored one,
  ``replayed: true``, for a success); the storage invariants hold after every submission.

Examples are derandomized (fixed per test) and the example database is off, so CI sees the
same examples on every run.
"""

from __future__ import annotations

import json
import re
from typing import Any

import graphql
from hypothesis import HealthCheck, given, note
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from app.flow_file import DEFAULT_FLOW
from tests.fuzz.harness import Harness
from tests.fuzz.properties import check_http, must_not_write, operation_types, parse, with_typenames
from tests.fuzz.strategies import (
    COMPLETE_STEP,
    RawRequest,
    auth_headers,
    auth_labels,
    complete_step_operations,
    invalid_documents,
    malformed_requests,
    mostly_admin,
    other_operations,
    valid_documents,
    variable_requests,
)
from tests.invariants import assert_core_invariants

#: Rejections by the abuse limits (tokens, depth, aliases), the only ones a valid document gets.
ABUSE_LIMIT = re.compile(r"more than \d+ tokens|exceeds maximum operation depth|aliases found")


def fuzz(max_examples: int) -> hypothesis_settings:
    """Deterministic and moderate: each example is one or more real HTTP requests on a real
    database. ``too_slow`` is suppressed because generating a document and round-tripping
    it through the app and the database is legitimately slower than hypothesis expects of
    data generation; nothing else is."""
    return hypothesis_settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


def log(message: str) -> None:
    """Kept with a failing example; setup requests (outside any example) are not noted."""
    if currently_in_test_context():
        note(message)


def send(
    harness: Harness,
    document: str,
    variables: dict[str, Any] | None,
    headers: dict[str, str],
) -> dict[str, Any] | None:
    """POST one GraphQL request and check every property; returns the response body."""
    ast = parse(document)
    if ast is not None and "mutation" in operation_types(ast):
        ast = with_typenames(ast)
        document = graphql.print_ast(ast)
    payload: dict[str, Any] = {"query": document}
    if variables is not None:
        payload["variables"] = variables
    log(f"request: {json.dumps(payload)[:3000]}")
    before = harness.snapshot()
    response = harness.request(
        "POST",
        content=json.dumps(payload).encode(),  # allow_nan: NaN and Infinity get sent as such
        headers={"Content-Type": "application/json", **headers},
    )
    log(f"response {response.status_code}: {response.text[:3000]}")
    # Strawberry takes an empty document for a missing one: a request error (400, text).
    body = check_http(response, expect="graphql" if document else "any")
    after = harness.snapshot()
    if must_not_write(ast, body):
        assert after == before, (before, after)
    elif body is not None and list(body.get("data") or {}) == ["completeOnboardingStep"]:
        assert_recorded_once(body["data"]["completeOnboardingStep"], before, after)
    return body


def assert_same_answer(first: dict[str, Any] | None, again: dict[str, Any] | None) -> None:
    """An exact retry is answered like the first attempt: a success by the stored answer
    (``replayed: true``, same completion, progress and analytics), anything else by the
    same rejection."""
    assert first is not None and again is not None
    if not first.get("data"):
        assert [e["extensions"]["code"] for e in again["errors"]] == [
            e["extensions"]["code"] for e in first["errors"]
        ], (first, again)
        return
    result = first["data"]["completeOnboardingStep"]
    retried = again["data"]["completeOnboardingStep"]
    if result["__typename"] != "CompleteOnboardingStepSuccess":
        assert retried == result, (first, again)
        return
    assert retried["replayed"] is True, again
    assert {**retried, "replayed": False} == {**result, "replayed": False}, (first, again)


def assert_recorded_once(
    result: dict[str, Any], before: dict[str, int], after: dict[str, int]
) -> None:
    """A new completion (not a replay) adds exactly one completion and one stored key, and
    exactly one event or failure record when its step counts toward a KPI."""
    if result.get("__typename") != "CompleteOnboardingStepSuccess" or result.get("replayed"):
        return
    assert after["step_completions"] == before["step_completions"] + 1, (before, after)
    assert after["idempotency_keys"] == before["idempotency_keys"] + 1, (before, after)
    status = str((result.get("analytics") or {}).get("status"))
    added = {
        "RECORDED": (1, 0),
        "FAILED": (0, 1),
        "NOT_APPLICABLE": (0, 0),
    }.get(status)
    if added is not None:
        events = after["kpi_events"] - before["kpi_events"]
        failures = after["analytics_failures"] - before["analytics_failures"]
        assert (events, failures) == added, (status, before, after)


def test_valid_generated_operations(harness: Harness) -> None:
    headers = auth_headers(harness.settings, harness.tokens)

    @fuzz(max_examples=80)
    @given(document=valid_documents, auth=mostly_admin)
    def example(document: str, auth: str) -> None:
        body = send(harness, document, None, headers[auth])
        assert body is not None
        # A valid document is never rejected as a document, unless by an abuse limit.
        for error in body.get("errors", []):
            if error["extensions"]["code"] in {"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"}:
                assert ABUSE_LIMIT.search(error["message"]), error

    example()
    harness.run(assert_core_invariants(harness.engine, DEFAULT_FLOW))


def test_invalid_generated_operations(harness: Harness) -> None:
    headers = auth_headers(harness.settings, harness.tokens)

    @fuzz(max_examples=80)
    @given(document=invalid_documents, auth=auth_labels)
    def example(document: str, auth: str) -> None:
        send(harness, document, None, headers[auth])

    example()
    harness.run(assert_core_invariants(harness.engine, DEFAULT_FLOW))


def test_complete_step_with_generated_variables(harness: Harness) -> None:
    """Submissions: new, retried (a small pool of keys), conflicting, ineligible, invalid,
    ill-typed, from various users; every answer checked, and the invariants after each."""
    headers = auth_headers(harness.settings, harness.tokens)

    @fuzz(max_examples=60)
    @given(request=variable_requests(complete_step_operations), retries=st.integers(0, 2))
    def example(request: tuple[str, dict[str, Any], str], retries: int) -> None:
        document, variables, auth = request
        first = send(harness, document, variables, headers[auth])
        for _ in range(retries):
            again = send(harness, document, variables, headers[auth])
            assert_same_answer(first, again)
        harness.run(assert_core_invariants(harness.engine, DEFAULT_FLOW))

    example()


def test_queries_with_generated_variables(harness: Harness) -> None:
    """The analytics queries, the replay and the progress query, with well- and ill-typed
    variables, after a few completions so that pages, series and funnels hold data."""
    headers = auth_headers(harness.settings, harness.tokens)
    for user in ("user", "user-2"):
        for step in (1, 2, 3):
            key = f"seed-{user}-{step}-000000000000"
            variables = {"input": {"step": step, "idempotencyKey": key, "source": "web"}}
            body = send(harness, COMPLETE_STEP, variables, headers[user])
            assert body is not None and "errors" not in body, body

    @fuzz(max_examples=40)
    @given(request=variable_requests(other_operations))
    def example(request: tuple[str, dict[str, Any], str]) -> None:
        document, variables, auth = request
        send(harness, document, variables, headers[auth])

    example()


def test_malformed_http_requests(harness: Harness) -> None:
    @fuzz(max_examples=40)
    @given(request=malformed_requests)
    def example(request: RawRequest) -> None:
        before = harness.snapshot()
        response = harness.request(request.method, **request.kwargs())
        note(f"response {response.status_code}: {response.text[:2000]}")
        # Some of these are accidentally well-formed (a body that is a valid request, a GET
        # of a query, a padded request under the size limit): "any" still requires a
        # GraphQL response to every 200.
        check_http(response, expect="any" if request.method in {"POST", "GET"} else "rejection")
        assert harness.snapshot() == before

    example()
