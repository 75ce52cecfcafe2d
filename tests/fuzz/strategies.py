"""Hypothesis strategies for requests to the GraphQL endpoint: generated operations (valid
and invalid, from ``schema.graphql`` with hypothesis-graphql), hand-written operations with
generated variables (well- and ill-typed), bearer tokens, and malformed HTTP requests."""

from __future__ import annotations

import base64
import json
import string
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import graphql
import hypothesis_graphql as hg
import jwt
from hypothesis import strategies as st
from hypothesis_graphql import nodes

from app.auth import TokenCodec
from app.config import Settings
from app.flow_file import DEFAULT_FLOW
from tests.fuzz.known_bugs import (
    EXTREME_DATETIMES,
    FORGED_CURSORS,
    HUGE_INT_LITERALS,
    NAIVE_DATETIMES,
    UNDECODABLE_BODIES,
    UNSTORABLE_STRINGS,
    known,
)
from tests.fuzz.properties import SCHEMA

KPI_IDS = [k.id for k in DEFAULT_FLOW.kpis]

# --- Leaves -------------------------------------------------------------------------------

#: Strings that have broken servers before: empty, NUL, lone surrogates (legal in JSON
#: escapes, not encodable as UTF-8), astral characters, right-to-left marks, path tricks,
#: format strings, SQL, and sizes around the limits.
ODD_STRINGS = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "😀",
    "\u202e",
    "\ufeff",
    "../../etc/passwd",
    "%s%n{0}",
    "'; DROP TABLE step_completions; --",
    "NaN",
    "null",
    "x" * 33,
    "k" * 256,
    "y" * 5000,
)
odd_text = st.one_of(st.sampled_from(ODD_STRINGS), st.text(max_size=40))


def storable(text: str) -> bool:
    """Neither NUL (PostgreSQL text cannot hold it) nor a lone surrogate (not UTF-8)."""
    return "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


#: Text for arguments that end up in SQL (filters): odd, but storable while
#: UNSTORABLE_STRINGS is open.
filter_text = odd_text.filter(storable) if known(UNSTORABLE_STRINGS) else odd_text
big_ints = st.one_of(
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.sampled_from([2**31, -(2**31) - 1, 2**53 + 1, 2**63, 10**30]),
)
ZONES = (
    UTC,
    timezone(timedelta(hours=14)),
    timezone(-timedelta(hours=12, minutes=30)),
    timezone(timedelta(hours=5, minutes=45)),
)
#: The whole datetime range, or (while EXTREME_DATETIMES is open) a millennium away from
#: either end.
_EXTREME = not known(EXTREME_DATETIMES)
_EARLIEST = datetime.min if _EXTREME else datetime(1000, 1, 1)
_LATEST = datetime.max if _EXTREME else datetime(9000, 1, 1)
#: Datetimes every DateTime argument must accept.
aware_datetimes = st.datetimes(_EARLIEST, _LATEST, timezones=st.sampled_from(ZONES))
#: Datetimes without an offset: refused or taken as UTC, never a crash (NAIVE_DATETIMES).
naive_datetimes = st.nothing() if known(NAIVE_DATETIMES) else st.datetimes(_EARLIEST, _LATEST)
_ODD_DATETIMES = {
    "2026-01-01T00:00:00Z": None,
    "2026-01-01T00:00:00": NAIVE_DATETIMES,
    "2026-01-01": NAIVE_DATETIMES,
    "0001-01-01T00:00:00+14:00": EXTREME_DATETIMES,
    "9999-12-31T23:59:59.999999-14:00": EXTREME_DATETIMES,
    "2026-02-30T00:00:00Z": None,
    "2026-01-01T24:00:00Z": None,
    "now": None,
    "": None,
}
#: ISO strings the DateTime scalar may or may not accept: valid ones, naive, extreme and
#: not-quite dates, and random text.
datetime_text = st.one_of(
    aware_datetimes.map(datetime.isoformat),
    naive_datetimes.map(datetime.isoformat),
    st.sampled_from(
        [text for text, bug in _ODD_DATETIMES.items() if bug is None or not known(bug)]
    ),
    odd_text,
)

