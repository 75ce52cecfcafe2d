"""The page's validator (web/onboarding/validator.js) and the server's rules agree.

Each input is checked in the browser and on the server side by
``app.services.onboarding.parse_complete_step``, fed exactly what the browser would send
(``JSON.stringify`` of the input, parsed by Python). Both must report the same fields with
the same messages, in the same order. Three tables:

- the contract rules of CompleteOnboardingStepInput (``validateCompleteStepInput``), on a
  flow whose steps declare no fields, so that only the contract speaks;
- the tracking plan (``submissionProblems``) on metadata as any client may send it: every
  field type and rule, unknown keys, for both flows the suite runs on;
- the forms (``validateStepFields``): raw form values as the page reads them, turned into
  the metadata the page sends.

The browser's steps come from each flow's server, through the page's own OnboardingFlow
document, so the tables also prove that the document carries every rule.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from app.errors import RequestValidationError
from app.kpi import OnboardingFlow
from app.services.onboarding import IDEMPOTENCY_KEY_PATTERN, parse_complete_step
from tests.e2e.conftest import Server
from tests.flows import FLOWS, FREE_FORM

pytestmark = pytest.mark.e2e

VALIDATOR = "/static/onboarding/validator.js"
KEY = "6f1c2a9e-2b1d-4a8e-9c55-0d9e4b7a1c33"
PAD = "pad"


def server_size(metadata: dict[str, Any]) -> int:
    """Bytes of metadata as the server measures it."""
    return len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())


def sized(size: int, **values: Any) -> dict[str, Any]:
    """``values`` plus an ASCII padding string that makes the server measure ``size`` bytes."""
    metadata = {**values, PAD: ""}
    metadata[PAD] = "x" * (size - server_size(metadata))
    assert server_size(metadata) == size
    return metadata


def case(id: str, **overrides: Any) -> Any:
    fields: dict[str, Any] = {"step": 1, "idempotencyKey": KEY, "source": "web", "metadata": None}
    return pytest.param({**fields, **overrides}, id=id)


CASES = [
    case("valid"),
    case("valid-with-metadata", metadata={"displayName": "Ada", "role": "engineer"}),
    # step
    *(case(f"step-{n}", step=n) for n in (-1, 0, 1, 10_000, 10_001)),
    # idempotencyKey
    case("key-15", idempotencyKey="a" * 15),
    case("key-16", idempotencyKey="a" * 16),
    case("key-255", idempotencyKey="a" * 255),
    case("key-256", idempotencyKey="a" * 256),
    case("key-every-allowed-char", idempotencyKey="AZaz09-_:.AZaz09"),
    case("key-space", idempotencyKey="a" * 8 + " " + "a" * 8),
    case("key-slash", idempotencyKey="a" * 16 + "/"),
    case("key-non-ascii", idempotencyKey="é" * 16),
    case("key-trailing-newline", idempotencyKey="a" * 16 + "\n"),
    case("key-empty", idempotencyKey=""),
    # source
    case("source-omitted", source=None),
    case("source-empty", source=""),
    case("source-32", source="a" * 32),
    case("source-33", source="a" * 33),
    case("source-allowed-chars", source="ios-app_2"),
    case("source-uppercase", source="Web"),
    case("source-non-ascii", source="wéb"),
    # metadata: shape
    case("metadata-empty", metadata={}),
    case("metadata-array", metadata=[1, 2]),
    case("metadata-string", metadata="plan=pro"),
    case("metadata-number", metadata=5),
    case("metadata-32-keys", metadata={f"k{i}": i for i in range(32)}),
    case("metadata-33-keys", metadata={f"k{i}": i for i in range(33)}),
    case("metadata-empty-key", metadata={"a": 1, "": 2}),
    case("metadata-nested-object", metadata={"a": 1, "b": {"c": 1}}),
    case("metadata-nested-array", metadata={"b": [1]}),
    case("metadata-integer-like-keys", metadata={"b": "x", "2": [], "1": {}}),
    case("metadata-scalars", metadata={"s": "x", "i": -3, "f": 1.5, "t": True, "n": None}),
    case("metadata-nan", metadata={"a": math.nan}),
    case("metadata-infinity", metadata={"a": -math.inf}),
    # metadata: size, counted in UTF-8 bytes of compact JSON
    case("size-4096", metadata=sized(4096)),
    case("size-4097", metadata=sized(4097)),
    case("size-4096-two-byte-chars", metadata=sized(4096, name="é" * 100)),
    case("size-4097-two-byte-chars", metadata=sized(4097, name="é" * 100)),
    case("size-4096-emoji", metadata=sized(4096, name="🚀" * 50)),
    case("size-4097-emoji", metadata=sized(4097, name="🚀" * 50)),
    case("size-4096-escapes", metadata=sized(4096, q='"\\\n\t\u0001\u2028' * 20)),
    case("size-4097-escapes", metadata=sized(4097, q='"\\\n\t\u0001\u2028' * 20)),
    case("size-4096-small-floats", metadata=sized(4096, a=1e-7, b=0.00001, c=-1.5e-10)),
    case("size-4097-small-floats", metadata=sized(4097, a=1e-7, b=0.00001, c=-1.5e-10)),
    case("size-4096-big-floats", metadata=sized(4096, a=1e21, b=1.5e300, c=123.456)),
    case("size-4097-big-floats", metadata=sized(4097, a=1e21, b=1.5e300, c=123.456)),
    case("size-4096-big-ints", metadata=sized(4096, a=10**15, b=-(2**53))),
    case("size-4097-big-ints", metadata=sized(4097, a=10**15, b=-(2**53))),
    case("size-huge", metadata={"k": "x" * 10_000}),
    case("metadata-nul-value", metadata={"k": "a\x00b"}),
    case("metadata-nul-key", metadata={"a\x00": 1}),
    # several problems at once are all reported, in the same order
    case("everything-wrong", step=0, idempotencyKey="short", source="WEB", metadata=[]),
]


def server_errors(sent: dict[str, Any], flow: OnboardingFlow = FREE_FORM) -> list[dict[str, Any]]:
    """parse_complete_step's field errors for ``sent`` (by default with no tracking plan)."""
    try:
        parse_complete_step(
            flow,
            step=sent["step"],
            idempotency_key=sent["idempotencyKey"],
            source=sent["source"],
            metadata=sent["metadata"],
        )
    except RequestValidationError as exc:
        return [{"path": list(e.path), "message": e.message} for e in exc.field_errors]
    return []


