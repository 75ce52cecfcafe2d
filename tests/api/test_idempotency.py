"""Retries never record twice; racing submissions complete a step once.

Every test here runs on both flows of ``tests/flows.py`` (default and team_trial).
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from app.kpi import OnboardingFlow
from tests.conftest import Api, count, new_key
from tests.flows import (
    every_flow,  # noqa: F401 - runs every test here on both flows
    kpi_steps,
    valid_metadata,
)


async def test_retry_with_same_key_replays_the_stored_answer(
    api: Api, engine: AsyncEngine, flow: OnboardingFlow
) -> None:
    # given a completed submission
    key = new_key()
    metadata = valid_metadata(flow, 1, variant=1)
    first = await api.complete(1, key=key, source="web", metadata=metadata)
    await api.complete(2)  # progress moves on after the first answer

    # when the client retries it (say its first response was lost)
    again = await api.complete(1, key=key, source="web", metadata=dict(metadata))

    # then it gets the original answer back, marked as replayed, and nothing new is written
    assert again["replayed"] is True
    assert {**again, "replayed": False} == first
    assert again["progress"]["completedSteps"] == [1]
    assert await count(engine, "step_completions") == 2
    assert await count(engine, "kpi_events") == len({1, 2} & set(kpi_steps(flow)))


async def test_same_key_with_different_input_is_a_conflict(api: Api, engine: AsyncEngine) -> None:
    key = new_key()
    await api.complete(1, key=key, source="web")

    result = await api.complete(1, key=key, source="ios")

    assert result["__typename"] == "IdempotencyConflictError"
    assert result["code"] == "IDEMPOTENCY_CONFLICT"
    assert result["conflictReason"] == "KEY_REUSED_WITH_DIFFERENT_INPUT"
    assert result["retryable"] is False
    assert await count(engine, "step_completions") == 1
    assert await count(engine, "kpi_events") == 1


async def test_keys_are_scoped_per_user(api: Api, engine: AsyncEngine) -> None:
    key = new_key()
    await api.complete(1, user="alice", key=key)

    result = await api.complete(1, user="bob", key=key)

    assert result["__typename"] == "CompleteOnboardingStepSuccess"
    assert result["replayed"] is False
    assert result["analytics"]["event"]["userId"] == "bob"
    assert await count(engine, "kpi_events") == 2


async def test_concurrent_duplicates_record_one_completion_and_one_event(
    api: Api, engine: AsyncEngine
) -> None:
    # when the same submission arrives 25 times at once
    key = new_key()
    results = await asyncio.gather(*(api.complete(1, key=key, source="web") for _ in range(25)))

    # then each caller sees the same completion, exactly one of them fresh
    typenames = {r["__typename"] for r in results}
    assert typenames == {"CompleteOnboardingStepSuccess"}, results
    assert sum(not r["replayed"] for r in results) == 1
    assert len({r["analytics"]["event"]["id"] for r in results}) == 1
    assert await count(engine, "step_completions") == 1
    assert await count(engine, "kpi_events") == 1


async def test_racing_submissions_with_different_keys_complete_the_step_once(
    api: Api, engine: AsyncEngine
) -> None:
    results = await asyncio.gather(*(api.complete(1) for _ in range(20)))

    winners = [r for r in results if r["__typename"] == "CompleteOnboardingStepSuccess"]
    losers = [r for r in results if r["__typename"] != "CompleteOnboardingStepSuccess"]
    assert len(winners) == 1
    assert {(r["__typename"], r["reason"]) for r in losers} == {
        ("StepNotEligibleError", "ALREADY_COMPLETED")
    }
    assert await count(engine, "step_completions") == 1
    assert await count(engine, "kpi_events") == 1


async def test_many_users_at_once_each_get_their_event(api: Api, engine: AsyncEngine) -> None:
    results = await asyncio.gather(*(api.complete(1, user=f"user-{i}") for i in range(40)))

    assert all(r["analytics"]["status"] == "RECORDED" for r in results)
    assert await count(engine, "step_completions") == 40
    assert await count(engine, "kpi_events") == 40
