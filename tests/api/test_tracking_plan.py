"""The server enforces each step's tracking plan: bad metadata is refused, nothing recorded.

Most cases run on the test flow (``tests/flows/team_trial.toml``), which has every field
type; the default flow's own plan is checked on the issue's example (step 3, no teammate).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth import TokenCodec
from app.config import Settings
from app.flow_file import DEFAULT_FLOW, parse_flow
from app.kpi import OnboardingFlow
from app.main import create_app
from tests.api.test_analytics_replay import REPLAY, admin, repair_event_writes
from tests.api.test_analytics_write_failure import break_event_writes
from tests.conftest import TEST_SECRET, Api, count, rows
from tests.flows import TEAM_TRIAL, valid_metadata

TABLES = ("step_completions", "kpi_events", "analytics_failures", "idempotency_keys")


async def recorded(engine: AsyncEngine) -> dict[str, int]:
    return {table: await count(engine, table) for table in TABLES}


def metadata_errors(result: dict[str, Any]) -> list[tuple[str, str]]:
    assert result["__typename"] == "ValidationError", result
    assert result["code"] == "VALIDATION_FAILED"
    paths = [e["path"] for e in result["fieldErrors"]]
    assert all(p[:2] == ["input", "metadata"] and len(p) == 3 for p in paths), paths
    return [(e["path"][2], e["message"]) for e in result["fieldErrors"]]


# --- the default flow: the example ---------------------------------------------------


async def test_inviting_no_teammate_is_refused_and_records_nothing(
    api: Api, engine: AsyncEngine
) -> None:
    # given a user at step 3 of the default flow ("Invite a teammate", a KPI step)
    await api.complete(1, user="ivy")
    await api.complete(2, user="ivy")
    before = await recorded(engine)

    # when an API client completes it without the teammate's email
    result = await api.complete(3, user="ivy", metadata={})

    # then it is refused, field by field, and no completion and no KPI event exist
    assert metadata_errors(result) == [("teammateEmail", "Teammate's email is required.")]
    assert await recorded(engine) == before
    progress = await api.execute("{ myOnboardingProgress { nextStep } }", headers=api.auth("ivy"))
    assert progress["data"]["myOnboardingProgress"]["nextStep"] == 3


async def test_the_default_flow_refuses_keys_it_does_not_declare(api: Api) -> None:
    result = await api.complete(1, metadata={**valid_metadata(DEFAULT_FLOW, 1), "plan": "pro"})

    assert metadata_errors(result) == [
        ("plan", "'plan' is not a field of step 1 (profile); its fields are: displayName, role.")
    ]


# --- every field type (the test flow) --------------------------------------------------------

STEP_1 = valid_metadata(TEAM_TRIAL, 1)  # fullName (2-40), workEmail, teamSize (integer 1-500)
STEP_2 = valid_metadata(TEAM_TRIAL, 2)  # plan (choice), annualBilling (boolean, optional)
STEP_4 = valid_metadata(TEAM_TRIAL, 4)  # monthlyBudget (number 0.5-10000), note (optional)


def case(step: int, metadata: dict[str, Any], *expected: tuple[str, str], id: str) -> Any:
    return pytest.param(step, metadata, list(expected), id=id)


CASES = [
    case(1, {**STEP_1, "fullName": None}, ("fullName", "Full name is required."), id="null"),
    case(1, {**STEP_1, "fullName": "   "}, ("fullName", "Full name is required."), id="blank"),
    case(1, {**STEP_1, "fullName": 42}, ("fullName", "Full name must be text."), id="not-text"),
    case(
        1,
        {**STEP_1, "fullName": "A"},
        ("fullName", "Full name must be at least 2 characters."),
        id="too-short",
    ),
    case(
        1,
        {**STEP_1, "fullName": "é" * 41},
        ("fullName", "Full name must be at most 40 characters."),
        id="too-long",
    ),
    case(
        1,
        {**STEP_1, "fullName": "Ada\nLovelace"},
        ("fullName", "Full name must not contain control characters."),
        id="control-character",
    ),
    case(
        1,
        {**STEP_1, "workEmail": "ada@example"},
        ("workEmail", "Work email must be an email address like name@example.com."),
        id="email-without-dot",
    ),
    case(
        1,
        {**STEP_1, "teamSize": 2.5},
        ("teamSize", "Team size must be a whole number."),
        id="integer-fraction",
    ),
    case(
        1,
        {**STEP_1, "teamSize": "12"},
        ("teamSize", "Team size must be a whole number."),
        id="integer-as-text",
    ),
    case(
        1,
        {**STEP_1, "teamSize": True},
        ("teamSize", "Team size must be a whole number."),
        id="integer-boolean",
    ),
    case(1, {**STEP_1, "teamSize": 0}, ("teamSize", "Team size must be at least 1."), id="min"),
    case(1, {**STEP_1, "teamSize": 501}, ("teamSize", "Team size must be at most 500."), id="max"),
    case(
        2,
        {**STEP_2, "plan": "enterprise"},
        ("plan", "Plan must be one of: starter, pro."),
        id="choice-outside",
    ),
    case(
        2,
        {"annualBilling": True},
        ("plan", "Plan: choose one of the options."),
        id="choice-missing",
    ),
    case(
        2,
        {**STEP_2, "annualBilling": "yes"},
        ("annualBilling", "Annual billing must be true or false."),
        id="boolean-as-text",
    ),
    case(
        4,
        {**STEP_4, "monthlyBudget": 0.25},
        ("monthlyBudget", "Monthly budget must be at least 0.5."),
        id="number-min",
    ),
    case(
        4,
        {**STEP_4, "monthlyBudget": 10000.5},
        ("monthlyBudget", "Monthly budget must be at most 10000."),
        id="number-max",
    ),
    case(
        4,
        {**STEP_4, "monthlyBudget": "a lot"},
        ("monthlyBudget", "Monthly budget must be a number."),
        id="number-as-text",
    ),
    case(
        1,
        {"workEmail": "not-an-email", "teamSize": 0, "nickname": "ada"},
        ("fullName", "Full name is required."),
        ("workEmail", "Work email must be an email address like name@example.com."),
        ("teamSize", "Team size must be at least 1."),
        (
            "nickname",
            "'nickname' is not a field of step 1 (account); its fields are: "
            "fullName, teamSize, workEmail.",
        ),
        id="every-problem-at-once",
    ),
]


# parametrising the `flow` fixture's name overrides it: these tests serve the test flow
on_team_trial = pytest.mark.parametrize("flow", [TEAM_TRIAL], ids=["team_trial"])


@on_team_trial
@pytest.mark.parametrize(("step", "metadata", "expected"), CASES)
async def test_metadata_outside_the_plan_is_refused_and_records_nothing(
    api: Api,
    engine: AsyncEngine,
    step: int,
    metadata: dict[str, Any],
    expected: list[tuple[str, str]],
) -> None:
    # given a user who may complete `step`
    for earlier in range(1, step):
        await api.complete(earlier, user="tess")
    before = await recorded(engine)

    # when the metadata breaks the step's plan
    result = await api.complete(step, user="tess", metadata=metadata)

    # then each problem is named at its key, and nothing is recorded
    assert metadata_errors(result) == expected
    assert await recorded(engine) == before


@on_team_trial
async def test_optional_fields_left_blank_or_null_are_accepted_and_not_stored(
    api: Api, engine: AsyncEngine
) -> None:
    await api.complete(1, user="opt")

    # when optional fields come as null and as blank text
    nulled = await api.complete(2, user="opt", metadata={"plan": "pro", "annualBilling": None})
    await api.complete(3, user="opt")
    blank = await api.complete(4, user="opt", metadata={"monthlyBudget": 20, "note": "  "})

    # then both are accepted, and neither blank value is recorded as if it were given
    assert nulled["__typename"] == blank["__typename"] == "CompleteOnboardingStepSuccess"
    stored = await rows(
        engine, "SELECT step, metadata FROM step_completions WHERE step IN (2, 4) ORDER BY step"
    )
    assert [(r["step"], as_json(r["metadata"])) for r in stored] == [
        (2, {"plan": "pro"}),
        (4, {"monthlyBudget": 20}),
    ]


def as_json(value: Any) -> Any:
    """A JSON column: jsonb on PostgreSQL (decoded), JSON text on SQLite."""
    return json.loads(value) if isinstance(value, str) else value


@on_team_trial
async def test_a_step_with_extra_allow_keeps_free_form_keys_in_its_event(
    api: Api, engine: AsyncEngine
) -> None:
    # given a user at step 3 ("connect", extra = "allow", a KPI step)
    for step in (1, 2):
        await api.complete(step, user="free")

    # when they send a declared field and keys of their own
    metadata = {"connector": "csv", "rows": 1200, "via": "drag-and-drop"}
    result = await api.complete(3, user="free", metadata=metadata)

    # then the event carries all of it, and the declared field is still checked
    assert result["__typename"] == "CompleteOnboardingStepSuccess"
    assert result["analytics"]["event"]["metadata"] == metadata
    refused = await api.complete(3, user="other", metadata={"rows": 1})
    assert metadata_errors(refused) == [("connector", "Connector: choose one of the options.")]
    [stored] = await rows(
        engine, "SELECT metadata FROM kpi_events WHERE user_id = 'free' AND step = 3"
    )
    assert as_json(stored["metadata"]) == metadata


@on_team_trial
@pytest.mark.parametrize(
    ("step", "metadata", "key"),
    [
        (1, {**STEP_1, "teamSize": 10**400}, "teamSize"),
        (3, {"connector": "csv", "rows": -(10**400)}, "rows"),  # a free-form key
    ],
    ids=["declared", "free-form"],
)
async def test_an_integer_past_the_float_range_is_refused_as_javascript_reads_it(
    api: Api, engine: AsyncEngine, step: int, metadata: dict[str, Any], key: str
) -> None:
    # JSON.parse reads such a number as Infinity: the contract's limits refuse it, for any key
    for earlier in range(1, step):
        await api.complete(earlier, user="huge")
    before = await recorded(engine)

    result = await api.complete(step, user="huge", metadata=metadata)

    assert result["__typename"] == "ValidationError"
    assert [(e["path"], e["message"]) for e in result["fieldErrors"]] == [
        (["input", "metadata"], f"value of '{key}' must be a finite number")
    ]
    assert await recorded(engine) == before


@on_team_trial
async def test_the_global_limits_still_apply_to_a_free_form_step(api: Api) -> None:
    for step in (1, 2):
        await api.complete(step, user="big")

    result = await api.complete(
        3, user="big", metadata={"connector": "csv", **{f"k{i}": i for i in range(32)}}
    )

    assert result["__typename"] == "ValidationError"
    assert [e["path"] for e in result["fieldErrors"]] == [["input", "metadata"]]
    assert result["fieldErrors"][0]["message"] == "must have at most 32 keys"


# --- the event is built from the plan: a failure survives a flow change, and replays ----------


def _flow_with_step_1(fields: list[dict[str, Any]]) -> OnboardingFlow:
    """The default flow's KPIs with a one-step flow whose step 1 has ``fields``."""
    kpi = DEFAULT_FLOW.kpis[0]
    return parse_flow(
        {
            "kpis": [
                {"id": kpi.id, "name": kpi.name, "description": kpi.description, "kind": "LEADING"}
            ],
            "steps": [{"key": "profile", "title": "Profile", "kpi": kpi.id, "fields": fields}],
        },
        source="test",
    )