def has_non_finite(value: Any) -> bool:
    if isinstance(value, dict):
        return any(has_non_finite(v) for v in value.values())
    return isinstance(value, float) and not math.isfinite(value)


@pytest.fixture(scope="module")
def served_steps(server: Server, team_trial_server: Server) -> dict[str, list[dict[str, Any]]]:
    """Each flow's steps as its server answers the page's OnboardingFlow query."""
    return {"default": server.flow_steps(), "team_trial": team_trial_server.flow_steps()}


@pytest.fixture(scope="module")
def validator_page(browser: Browser, server: Server) -> Iterator[Page]:
    """One page for the whole module: these tests only call the validator module."""
    context = browser.new_context(base_url=server.base_url)
    page = context.new_page()
    page.goto("/")
    yield page
    context.close()


def call(page: Page, function: str, *args: Any, module: str = VALIDATOR) -> Any:
    """Call a function exported by a module of the page, in the browser."""
    return page.evaluate(
        "async ([module, name, args]) => (await import(module))[name](...args)",
        [module, function, list(args)],
    )


@pytest.mark.parametrize("given", CASES)
def test_client_and_server_agree(validator_page: Page, given: dict[str, Any]) -> None:
    client = call(validator_page, "validateCompleteStepInput", given)

    # The server sees what the browser sends; JSON cannot carry NaN or Infinity, so for
    # those the server's rule is checked on the value itself (as a Python client sends it).
    wire = validator_page.evaluate("(input) => JSON.stringify(input)", given)
    sent = given if has_non_finite(given["metadata"]) else json.loads(wire)
    assert client == server_errors(sent)