# --- JSON ---------------------------------------------------------------------------------

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and infinities too: Python's json accepts and emits them
    odd_text,
)
json_values = st.recursive(
    json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(odd_text, children, max_size=4)
    ),
    max_leaves=12,
)
flat_metadata = st.dictionaries(
    st.text(min_size=1, max_size=12),
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30)
    ),
    max_size=5,
)
metadata_values = st.one_of(
    st.none(),
    flat_metadata,
    st.just({f"k{i}": i for i in range(33)}),  # one key too many
    st.integers(3000, 5000).map(lambda n: {"big": "m" * n}),  # around 4 KiB
    st.sampled_from([{"f": float("nan")}, {"f": float("inf")}, {"s": "\ud800"}, {"s": "\x00"}]),
    st.dictionaries(st.sampled_from(["", "\x00", "\ud800", "ok"]), json_leaves, max_size=2),
    json_values,
)

# --- Custom scalars for hypothesis-graphql (they generate AST value nodes) ----------------

graphql_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
_json_node_leaves = st.one_of(
    st.just(nodes.Null),
    st.booleans().map(nodes.Boolean),
    st.integers().map(nodes.Int),
    st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
    odd_text.map(nodes.String),
)


def _object_node(items: list[tuple[str, graphql.ValueNode]]) -> graphql.ObjectValueNode:
    return nodes.Object(
        [
            graphql.ObjectFieldNode(name=graphql.NameNode(value=name), value=value)
            for name, value in items
        ]
    )


json_nodes = st.recursive(
    _json_node_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(nodes.List),
        st.lists(st.tuples(graphql_names, children), max_size=4, unique_by=lambda kv: kv[0]).map(
            _object_node
        ),
    ),
    max_leaves=12,
)
#: Literals the scalars accept ...
VALID_SCALARS = {
    "DateTime": aware_datetimes.map(datetime.isoformat).map(nodes.String),
    "JSON": json_nodes,
}
#: ... and ones they may refuse.
ODD_SCALARS = {"DateTime": datetime_text.map(nodes.String), "JSON": json_nodes}

#: NUL in string literals only once UNSTORABLE_STRINGS is fixed (filters would pass it on).
_ALLOW_X00 = not known(UNSTORABLE_STRINGS)
_any_fields = hg.from_schema(SCHEMA, custom_scalars=VALID_SCALARS, allow_x00=_ALLOW_X00)
assert SCHEMA.query_type is not None and SCHEMA.mutation_type is not None
#: Valid operations (queries and mutations) over the app's own schema: several root fields
#: at once, or one (root fields are non-null, so one refused argument nulls the whole
#: answer; single-field documents get further).
valid_documents = st.one_of(
    _any_fields,
    _any_fields,
    *(
        hg.from_schema(SCHEMA, fields=[name], custom_scalars=VALID_SCALARS, allow_x00=_ALLOW_X00)
        for name in [*SCHEMA.query_type.fields, *SCHEMA.mutation_type.fields]
    ),
)
#: Operations with exactly one schema violation (wrong argument type, missing argument, ...).
negative_documents = hg.from_schema(
    SCHEMA, custom_scalars=ODD_SCALARS, mode=hg.Mode.NEGATIVE, allow_x00=_ALLOW_X00
)

_GRAPHQL_CHARS = string.ascii_letters + string.digits + ' {}()[]:$@!.,="\\#\n\t&|'


@st.composite
def mutated_documents(draw: st.DrawFn) -> str:
    """A valid document with one random edit: delete, insert, replace, duplicate, truncate."""
    document: str = draw(valid_documents)
    start = draw(st.integers(0, len(document)))
    end = draw(st.integers(start, min(len(document), start + 20)))
    noise = draw(st.text(alphabet=st.sampled_from(_GRAPHQL_CHARS) | st.characters(), max_size=8))
    edit = draw(st.sampled_from(["delete", "insert", "replace", "duplicate", "truncate"]))
    if edit == "delete":
        return document[:start] + document[end:]
    if edit == "insert":
        return document[:start] + noise + document[start:]
    if edit == "replace":
        return document[:start] + noise + document[end:]
    if edit == "duplicate":
        return document[:end] + document[start:end] + document[end:]
    return document[:start]