NAME = {"name": "displayName", "label": "Display name", "type": "string"}


@asynccontextmanager
async def serving(settings: Settings, flow: OnboardingFlow) -> AsyncIterator[Api]:
    """The app on the test's database with ``flow``, as a restart with a new flow file."""
    application = create_app(settings, flow=flow)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Api(http, TokenCodec(settings, TEST_SECRET), flow)


async def test_a_failure_replayed_under_a_stricter_flow_stays_failed_until_the_flow_is_fixed(
    settings: Settings, engine: AsyncEngine
) -> None:
    # given a completion whose event could not be written, under a flow with an optional name
    relaxed = _flow_with_step_1([NAME])
    await break_event_writes(engine)
    async with serving(settings, relaxed) as api:
        result = await api.complete(1, user="rita", metadata={})
        assert result["analytics"]["status"] == "FAILED"
    await repair_event_writes(engine)

    # when the flow makes the name required, and an admin replays
    strict = _flow_with_step_1([{**NAME, "required": True}])
    async with serving(settings, strict) as api:
        body = await api.execute(REPLAY, {"limit": 10}, headers=admin(api))

    # then the event still cannot be built: the completion stays, the failure says why
    assert body["data"]["replayAnalyticsFailures"] == {
        "resolved": 0,
        "stillFailing": 1,
        "remaining": 1,
    }
    [failure] = await rows(engine, "SELECT stage, error_message FROM analytics_failures")
    assert failure["stage"] == "BUILD"
    assert "displayName: Display name is required." in failure["error_message"]
    assert await count(engine, "step_completions") == 1
    assert await count(engine, "kpi_events") == 0

    # and once the flow is fixed, the replay resolves it with one event
    async with serving(settings, relaxed) as api:
        body = await api.execute(REPLAY, {"limit": 10}, headers=admin(api))
    assert body["data"]["replayAnalyticsFailures"]["resolved"] == 1
    assert await count(engine, "kpi_events") == 1
