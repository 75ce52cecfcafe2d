"""The storage invariants of the core path, checked with SQL on a real database."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from app.kpi import OnboardingFlow
from tests.conftest import rows


async def assert_core_invariants(engine: AsyncEngine, flow: OnboardingFlow) -> None:
    """One completion per (user, step); per completion exactly one of (event, unresolved
    failure) when its step counts toward a KPI and neither otherwise; no event without its
    completion; a resolved failure names its completion's event."""
    duplicates = await rows(
        engine,
        "SELECT user_id, step FROM step_completions GROUP BY user_id, step HAVING count(*) > 1",
    )
    assert duplicates == []
    per_completion = await rows(
        engine,
        "SELECT c.id, c.user_id, c.step, "
        "(SELECT count(*) FROM kpi_events e WHERE e.completion_id = c.id) AS events, "
        "(SELECT count(*) FROM analytics_failures f WHERE f.completion_id = c.id "
        "AND f.resolved_at IS NULL) AS failures "
        "FROM step_completions c",
    )
    for row in per_completion:
        step = flow.get(row["step"])
        assert step is not None, row
        expected = 1 if step.kpi_id is not None else 0
        assert row["events"] + row["failures"] == expected, row
    mismatched = await rows(
        engine,
        "SELECT e.id FROM kpi_events e LEFT JOIN step_completions c ON c.id = e.completion_id "
        "WHERE c.id IS NULL OR c.user_id != e.user_id OR c.step != e.step",
    )
    assert mismatched == []
    dangling = await rows(
        engine,
        "SELECT f.id FROM analytics_failures f LEFT JOIN kpi_events e "
        "ON e.completion_id = f.completion_id "
        "WHERE f.resolved_at IS NOT NULL AND e.id IS NULL",
    )
    assert dangling == []