def test_lone_surrogates_are_refused_by_client_and_server(validator_page: Page) -> None:
    errors = validator_page.evaluate(
        """async ([module, key]) => {
            const { validateCompleteStepInput: check } = await import(module);
            const input = { step: 1, idempotencyKey: key, source: "web" };
            return [
                check({ ...input, metadata: { k: "\\ud800" } }),
                check({ ...input, metadata: { "\\udfff": 1 } }),
                check({ ...input, metadata: { k: "\\ud83d\\ude80" } }),
            ];
        }""",
        [VALIDATOR, KEY],
    )
    lone_surrogate = {
        "path": ["input", "metadata"],
        "message": "value of 'k' must be valid Unicode text",
    }
    assert errors[0] == [lone_surrogate]
    assert errors[1][0]["path"] == ["input", "metadata"]
    assert errors[2] == []  # a surrogate pair is fine
    base = {"step": 1, "idempotencyKey": KEY, "source": "web"}
    assert server_errors({**base, "metadata": {"k": "\ud800"}}) == [lone_surrogate]
    assert server_errors({**base, "metadata": {"\udfff": 1}})[0]["path"] == ["input", "metadata"]
    assert server_errors({**base, "metadata": {"k": "\U0001f680"}}) == []


# --- the tracking plan ----------------------------------------------------------------------

TOO_LONG_EMAIL = "a" * 64 + "@" + ("b" * 60 + ".") * 3 + "c" * 7  # 255 characters
LONGEST_EMAIL = TOO_LONG_EMAIL[:-1]  # 254
PROFILE = {"displayName": "Ada", "role": "engineer"}
ACCOUNT = {"fullName": "Ada Lovelace", "workEmail": "ada@example.com", "teamSize": 12}


def plan_case(flow: str, step: int, metadata: Any, *expected: str, id: str, **input: Any) -> Any:
    """``expected``: the last path element of each problem the server reports, in order."""
    return pytest.param(flow, step, metadata, expected, input, id=f"{flow}-{step}-{id}")