def _pathological(kind: str, n: int) -> str:
    if kind == "nested-list-argument":
        return "{ kpiEvents(filter: {kpiIds: " + "[" * n + "]" * n + "}) { totalCount } }"
    if kind == "nested-fragments":
        return "{" + "... on Query {" * n + " __typename " + "}" * n + "}"
    if kind == "nested-selections":
        return "{ onboardingFlow " + "{ steps " * n + "{ step }" + " }" * n + " }"
    if kind == "unclosed":
        return "{" * n
    if kind == "aliases":
        return (
            "{" + " ".join(f"a{i}: onboardingFlow {{ steps {{ step }} }}" for i in range(n)) + "}"
        )
    if kind == "tokens":
        return "{ " + "__typename " * n + "}"
    if kind == "operations":
        return " ".join(f"query Q{i} {{ __typename }}" for i in range(n))
    if kind == "long-string":
        return '{ kpiEvents(after: "' + "c" * n + '") { totalCount } }'
    if kind == "long-name":
        return "{ " + "f" * n + " }"
    if kind == "big-int":
        digits = min(n, 4000) if known(HUGE_INT_LITERALS) else n
        return "{ analyticsFailures(first: " + "9" * digits + ") { totalCount } }"
    raise AssertionError(kind)


pathological_documents = st.builds(
    _pathological,
    st.sampled_from(
        [
            "nested-list-argument",
            "nested-fragments",
            "nested-selections",
            "unclosed",
            "aliases",
            "tokens",
            "operations",
            "long-string",
            "long-name",
            "big-int",
        ]
    ),
    st.one_of(st.integers(1, 64), st.integers(1, 20_000)),
)
#: Hand-written oddities: directives, fragment cycles, deep introspection, subscriptions.
ODD_DOCUMENTS = (
    "",
    "   ",
    "# just a comment",
    "\ufeff{ __typename }",
    "{ onboardingFlow @skip(if: true) { steps { step } } }",
    "{ onboardingFlow @include(if: false) { steps { step } } __typename }",
    "{ onboardingFlow @unknown { steps { step } } }",
    "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
    "{ ...Missing }",
    "fragment Unused on Query { __typename } { __typename }",
    "query A { __typename } query A { __typename }",
    "query A { __typename } query B { __typename }",
    "subscription { onboardingFlow { steps { step } } }",
    'query($x: Int = "no") { analyticsFailures(first: $x) { totalCount } }',
    "query($x: Int) { analyticsFailures(first: $y) { totalCount } }",
    "query($x: Nope) { __typename }",
    "{ __schema { types { name fields { name type { name ofType { name ofType { name "
    "ofType { name } } } } } } } }",
    '{ __type(name: "Query") { name fields { name } } }',
    "mutation { completeOnboardingStep { __typename } }",
    'mutation { completeOnboardingStep(input: {step: 1, idempotencyKey: "k"}) }',
    "mutation { replayAnalyticsFailures(limit: 0) { remaining } }",
    "mutation { replayAnalyticsFailures(limit: 2147483648) { remaining } }",
    '{ onboardingFunnel(from: "9999-12-31T00:00:00+00:00", to: "9999-12-31T23:00:00+00:00", '
    "conversionWindowDays: 365) { steps { users } } }",
    *(
        []
        if known(EXTREME_DATETIMES)
        else [
            '{ kpiEventSeries(kpiId: "onboarding.completed", from: "0001-01-01T00:00:00+14:00",'
            ' to: "0001-01-02T00:00:00+00:00", interval: DAY) { totalEvents } }'
        ]
    ),
)
invalid_documents = st.one_of(
    negative_documents,
    mutated_documents(),
    pathological_documents,
    st.sampled_from(ODD_DOCUMENTS),
    st.text(max_size=200),
)

# --- Bearer tokens --------------------------------------------------------------------------

