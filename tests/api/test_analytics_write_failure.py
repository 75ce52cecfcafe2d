"""The KPI event insert fails in the database: the savepoint saves the completion.

Every test here runs on both flows of ``tests/flows.py`` (default and team_trial).
"""

from __future__ import annotations

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from tests.api.test_analytics_failures import failures_counted
from tests.conftest import Api, count, new_key, rows
from tests.flows import every_flow  # noqa: F401 - runs every test here on both flows

BREAK_EVENT_WRITES = {
    "sqlite": [
        "CREATE TRIGGER refuse_kpi_events BEFORE INSERT ON kpi_events "
        "BEGIN SELECT RAISE(ABORT, 'kpi_events is refusing writes'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_kpi_events() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'kpi_events is refusing writes'; END $$",
        "CREATE TRIGGER refuse_kpi_events BEFORE INSERT ON kpi_events "
        "FOR EACH ROW EXECUTE FUNCTION refuse_kpi_events()",
    ],
}


async def break_event_writes(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for statement in BREAK_EVENT_WRITES[engine.dialect.name]:
            await conn.execute(text(statement))


async def test_event_write_failure_keeps_completion_and_records_failure(
    api: Api, engine: AsyncEngine, app: Starlette
) -> None:
    # given a database that refuses KPI event rows
    await break_event_writes(engine)

    key = new_key()
    with structlog.testing.capture_logs() as logs:
        result = await api.complete(1, user="alice", key=key, source="web")

    assert result["__typename"] == "CompleteOnboardingStepSuccess"
    assert result["analytics"] == {"status": "FAILED", "event": None}
    [completion] = await rows(engine, "SELECT * FROM step_completions")
    assert completion["user_id"] == "alice"
    assert await count(engine, "kpi_events") == 0
    [failure] = await rows(engine, "SELECT * FROM analytics_failures")
    assert failure["stage"] == "WRITE"
    assert failure["completion_id"] == completion["id"]
    assert "refusing writes" in failure["error_message"]
    assert failures_counted(app, "WRITE") == 1
    assert any(e["event"] == "analytics.event_failed" and e["stage"] == "WRITE" for e in logs)

    # and the retry of that submission replays the same FAILED answer without a second failure
    again = await api.complete(1, user="alice", key=key, source="web")
    assert again["replayed"] is True
    assert again["analytics"]["status"] == "FAILED"
    assert await count(engine, "analytics_failures") == 1
