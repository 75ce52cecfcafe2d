"""completeOnboardingStep over HTTP: the seed's steps 2-6 and every error branch.

Every test here runs on both flows of ``tests/flows.py``: the default one and a second one
of our own, so nothing in the core path depends on the shipped steps.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from app.kpi import OnboardingFlow
from tests.conftest import Api, count, new_key, rows
from tests.flows import (
    every_flow,  # noqa: F401 - runs every test here on both flows
    plain_steps,
    valid_metadata,
)


async def test_step_1_records_completion_and_kpi_event(
    api: Api, engine: AsyncEngine, flow: OnboardingFlow
) -> None:
    # given a signed-in user who has completed nothing, and step 1 counting toward a KPI
    before = datetime.now(UTC)
    kpi_id = flow.steps[0].kpi_id
    assert kpi_id is not None
    metadata = valid_metadata(flow, 1)

    # when they complete step 1 from the web with the metadata its fields ask for
    result = await api.complete(1, user="alice", source="web", metadata=metadata)

    # then they see the confirmation, their progress and the recorded event
    assert result["__typename"] == "CompleteOnboardingStepSuccess"
    assert result["replayed"] is False
    assert result["completion"]["step"] == 1
    assert result["progress"] == {
        "completedSteps": [1],
        "nextStep": 2,
        "totalSteps": flow.total_steps,
        "isComplete": False,
    }
    event = result["analytics"]["event"]
    assert result["analytics"]["status"] == "RECORDED"
    assert event["kpiId"] == kpi_id
    assert event["userId"] == "alice"
    assert event["step"] == 1
    assert event["source"] == "web"
    assert event["metadata"] == metadata
    occurred_at = datetime.fromisoformat(event["occurredAt"])
    assert occurred_at.utcoffset() == timedelta(0)
    assert before <= occurred_at <= datetime.now(UTC)
    assert event["occurredAt"] == result["completion"]["completedAt"]

    # and the database holds exactly that completion and that event
    [completion] = await rows(engine, "SELECT * FROM step_completions")
    assert (completion["user_id"], completion["step"], completion["source"]) == ("alice", 1, "web")
    [stored] = await rows(engine, "SELECT * FROM kpi_events")
    assert uuid.UUID(str(stored["id"])) == uuid.UUID(event["id"])
    assert stored["completion_id"] == completion["id"]
    assert (stored["kpi_id"], stored["user_id"], stored["step"], stored["source"]) == (
        kpi_id,
        "alice",
        1,
        "web",
    )
    assert await count(engine, "analytics_failures") == 0


async def test_source_defaults_to_api(api: Api) -> None:
    result = await api.complete(1)
    assert result["analytics"]["event"]["source"] == "api"


async def test_step_without_kpi_records_no_event(
    api: Api, engine: AsyncEngine, flow: OnboardingFlow
) -> None:
    # given a user who has completed every step before the first step without a KPI
    plain = plain_steps(flow)[0]
    for step in range(1, plain):
        await api.complete(step, user="bob")
    events_before = await count(engine, "kpi_events")

    result = await api.complete(plain, user="bob")

    assert result["__typename"] == "CompleteOnboardingStepSuccess"
    assert result["analytics"] == {"status": "NOT_APPLICABLE", "event": None}
    assert result["progress"]["completedSteps"] == list(range(1, plain + 1))
    assert await count(engine, "kpi_events") == events_before
    assert await count(engine, "step_completions") == plain


async def test_completing_every_step_finishes_onboarding(api: Api, flow: OnboardingFlow) -> None:
    last = flow.total_steps
    for step in range(1, last):
        assert (await api.complete(step))["__typename"] == "CompleteOnboardingStepSuccess"

    result = await api.complete(last)

    assert result["progress"] == {
        "completedSteps": list(range(1, last + 1)),
        "nextStep": None,
        "totalSteps": last,
        "isComplete": True,
    }
    assert result["analytics"]["event"]["kpiId"] == flow.steps[-1].kpi_id


async def test_unknown_step_is_not_eligible(api: Api, engine: AsyncEngine) -> None:
    result = await api.complete(99)

    assert result["__typename"] == "StepNotEligibleError"
    assert result["code"] == "STEP_NOT_ELIGIBLE"
    assert (result["step"], result["reason"]) == (99, "UNKNOWN_STEP")
    assert await count(engine, "step_completions") == 0
    assert await count(engine, "idempotency_keys") == 0


async def test_step_2_before_step_1_is_not_eligible(api: Api, engine: AsyncEngine) -> None:
    result = await api.complete(2)

    assert result["__typename"] == "StepNotEligibleError"
    assert result["reason"] == "PREVIOUS_STEP_INCOMPLETE"
    assert await count(engine, "step_completions") == 0
    assert await count(engine, "kpi_events") == 0


async def test_completing_a_step_twice_with_new_key_is_refused(
    api: Api, engine: AsyncEngine
) -> None:
    await api.complete(1)

    result = await api.complete(1)  # a new idempotency key: a new submission

    assert result["__typename"] == "StepNotEligibleError"
    assert result["reason"] == "ALREADY_COMPLETED"
    assert await count(engine, "step_completions") == 1
    assert await count(engine, "kpi_events") == 1


async def test_a_rejected_attempt_does_not_burn_its_key(api: Api) -> None:
    key = new_key()
    assert (await api.complete(2, key=key))["reason"] == "PREVIOUS_STEP_INCOMPLETE"
    await api.complete(1)

    result = await api.complete(2, key=key)

    assert result["__typename"] == "CompleteOnboardingStepSuccess"
    assert result["replayed"] is False


async def test_users_progress_independently(api: Api, engine: AsyncEngine) -> None:
    await api.complete(1, user="alice")

    result = await api.complete(1, user="bob")

    assert result["__typename"] == "CompleteOnboardingStepSuccess"
    assert result["progress"]["completedSteps"] == [1]
    assert await count(engine, "kpi_events") == 2