#: Users who submit steps (four, so that many submissions can still be new).
SUBMITTERS = ("user", "user-2", "user-3", "user-4")
VALID_AUTH = (*SUBMITTERS, "analyst", "admin")
AUTH_LABELS = (
    *VALID_AUTH,
    "anonymous",
    "unknown-role",
    "nul-user",
    "unicode-user",
    "long-user",
    "expired",
    "wrong-secret",
    "alg-none",
    "roles-not-a-list",
    "not-a-token",
    "basic",
    "empty-bearer",
    "too-long",
)
#: A token whose user id holds NUL reaches SQL (UNSTORABLE_STRINGS).
_STEERED_AUTH = tuple(
    label for label in AUTH_LABELS if label != "nul-user" or not known(UNSTORABLE_STRINGS)
)
auth_labels = st.one_of(st.sampled_from(VALID_AUTH), st.sampled_from(_STEERED_AUTH))
#: Half the time an admin (who may read and do everything), so valid documents execute.
mostly_admin = st.just("admin") | auth_labels


def auth_headers(settings: Settings, tokens: TokenCodec) -> dict[str, dict[str, str]]:
    """One ``Authorization`` header per label, minted once per test (tokens last an hour)."""
    hour = datetime.now(UTC) + timedelta(hours=1)

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    foreign = TokenCodec(settings, "another-secret-that-is-long-enough-for-hs256-xyz")
    headers = {
        "user": bearer(tokens.mint("fuzz-user")),
        "user-2": bearer(tokens.mint("fuzz-user-2")),
        "user-3": bearer(tokens.mint("fuzz-user-3")),
        "user-4": bearer(tokens.mint("fuzz-user-4")),
        "analyst": bearer(tokens.mint("fuzz-analyst", roles=["analyst"])),
        "admin": bearer(tokens.mint("fuzz-admin", roles=["admin"])),
        "anonymous": {},
        "unknown-role": bearer(tokens.mint("fuzz-root", roles=["root", "ANALYST", ""])),
        "nul-user": bearer(tokens.mint("nul\x00user", roles=["admin"])),
        "unicode-user": bearer(tokens.mint("ünï-😀\u202e", roles=["analyst"])),
        "long-user": bearer(tokens.mint("u" * 128)),
        "expired": bearer(tokens.mint("fuzz-user", ttl=timedelta(hours=-1))),
        "wrong-secret": bearer(foreign.mint("fuzz-user", roles=["admin"])),
        "alg-none": bearer(
            jwt.encode({"sub": "fuzz-admin", "roles": ["admin"], "exp": hour}, None, "none")
        ),
        "roles-not-a-list": bearer(
            jwt.encode(
                {"sub": "fuzz-user", "roles": "admin", "exp": hour},
                settings.jwt_secret.get_secret_value() if settings.jwt_secret else "",
                "HS256",
            )
        ),
        "not-a-token": {"Authorization": "Bearer not.a.token"},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "empty-bearer": {"Authorization": "Bearer "},
        "too-long": bearer("a" * 9000),
    }
    assert set(headers) == set(AUTH_LABELS)
    return headers


# --- Hand-written operations with generated variables ---------------------------------------