PLAN_CASES = [
    # default flow, step 1 (profile): a required string (max 64) and a required choice
    plan_case("default", 1, PROFILE, id="valid"),
    plan_case("default", 1, None, "displayName", "role", id="no-metadata"),
    plan_case("default", 1, {}, "displayName", "role", id="empty"),
    plan_case("default", 1, {"displayName": None, "role": None}, "displayName", "role", id="nulls"),
    plan_case(
        "default", 1, {"displayName": " \t\n", "role": ""}, "displayName", "role", id="blank"
    ),
    # Python's whitespace is not JavaScript's: U+001F and U+0085 are blank, U+FEFF is not
    plan_case("default", 1, {**PROFILE, "displayName": "\x1f\x85"}, "displayName", id="py-blank"),
    plan_case("default", 1, {**PROFILE, "displayName": "\ufeff"}, id="bom-is-text"),
    plan_case("default", 1, {"displayName": 5, "role": True}, "displayName", "role", id="types"),
    plan_case("default", 1, {**PROFILE, "displayName": "é" * 64}, id="64-two-byte"),
    plan_case("default", 1, {**PROFILE, "displayName": "🚀" * 64}, id="64-emoji"),
    plan_case("default", 1, {**PROFILE, "displayName": "🚀" * 65}, "displayName", id="65-emoji"),
    plan_case("default", 1, {**PROFILE, "displayName": "x" * 65}, "displayName", id="65"),
    *(
        plan_case("default", 1, {**PROFILE, "displayName": f"a{c}b"}, "displayName", id=name)
        for name, c in (("bell", "\x07"), ("tab", "\t"), ("del", "\x7f"), ("c1", "\x9f"))
    ),
    # NUL and lone surrogates break the contract: its message only, no tracking plan
    plan_case("default", 1, {**PROFILE, "displayName": "a\x00b"}, "metadata", id="nul"),
    plan_case("default", 1, {**PROFILE, "displayName": "\ud800"}, "metadata", id="surrogate"),
    plan_case("default", 1, {**PROFILE, "role": "Engineer"}, "role", id="choice-label"),
    plan_case("default", 1, {**PROFILE, "plan": "pro"}, "plan", id="unknown-key"),
    # JSON.stringify sends integer-like keys first; the server reports them as received
    plan_case("default", 1, {**PROFILE, "b": 1, "2": 2}, "2", "b", id="unknown-keys-order"),
    plan_case("default", 1, {"z": 1, "role": "x"}, "displayName", "role", "z", id="all-at-once"),
    # several problems of the contract and the plan: all reported, contract first
    plan_case(
        "default",
        1,
        {},
        "idempotencyKey",
        "displayName",
        "role",
        id="bad-key",
        idempotencyKey="short",
    ),
    plan_case("default", 2, {"workspaceName": ""}, "workspaceName", id="workspace-empty"),
    plan_case("default", 2, {"workspaceName": "🚀" * 64}, id="workspace-64-emoji"),
    # step 3 (invite): an email
    plan_case("default", 3, {"teammateEmail": "grace.hopper+ob@navy.example.org"}, id="email"),
    plan_case("default", 3, {"teammateEmail": "a@b.c"}, id="email-shortest"),
    plan_case("default", 3, {"teammateEmail": LONGEST_EMAIL}, id="email-254"),
    plan_case("default", 3, {"teammateEmail": TOO_LONG_EMAIL}, "teammateEmail", id="email-255"),
    *(
        plan_case("default", 3, {"teammateEmail": bad}, "teammateEmail", id=f"email-{i}")
        for i, bad in enumerate(
            (
                "grace",
                "grace@",
                "@example.com",
                "grace@example",
                "gr ace@example.com",
                "grace@-example.com",
                "grace@example-.com",
                "grace@example..com",
                "grace@exa_mple.com",
                "grace@example.com\n",
                "grâce@example.com",
                "grace@" + "a" * 64 + ".com",
            )
        )
    ),
    plan_case("default", 3, {"teammateEmail": ["a@b.c"]}, "metadata", id="email-list"),
    plan_case("default", 4, {"projectName": "P" * 80}, id="project-80"),
    plan_case("default", 4, {"projectName": "P" * 81}, "projectName", id="project-81"),
    plan_case("default", 5, {"anything": 1}, id="step-not-in-flow"),
    # team_trial, step 1 (account): min and max length, email, integer with bounds
    plan_case("team_trial", 1, ACCOUNT, id="valid"),
    plan_case("team_trial", 1, {}, "fullName", "workEmail", "teamSize", id="empty"),
    plan_case("team_trial", 1, {**ACCOUNT, "fullName": "A"}, "fullName", id="name-1"),
    plan_case("team_trial", 1, {**ACCOUNT, "fullName": "Al"}, id="name-2"),
    plan_case("team_trial", 1, {**ACCOUNT, "fullName": "🚀🚀"}, id="name-2-emoji"),
    plan_case("team_trial", 1, {**ACCOUNT, "fullName": "x" * 40}, id="name-40"),
    plan_case("team_trial", 1, {**ACCOUNT, "fullName": "x" * 41}, "fullName", id="name-41"),
    plan_case("team_trial", 1, {**ACCOUNT, "workEmail": "ada"}, "workEmail", id="email"),
    plan_case("team_trial", 1, {**ACCOUNT, "workEmail": 7}, "workEmail", id="email-number"),
    *(
        plan_case("team_trial", 1, {**ACCOUNT, "teamSize": size}, *problem, id=f"size-{size!r}")
        for size, *problem in (
            (1,),
            (500,),
            (0, "teamSize"),
            (501, "teamSize"),
            (-1, "teamSize"),
            (2.5, "teamSize"),
            (1e21, "teamSize"),
            ("12", "teamSize"),
            (True, "teamSize"),
        )
    ),
    plan_case(
        "team_trial",
        1,
        {"extra": 1, "teamSize": 0, "fullName": "A"},
        *("fullName", "workEmail", "teamSize", "extra"),
        id="declared-first-then-unknown",
    ),
    # step 2 (plan): a required choice and an optional boolean
    plan_case("team_trial", 2, {"plan": "pro", "annualBilling": True}, id="valid"),
    plan_case("team_trial", 2, {"plan": "starter", "annualBilling": False}, id="false"),
    plan_case("team_trial", 2, {"plan": "starter"}, id="boolean-omitted"),
    plan_case("team_trial", 2, {"plan": "pro", "annualBilling": None}, id="boolean-null"),
    plan_case("team_trial", 2, {"annualBilling": True}, "plan", id="choice-missing"),
    plan_case("team_trial", 2, {"plan": "enterprise"}, "plan", id="choice-outside"),
    plan_case("team_trial", 2, {"plan": 1}, "plan", id="choice-number"),
    *(
        plan_case("team_trial", 2, {"plan": "pro", "annualBilling": v}, "annualBilling", id=i)
        for i, v in (("bool-string", "true"), ("bool-one", 1), ("bool-zero", 0))
    ),
    # step 3 (connect): extra = "allow" keeps undeclared keys, still checks declared ones
    plan_case("team_trial", 3, {"connector": "csv", "rows": 10, "why": "x"}, id="extra-kept"),
    plan_case("team_trial", 3, {"rows": 10}, "connector", id="extra-but-missing"),
    # step 4 (budget): a number with fractional bounds, an optional string
    *(
        plan_case("team_trial", 4, {"monthlyBudget": v}, *problem, id=f"budget-{v!r}")
        for v, *problem in (
            (0.5,),
            (10000,),
            (42,),
            (0.49, "monthlyBudget"),
            (0, "monthlyBudget"),
            (10000.01, "monthlyBudget"),
            ("12.5", "monthlyBudget"),
            (False, "monthlyBudget"),
        )
    ),
    plan_case("team_trial", 4, {"monthlyBudget": 1, "note": ""}, id="note-empty"),
    plan_case("team_trial", 4, {"monthlyBudget": 1, "note": "n" * 120}, id="note-120"),
    plan_case("team_trial", 4, {"monthlyBudget": 1, "note": "n" * 121}, "note", id="note-121"),
    plan_case("team_trial", 4, {"monthlyBudget": 1, "note": 5}, "note", id="note-number"),
    plan_case("team_trial", 4, {"monthlyBudget": None}, "monthlyBudget", id="budget-null"),
    # step 5 (tour): no fields, so every key is refused ("its fields are: none")
    plan_case("team_trial", 5, {}, id="no-fields"),
    plan_case("team_trial", 5, {"seen": True}, "seen", id="no-fields-key"),
    plan_case("team_trial", 6, {"dashboardName": "KPIs"}, id="valid"),
]


