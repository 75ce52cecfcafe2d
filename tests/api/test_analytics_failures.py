"""A KPI event that cannot be built or written never costs the user their completion."""

from __future__ import annotations

import pytest
import structlog
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.flow_file import DEFAULT_FLOW
from app.kpi import OnboardingFlow, OnboardingStep
from tests.conftest import Api, count, rows


def failures_counted(app: Starlette, stage: str) -> float:
    registry: CollectorRegistry = app.state.metrics.registry
    return registry.get_sample_value("analytics_failures_total", {"stage": stage}) or 0.0


@pytest.fixture
def flow() -> OnboardingFlow:
    """Step 1 misconfigured with a KPI id the flow does not declare (built in code: a flow
    file with it is refused); the rest as shipped."""
    return OnboardingFlow(
        steps=(
            OnboardingStep(
                1, "profile", "Create your profile", "onboarding.typo_kpi", extra_allowed=True
            ),
            *DEFAULT_FLOW.steps[1:],
        ),
        kpis=DEFAULT_FLOW.kpis,
    )


async def test_event_build_failure_keeps_completion_and_records_failure(
    api: Api, engine: AsyncEngine, app: Starlette
) -> None:
    with structlog.testing.capture_logs() as logs:
        result = await api.complete(1, user="alice", source="web", metadata={"plan": "pro"})

    # the user's completion stands, and the answer says the analytics failed
    assert result["__typename"] == "CompleteOnboardingStepSuccess"
    assert result["progress"]["completedSteps"] == [1]
    assert result["analytics"] == {"status": "FAILED", "event": None}
    assert await count(engine, "step_completions") == 1
    assert await count(engine, "kpi_events") == 0
    # the failure is durable, with what is needed to replay it
    [failure] = await rows(engine, "SELECT * FROM analytics_failures")
    assert failure["stage"] == "BUILD"
    assert failure["error_type"] == "AnalyticsEventBuildError"
    assert "onboarding.typo_kpi" in failure["error_message"]
    assert failure["resolved_at"] is None
    # counted and logged at error level
    assert failures_counted(app, "BUILD") == 1
    [line] = [entry for entry in logs if entry["event"] == "analytics.event_failed"]
    assert line["log_level"] == "error"
    assert line["stage"] == "BUILD"
    assert line["user_id"] == "alice"
    assert line["completion_id"] == failure["completion_id"]


async def test_a_failed_step_still_unlocks_the_next(api: Api) -> None:
    await api.complete(1)

    result = await api.complete(2)

    assert result["__typename"] == "CompleteOnboardingStepSuccess"