COMPLETE_STEP = """
mutation Complete($input: CompleteOnboardingStepInput!) {
  completeOnboardingStep(input: $input) {
    __typename
    ... on UserError { message code }
    ... on ValidationError { fieldErrors { path message } }
    ... on StepNotEligibleError { step reason }
    ... on IdempotencyConflictError { conflictReason: reason retryable }
    ... on PersistenceError { retryable }
    ... on CompleteOnboardingStepSuccess {
      replayed
      completion { step completedAt }
      progress { completedSteps nextStep totalSteps isComplete }
      analytics { status event { id kpiId occurredAt userId step source metadata
        userProgress { completedSteps } } }
    }
  }
}
"""
KPI_EVENTS = """
query Events($filter: KpiEventFilter, $first: Int, $after: String) {
  kpiEvents(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id kpiId userId step source metadata occurredAt
      userProgress { nextStep } } }
  }
}
"""
SERIES = """
query Series($kpiId: String!, $from: DateTime!, $to: DateTime!, $interval: TimeInterval!,
             $zone: String!) {
  kpiEventSeries(kpiId: $kpiId, from: $from, to: $to, interval: $interval, timeZone: $zone) {
    kpiId interval timeZone totalEvents totalUniqueUsers
    buckets { start end events uniqueUsers }
  }
}
"""
FUNNEL = """
query Funnel($from: DateTime!, $to: DateTime!, $days: Int!) {
  onboardingFunnel(from: $from, to: $to, conversionWindowDays: $days) {
    from to conversionWindowDays
    steps { step key users conversionFromStart conversionFromPrevious medianSecondsFromPrevious }
  }
}
"""
FAILURES = """
query Failures($first: Int, $after: String, $unresolved: Boolean!) {
  analyticsFailures(first: $first, after: $after, unresolvedOnly: $unresolved) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id completionId userId step stage errorType errorMessage attempts
      createdAt resolvedAt resolvedEventId } }
  }
}
"""
REPLAY = """
mutation Replay($limit: Int!) {
  replayAnalyticsFailures(limit: $limit) { resolved stillFailing remaining }
}
"""
PROGRESS = "query { myOnboardingProgress { completedSteps nextStep totalSteps isComplete } }"

#: A few valid idempotency keys shared by all examples, so that retries (same key, same
#: input) and conflicts (same key, other input) happen often.
KEY_POOL = tuple(f"fuzz-key-{i:02d}-0000000000" for i in range(4))


def mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Three draws in four from ``usual``: enough plausible input to reach the deep paths
    (recording, replaying, paging), enough odd input to find what breaks."""
    return st.integers(0, 3).flatmap(lambda i: odd if i == 3 else usual)


idempotency_keys = mostly(
    st.sampled_from(KEY_POOL) | st.from_regex(r"[A-Za-z0-9\-_:.]{16,40}", fullmatch=True),
    odd_text,
)
steps = mostly(st.integers(1, 4), st.integers(-1, 6) | big_ints)
sources = mostly(st.sampled_from(["web", "ios", "api"]), odd_text)


@st.composite
def complete_step_input(draw: st.DrawFn) -> dict[str, Any]:
    value: dict[str, Any] = {
        "step": draw(steps),
        "idempotencyKey": draw(idempotency_keys),
    }
    if draw(st.booleans()):
        value["source"] = draw(st.none() | sources)
    if draw(st.booleans()):
        value["metadata"] = draw(mostly(flat_metadata, metadata_values))
    return value


def _cursor(parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode()


def _plausible_cursor(parts: list[Any]) -> bool:
    """Whether the server takes these parts for a cursor it made (then it binds them)."""
    if len(parts) == 1 and isinstance(parts[0], int):
        return True
    try:
        datetime.fromisoformat(str(parts[0]))
    except (IndexError, ValueError):
        return False
    return True


def _forged(parts: list[Any]) -> bool:
    """Well-encoded cursor parts that trip FORGED_CURSORS (or the datetime bugs) while open."""
    if not known(FORGED_CURSORS) and not known(NAIVE_DATETIMES):
        return False
    return _plausible_cursor(parts)


cursor_ids = st.uuids().map(str) if known(FORGED_CURSORS) else odd_text
failure_ids = st.integers(0, 2**31 - 1) if known(FORGED_CURSORS) else big_ints
#: ``after`` cursors: garbage, and well-encoded cursors around real ones' shape.
cursors = st.one_of(
    st.none(),
    st.none(),
    odd_text,
    st.lists(json_values, max_size=3).filter(lambda parts: not _forged(parts)).map(_cursor),
    st.tuples(aware_datetimes.map(datetime.isoformat), cursor_ids).map(_cursor),
    failure_ids.map(lambda n: _cursor([n])),
)
event_filters = st.none() | st.fixed_dictionaries(
    {},
    optional={
        "kpiIds": st.lists(st.sampled_from(KPI_IDS) | filter_text, max_size=60),
        "userId": st.sampled_from(["fuzz-user", "fuzz-user-2"]) | filter_text,
        "step": big_ints,
        "source": st.sampled_from(["web", "ios", "api"]) | filter_text,
        "occurredFrom": datetime_text,
        "occurredTo": datetime_text,
    },
)
page_sizes = mostly(st.none() | st.integers(0, 500), st.sampled_from([-1, 501]) | big_ints)
kpi_ids = mostly(st.sampled_from(KPI_IDS), odd_text)
time_zones = st.sampled_from(
    ["UTC", "Europe/Berlin", "America/St_Johns", "Pacific/Chatham", "Asia/Kathmandu", "Etc/GMT+12"]
) | st.sampled_from(["", "Nope/Zone", "../etc/passwd", "/etc/localtime", "UTC\x00", "\ud800"])


@st.composite
def ranges(draw: st.DrawFn) -> tuple[str, str]:
    """Mostly ranges a series or funnel can answer; sometimes anything."""
    if draw(st.integers(0, 3)) == 3:
        return draw(datetime_text), draw(datetime_text)
    start = draw(aware_datetimes)
    length = timedelta(hours=draw(mostly(st.integers(1, 24 * 60), st.integers(-10, 24 * 400))))
    try:
        end = start + length
    except OverflowError:
        end = start
    return start.isoformat(), end.isoformat()


@st.composite
def series_variables(draw: st.DrawFn) -> dict[str, Any]:
    start, end = draw(ranges())
    interval = draw(st.sampled_from(["HOUR", "DAY", "WEEK"]) | st.just("MONTH"))
    zone = draw(time_zones)
    return {"kpiId": draw(kpi_ids), "from": start, "to": end, "interval": interval, "zone": zone}


@st.composite
def funnel_variables(draw: st.DrawFn) -> dict[str, Any]:
    start, end = draw(ranges())
    days = draw(mostly(st.integers(1, 365), st.sampled_from([0, 366]) | big_ints))
    return {"from": start, "to": end, "days": days}


#: (document, variables, default auth label): the write path ...
complete_step_operations = st.tuples(
    st.just(COMPLETE_STEP),
    st.fixed_dictionaries({"input": complete_step_input()}),
    st.sampled_from(SUBMITTERS),
)
#: ... and every other hand-written operation.
other_operations = st.one_of(
    st.tuples(
        st.just(KPI_EVENTS),
        st.fixed_dictionaries(
            {}, optional={"filter": event_filters, "first": page_sizes, "after": cursors}
        ),
        st.just("analyst"),
    ),
    st.tuples(st.just(SERIES), series_variables(), st.just("analyst")),
    st.tuples(st.just(FUNNEL), funnel_variables(), st.just("analyst")),
    st.tuples(
        st.just(FAILURES),
        st.fixed_dictionaries(
            {"unresolved": st.booleans()}, optional={"first": page_sizes, "after": cursors}
        ),
        st.just("admin"),
    ),
    st.tuples(
        st.just(REPLAY),
        st.fixed_dictionaries({"limit": mostly(st.integers(1, 1000), page_sizes)}),
        st.just("admin"),
    ),
    st.tuples(st.just(PROGRESS), st.just({}), st.just("user")),
)


@st.composite
def corrupt(draw: st.DrawFn, variables: dict[str, Any]) -> dict[str, Any]:
    """One variable (or one field of an input object) replaced, dropped, or added."""
    result: dict[str, Any] = json.loads(json.dumps(variables))
    target = result
    if "input" in result and isinstance(result["input"], dict) and draw(st.booleans()):
        target = result["input"]
    name = draw(st.sampled_from([*sorted(target), "unexpected"]))
    if draw(st.booleans()) and name in target:
        del target[name]
    else:
        target[name] = draw(json_values)
    return result


@st.composite
def variable_requests(
    draw: st.DrawFn, operations: st.SearchStrategy[tuple[str, dict[str, Any], str]]
) -> tuple[str, dict[str, Any], str]:
    """A hand-written operation, its variables (one in four corrupted), and who sends it."""
    document, variables, auth = draw(operations)
    if draw(st.integers(0, 3)) == 3:
        variables = draw(corrupt(variables))
    if draw(st.integers(0, 3)) == 3:
        auth = draw(auth_labels)
    return document, variables, auth


# --- Malformed HTTP requests ----------------------------------------------------------------

CONTENT_TYPES = (
    None,
    "application/json",
    "application/json; charset=utf-8",
    "application/graphql-response+json",
    "application/graphql",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "",
    "application/json; charset=latin-1",
)


@dataclass(frozen=True)
class RawRequest:
    """An HTTP request to ``/graphql``, small to print: big bodies are described, then built."""

    method: str = "POST"
    content_type: str | None = "application/json"
    body: bytes = b""
    nested: int = 0  # a valid request whose variables nest this many JSON arrays
    padding: int = 0  # a valid request padded to this many bytes ...
    streamed: bool = False  # ... sent in chunks, without a Content-Length header
    params: dict[str, str] | None = None

    def content(self) -> bytes:
        if self.nested:
            depth = self.nested
            return b'{"query": "{ __typename }", "variables": {"v": %s}}' % (
                b"[" * depth + b"]" * depth
            )
        if self.padding:
            head = b'{"query": "{ __typename }", "variables": {"pad": "'
            return head + b"p" * (self.padding - len(head) - 3) + b'"}}'
        return self.body

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx.AsyncClient.request``."""
        headers = {"Accept": "application/json"}
        if self.content_type is not None:
            headers["Content-Type"] = self.content_type
        if self.method == "GET":
            # Encoded here: lone surrogates become the (invalid UTF-8) bytes they stand for.
            query = urlencode(self.params or {}, encoding="utf-8", errors="surrogatepass")
            return {"url": f"/graphql?{query}", "headers": headers}
        content = self.content()
        if not self.streamed:
            return {"url": "/graphql", "content": content, "headers": headers}

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(content), 65536):
                yield content[start : start + 65536]

        return {"url": "/graphql", "content": chunks(), "headers": headers}