def check(page: Page, expression: str, *args: Any) -> Any:
    """Run ``expression`` (a function of the validator module and ``args``) in the browser."""
    return page.evaluate(
        f"async ([module, args]) => ({expression})(await import(module), ...args)",
        [VALIDATOR, list(args)],
    )


def browser_step(steps: dict[str, list[dict[str, Any]]], flow: str, step: int) -> Any:
    found = [s for s in steps[flow] if s["step"] == step]
    return found[0] if found else None


@pytest.mark.parametrize(("flow", "step", "metadata", "expected", "overrides"), PLAN_CASES)
def test_the_tracking_plan_gives_the_servers_messages(
    validator_page: Page,
    served_steps: dict[str, list[dict[str, Any]]],
    flow: str,
    step: int,
    metadata: Any,
    expected: tuple[str, ...],
    overrides: dict[str, Any],
) -> None:
    # given a submission of ``metadata`` for a step of the flow, as the page has the step
    given = {"step": step, "idempotencyKey": KEY, "source": "web", "metadata": metadata}
    given |= overrides
    definition = browser_step(served_steps, flow, step)

    # when the browser and the server check it
    client, wire = check(
        validator_page,
        "(v, step, input) => [v.submissionProblems(step, input), JSON.stringify(input)]",
        definition,
        given,
    )
    server = server_errors(json.loads(wire), FLOWS[flow])

    # then they report the same problems, which are the ones the case is about
    assert client == server
    assert tuple(e["path"][-1] for e in server) == expected


