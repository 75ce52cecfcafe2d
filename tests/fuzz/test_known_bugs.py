"""The minimal failing examples of the bugs the fuzzer found (see ``known_bugs.py``).

Each test states the correct behaviour, on one shared app per engine. While a bug is open
(its id in ``KNOWN_BUGS``) its cases are marked ``xfail(strict=True)`` on the engines where
they fail, so a fix makes them pass, which fails the suite until the id is removed (which
also lets the fuzzer generate those inputs again). All six are fixed now; the cases stay as
regression tests.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from app.auth import TokenCodec
from app.config import Settings
from tests.conftest import TEST_SECRET
from tests.databases import PostgresDatabases, SqliteDatabases, run_blocking
from tests.fuzz.harness import Harness, fuzz_settings
from tests.fuzz.known_bugs import (
    EXTREME_DATETIMES,
    FORGED_CURSORS,
    HUGE_INT_LITERALS,
    NAIVE_DATETIMES,
    UNDECODABLE_BODIES,
    UNSTORABLE_STRINGS,
    known,
)
from tests.fuzz.properties import check_http

BOTH = frozenset({"sqlite", "postgresql"})
POSTGRESQL = frozenset({"postgresql"})

#: What each bug broke, and the fix suggested to the team (the xfail reason while open).
REASONS = {
    UNDECODABLE_BODIES: (
        "a JSON-typed body that is not UTF-8, not an object/list, or nested too deeply is a "
        "500: Strawberry's parse_json catches only JSONDecodeError. Fix: override "
        "GraphQLView.parse_json to catch ValueError and RecursionError and to refuse "
        "non-object, non-list JSON, raising strawberry's HTTPException(400, ...)"
    ),
    NAIVE_DATETIMES: (
        "a DateTime without an offset reaches a comparison or a bound parameter: "
        "INTERNAL_SERVER_ERROR. Fix: refuse naive datetimes with BAD_USER_INPUT in "
        "onboardingFunnel, the kpiEvents filter and cursor decoding, as kpiEventSeries does "
        "(or make the DateTime scalar require an offset)"
    ),
    EXTREME_DATETIMES: (
        "datetimes near year 1 or 9999 overflow in series bucketing and cursor decoding: "
        "INTERNAL_SERVER_ERROR. Fix: catch OverflowError there and answer BAD_USER_INPUT, "
        "or bound accepted datetimes (say 1970..9000)"
    ),
    FORGED_CURSORS: (
        "a well-encoded cursor with an out-of-range id (2**63, 2**31 on PostgreSQL, true) or a "
        "non-UUID event id reaches SQL: INTERNAL_SERVER_ERROR. Fix: in decode_cursor's callers "
        "require an int (not bool) within 0..2**31-1 for failures, a UUID and an aware "
        "timestamp for events, else InvalidQuery"
    ),
    UNSTORABLE_STRINGS: (
        "filter strings with lone surrogates (both engines) or NUL (PostgreSQL), and tokens "
        "whose sub holds NUL (PostgreSQL), reach SQL: INTERNAL_SERVER_ERROR. Fix: refuse them "
        "as BAD_USER_INPUT in the kpiEvents filter, and make TokenCodec.authenticate refuse "
        "such a sub ('names no valid user'); the same token now gets a PersistenceError with "
        "retryable: true from completeOnboardingStep, which no retry can fix"
    ),
    HUGE_INT_LITERALS: (
        "an Int literal over 4300 digits makes graphql-core's literal check raise ValueError; "
        "classify masks it as INTERNAL_SERVER_ERROR. Fix: in classify, errors without a path "
        "(raised before execution) are GRAPHQL_VALIDATION_FAILED, never masked"
    ),
}
CLIENT_ERRORS = {"BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED"}


@dataclass(frozen=True)
class Case:
    id: str
    bug: str
    query: str = ""
    variables: dict[str, Any] | None = None
    user: str = "ana"
    roles: tuple[str, ...] = ("admin",)
    body: bytes | None = None
    broken_on: frozenset[str] = field(default=BOTH)


def cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode()


FUNNEL = "query($f: DateTime!, $t: DateTime!) { onboardingFunnel(from: $f, to: $t) { from } }"
EVENTS = "query($filter: KpiEventFilter, $after: String) { kpiEvents(filter: $filter, after: $after) { totalCount edges { cursor } } }"  # noqa: E501
FAILURES = "query($after: String) { analyticsFailures(after: $after) { totalCount } }"
SERIES = (
    "query($f: DateTime!, $t: DateTime!, $i: TimeInterval!) { kpiEventSeries("
    'kpiId: "onboarding.completed", from: $f, to: $t, interval: $i) { totalEvents } }'
)
NESTED = b'{"query": "{ __typename }", "variables": {"v": %s}}' % (b"[" * 5000 + b"]" * 5000)

CASES = [
    Case("non-utf8-body", UNDECODABLE_BODIES, body=b"\x80"),
    Case("utf32-looking-body", UNDECODABLE_BODIES, body=b"\x00\x00\x00\x00\x00"),
    Case("null-body", UNDECODABLE_BODIES, body=b"null"),
    Case("number-body", UNDECODABLE_BODIES, body=b"1"),
    Case("string-body", UNDECODABLE_BODIES, body=b'"{ __typename }"'),
    Case("deeply-nested-body", UNDECODABLE_BODIES, body=NESTED),
    Case(
        "funnel-aware-to-naive",
        NAIVE_DATETIMES,
        FUNNEL,
        {"f": "2026-01-01T00:00:00+00:00", "t": "2026-01-02T00:00:00"},
    ),
    Case(
        "funnel-naive",
        NAIVE_DATETIMES,
        FUNNEL,
        {"f": "2026-01-01T00:00:00", "t": "2026-01-02T00:00:00"},
    ),
    Case(
        "events-filter-naive",
        NAIVE_DATETIMES,
        EVENTS,
        {"filter": {"occurredFrom": "2026-01-01T00:00:00"}},
    ),
    Case(
        "events-cursor-naive",
        NAIVE_DATETIMES,
        EVENTS,
        {"after": cursor("2026-01-01T00:00:00", "00000000-0000-0000-0000-000000000000")},
    ),
    Case(
        "series-year-1",
        EXTREME_DATETIMES,
        SERIES,
        {"f": "0001-01-01T00:00:00+14:00", "t": "0001-01-02T00:00:00+00:00", "i": "DAY"},
    ),
    Case(
        "series-year-9999",
        EXTREME_DATETIMES,
        SERIES,
        {"f": "9999-12-31T00:00:00+00:00", "t": "9999-12-31T23:00:00+00:00", "i": "WEEK"},
    ),
    Case(
        "events-cursor-year-1",
        EXTREME_DATETIMES,
        EVENTS,
        {"after": cursor("0001-01-01T00:00:00+14:00", "00000000-0000-0000-0000-000000000000")},
    ),
    Case("failures-cursor-2**63", FORGED_CURSORS, FAILURES, {"after": cursor(2**63)}),
    Case("failures-cursor-true", FORGED_CURSORS, FAILURES, {"after": cursor(True)}),
    Case(
        "failures-cursor-2**31",
        FORGED_CURSORS,
        FAILURES,
        {"after": cursor(2**31)},
        broken_on=POSTGRESQL,
    ),
    Case(
        "events-cursor-not-a-uuid",
        FORGED_CURSORS,
        EVENTS,
        {"after": cursor("2026-01-01T00:00:00+00:00", "x")},
        broken_on=POSTGRESQL,
    ),
    Case("events-user-surrogate", UNSTORABLE_STRINGS, EVENTS, {"filter": {"userId": "\ud800"}}),
    Case(
        "events-user-nul",
        UNSTORABLE_STRINGS,
        EVENTS,
        {"filter": {"userId": "a\x00b"}},
        broken_on=POSTGRESQL,
    ),
    Case(
        "events-source-nul",
        UNSTORABLE_STRINGS,
        EVENTS,
        {"filter": {"source": "\x00"}},
        broken_on=POSTGRESQL,
    ),
    Case(
        "events-kpi-nul",
        UNSTORABLE_STRINGS,
        EVENTS,
        {"filter": {"kpiIds": ["\x00"]}},
        broken_on=POSTGRESQL,
    ),
    Case(
        "progress-of-nul-user",
        UNSTORABLE_STRINGS,
        "{ myOnboardingProgress { completedSteps } }",
        user="nul\x00user",
        roles=(),
        broken_on=POSTGRESQL,
    ),
    Case(
        "int-literal-5000-digits",
        HUGE_INT_LITERALS,
        "{ analyticsFailures(first: " + "9" * 5000 + ") { totalCount } }",
    ),
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Harness]:
    """One app and database per engine for all the cases (they change nothing)."""
    folder = tmp_path_factory.mktemp(f"known-bugs-{request.param}")
    postgres: PostgresDatabases | None = None
    if request.param == "sqlite":
        databases: SqliteDatabases = request.getfixturevalue("sqlite_databases")
        url = databases.create(folder)
    else:
        postgres = request.getfixturevalue("postgres_databases")
        assert postgres is not None
        name = run_blocking(postgres.create())
        url = postgres.url(name)
    settings = Settings(
        env="development",
        data_dir=folder,
        database_url=url,
        jwt_secret=TEST_SECRET,
        log_format="json",
    )
    try:
        with Harness(fuzz_settings(settings), TokenCodec(settings, TEST_SECRET)) as harness:
            yield harness
    finally:
        if postgres is not None:
            run_blocking(postgres.drop(name))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_found_by_fuzzing(case: Case, shared: Harness, request: pytest.FixtureRequest) -> None:
    if known(case.bug) and shared.dialect in case.broken_on:
        request.applymarker(pytest.mark.xfail(strict=True, reason=REASONS[case.bug]))

    if case.body is not None:
        response = shared.request(
            "POST", content=case.body, headers={"Content-Type": "application/json"}
        )
        check_http(response, expect="rejection")
        return

    token = shared.tokens.mint(case.user, roles=list(case.roles))
    payload: dict[str, Any] = {"query": case.query, "variables": case.variables or {}}
    response = shared.request(
        "POST",
        content=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    body = check_http(response, expect="graphql")  # no 5xx, no INTERNAL_SERVER_ERROR
    assert body is not None
    for error in body.get("errors", []):
        assert error["extensions"]["code"] in CLIENT_ERRORS | {"UNAUTHENTICATED"}, error