def _dumps(value: object) -> bytes:
    return json.dumps(value).encode()


def _decodable(body: bytes) -> bool:
    """Whether Strawberry's ``json.loads`` of this body ends in a dict, a list, or a
    JSONDecodeError (all answered 400), rather than UNDECODABLE_BODIES' 500."""
    try:
        return isinstance(json.loads(body), dict | list)
    except json.JSONDecodeError:
        return True
    except (ValueError, RecursionError):
        return False


small_bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [b"", b"{", b"null", b"1", b"[]", b"{}", b"\xff\xfe{}", b'{"query": "{ __typename }"']
    )
    | st.sampled_from([b'{"query": "{ __typename }", "query": 1}', b'"{ __typename }"']),
    json_values.map(_dumps),
    st.fixed_dictionaries(
        {"query": json_values | st.just("{ __typename }")},
        optional={
            "variables": json_values,
            "operationName": json_values,
            "extensions": json_values,
        },
    ).map(_dumps),
    st.lists(st.just({"query": "{ __typename }"}), min_size=1, max_size=20).map(_dumps),
)
MIB = 1024 * 1024
malformed_requests = st.one_of(
    st.builds(
        RawRequest,
        content_type=st.sampled_from(CONTENT_TYPES),
        body=small_bodies.filter(_decodable) if known(UNDECODABLE_BODIES) else small_bodies,
    ),
    st.builds(RawRequest, nested=st.integers(1, 400 if known(UNDECODABLE_BODIES) else 200_000)),
    st.builds(RawRequest, padding=st.integers(MIB - 64, MIB + 64), streamed=st.booleans()),
    st.builds(
        RawRequest,
        method=st.just("GET"),
        content_type=st.none(),
        params=st.fixed_dictionaries(
            {},
            optional={
                "query": st.sampled_from(["{ __typename }", COMPLETE_STEP]) | odd_text,
                "variables": odd_text | json_values.map(json.dumps),
                "operationName": odd_text,
            },
        ),
    ),
    st.builds(
        RawRequest,
        method=st.sampled_from(["PUT", "PATCH", "DELETE"]),
        body=st.just(b'{"query": "{ __typename }"}'),
    ),
)