def form_case(flow: str, step: int, values: dict[str, Any], *expected: str, id: str) -> Any:
    return pytest.param(flow, step, values, expected, None, id=f"{flow}-{step}-{id}")


def form_sends(flow: str, step: int, values: dict[str, Any], sends: dict[str, Any], id: str) -> Any:
    """A valid form whose values become exactly the metadata ``sends``."""
    return pytest.param(flow, step, values, (), sends, id=f"{flow}-{step}-{id}")


FORM_CASES = [
    # text is trimmed (of what either language calls whitespace), blank fields left out
    form_sends("default", 1, {"displayName": "  Ada  ", "role": "engineer"}, PROFILE, id="trim"),
    form_sends(
        "default",
        1,
        {"displayName": "\u3000Ada\xa0\x85", "role": "engineer"},
        PROFILE,
        id="trim-unicode",
    ),
    form_sends(
        "default",
        1,
        {"displayName": " " + "é" * 64 + " ", "role": "product"},
        {"displayName": "é" * 64, "role": "product"},
        id="longest",
    ),
    form_case("default", 1, {"displayName": "", "role": ""}, "displayName", "role", id="empty"),
    form_case(
        "default", 1, {"displayName": "\x1f\x1c", "role": "other"}, "displayName", id="py-blank"
    ),
    form_case("default", 1, {"role": "founder"}, "displayName", id="field-missing"),
    form_case(
        "default", 1, {"displayName": "x" * 65, "role": "x"}, "displayName", "role", id="bad"
    ),
    form_case("default", 1, {"displayName": "a\u0007b", "role": "other"}, "displayName", id="bell"),
    form_case("default", 2, {"workspaceName": "a\x00b"}, "metadata", id="nul"),
    form_sends(
        "default",
        3,
        {"teammateEmail": " grace.hopper+ob@navy.example.org "},
        {"teammateEmail": "grace.hopper+ob@navy.example.org"},
        id="email-trimmed",
    ),
    form_case("default", 3, {"teammateEmail": "grace@example"}, "teammateEmail", id="email-bad"),
    form_case("default", 3, {"teammateEmail": TOO_LONG_EMAIL}, "teammateEmail", id="email-255"),
    # number text becomes a number (as a number input's value), other text stays text
    form_sends(
        "team_trial",
        1,
        {"fullName": "Ada Lovelace", "workEmail": "ada@example.com", "teamSize": " 12 "},
        ACCOUNT,
        id="integer-text",
    ),
    *(
        form_case("team_trial", 1, {**ACCOUNT, "teamSize": text}, *problem, id=f"size-{text}")
        for text, *problem in (
            ("2.0",),
            ("1e2",),
            ("500",),
            ("12.5", "teamSize"),
            ("501", "teamSize"),
            ("-3", "teamSize"),
            ("1e400", "teamSize"),
            ("0x10", "teamSize"),
            ("abc", "teamSize"),
            ("not a number", "teamSize"),  # what the page reads from a number input's bad text
            ("", "teamSize"),
        )
    ),
    form_case(
        "team_trial",
        1,
        {"fullName": " A ", "workEmail": "", "teamSize": "0"},
        "fullName",
        "workEmail",
        "teamSize",
        id="all-wrong",
    ),
    # a checkbox is true or false, a select its value ("" for "Choose…")
    form_sends(
        "team_trial",
        2,
        {"plan": "pro", "annualBilling": False},
        {"plan": "pro", "annualBilling": False},
        id="unchecked",
    ),
    form_case("team_trial", 2, {"plan": "", "annualBilling": True}, "plan", id="not-chosen"),
    form_case("team_trial", 2, {"plan": "gold", "annualBilling": True}, "plan", id="not-a-choice"),
    form_sends("team_trial", 3, {"connector": "bigquery"}, {"connector": "bigquery"}, id="choice"),
    form_sends(
        "team_trial", 4, {"monthlyBudget": ".5", "note": "  "}, {"monthlyBudget": 0.5}, id="number"
    ),
    *(
        form_case(
            "team_trial", 4, {"monthlyBudget": text, "note": ""}, *problem, id=f"budget-{text}"
        )
        for text, *problem in (
            ("10000",),
            ("1.25e3",),
            ("0.49", "monthlyBudget"),
            ("10000.01", "monthlyBudget"),
            ("1,5", "monthlyBudget"),
            ("", "monthlyBudget"),
        )
    ),
    form_case("team_trial", 4, {"monthlyBudget": "1", "note": "n" * 121}, "note", id="note-121"),
    form_sends("team_trial", 5, {}, {}, id="no-fields"),
]


@pytest.mark.parametrize(("flow", "step", "values", "expected", "sends"), FORM_CASES)
def test_forms_send_what_the_server_accepts_and_refuse_what_it_refuses(
    validator_page: Page,
    served_steps: dict[str, list[dict[str, Any]]],
    flow: str,
    step: int,
    values: dict[str, Any],
    expected: tuple[str, ...],
    sends: dict[str, Any] | None,
) -> None:
    # given a step's form values, as the page reads them from its controls
    definition = browser_step(served_steps, flow, step)

    # when the browser validates them and builds the submission the page would send
    client = check(
        validator_page,
        """(v, step, n, key, values) => {
            const { errors, metadata } = v.validateStepFields(step, values);
            const input = { step: n, idempotencyKey: key, source: "web", metadata };
            const problems = v.submissionProblems(step, input);
            return { errors, problems, wire: JSON.stringify(input) };
        }""",
        definition,
        step,
        KEY,
        values,
    )
    sent = json.loads(client["wire"])
    server = server_errors(sent, FLOWS[flow])

    # then the browser's verdict is the server's on what the browser would send
    assert client["problems"] == server
    assert tuple(e["path"][-1] for e in server) == expected
    plan = [e for e in server if len(e["path"]) == 3]
    if not any(e["path"] == ["input", "metadata"] for e in server):
        assert client["errors"] == [{"field": e["path"][2], "message": e["message"]} for e in plan]
    if sends is not None:
        assert sent["metadata"] == sends


def test_an_unknown_step_has_no_form(validator_page: Page) -> None:
    result = check(validator_page, "(v) => v.validateStepFields(null, { x: 'y' })")

    assert result == {"errors": [], "metadata": {}}


def test_the_messages_read_as_the_tracking_plan_says(
    validator_page: Page, served_steps: dict[str, list[dict[str, Any]]]
) -> None:
    # a few of the table's messages spelled out, so that a wording change shows up here too
    budget = browser_step(served_steps, "team_trial", 4)
    tour = browser_step(served_steps, "team_trial", 5)
    profile = browser_step(served_steps, "default", 1)
    messages = check(
        validator_page,
        """(v, budget, tour, profile) => [
            ...v.metadataProblems(budget, { monthlyBudget: 0.25, note: 1 }),
            ...v.metadataProblems(tour, { seen: true }),
            ...v.metadataProblems(profile, { displayName: " ", role: "boss", x: 1 }),
        ].map((e) => e.message)""",
        budget,
        tour,
        profile,
    )
    assert messages == [
        "Monthly budget must be at least 0.5.",
        "Note must be text.",
        "'seen' is not a field of step 5 (tour); its fields are: none.",
        "Display name is required.",
        "Your role must be one of: engineer, designer, product, founder, other.",
        "'x' is not a field of step 1 (profile); its fields are: displayName, role.",
    ]


def test_generated_idempotency_keys_are_accepted_by_the_server(validator_page: Page) -> None:
    keys = validator_page.evaluate(
        """async () => {
            const { newKey } = await import("/static/onboarding/flow.js");
            const secure = newKey();
            Object.defineProperty(crypto, "randomUUID", { value: undefined, configurable: true });
            return [secure, newKey(), newKey()];  // the fallback for insecure contexts
        }"""
    )
    assert len(set(keys)) == 3
    for key in keys:
        assert IDEMPOTENCY_KEY_PATTERN.fullmatch(key)
        assert uuid.UUID(key).version == 4
        assert re.fullmatch(r"[0-9a-f-]{36}", key)
