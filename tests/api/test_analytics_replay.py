"""analyticsFailures and replayAnalyticsFailures: failures resolved exactly once.

Every test here runs on both flows of ``tests/flows.py`` (default and team_trial).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kpi import OnboardingFlow
from tests.api.test_analytics_write_failure import break_event_writes
from tests.conftest import Api, count, rows
from tests.flows import (
    every_flow,  # noqa: F401 - runs every test here on both flows
    step_kpi,
)

FAILURES = """
query Failures($unresolvedOnly: Boolean!, $first: Int, $after: String) {
  analyticsFailures(unresolvedOnly: $unresolvedOnly, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id completionId userId step stage errorMessage attempts resolvedAt
                   resolvedEventId } }
  }
}
"""
REPLAY = (
    "mutation($limit: Int!) { replayAnalyticsFailures(limit: $limit) "
    "{ resolved stillFailing remaining } }"
)


def admin(api: Api) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.tokens.mint('root', roles=['admin'])}"}


async def as_admin(api: Api, document: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = await api.execute(document, variables, headers=admin(api))
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def repair_event_writes(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "DROP TRIGGER refuse_kpi_events"
                + (" ON kpi_events" if engine.dialect.name == "postgresql" else "")
            )
        )


async def test_replay_resolves_each_failure_exactly_once(api: Api, engine: AsyncEngine) -> None:
    # given three completions whose KPI events could not be written
    await break_event_writes(engine)
    for user in ("f1", "f2", "f3"):
        assert (await api.complete(1, user=user))["analytics"]["status"] == "FAILED"
    listed = (await as_admin(api, FAILURES, {"unresolvedOnly": True}))["analyticsFailures"]
    assert listed["totalCount"] == 3
    assert {e["node"]["userId"] for e in listed["edges"]} == {"f1", "f2", "f3"}
    assert {e["node"]["stage"] for e in listed["edges"]} == {"WRITE"}

    # a replay while the database still refuses: recorded as another failed attempt
    still = (await as_admin(api, REPLAY, {"limit": 10}))["replayAnalyticsFailures"]
    assert still == {"resolved": 0, "stillFailing": 3, "remaining": 3}
    attempts = await rows(engine, "SELECT attempts FROM analytics_failures")
    assert [r["attempts"] for r in attempts] == [2, 2, 2]

    # when the database accepts events again, two replays race
    await repair_event_writes(engine)
    first, second = await asyncio.gather(
        as_admin(api, REPLAY, {"limit": 10}), as_admin(api, REPLAY, {"limit": 10})
    )

    # then every failure is resolved once, with one event per completion
    reports = [first["replayAnalyticsFailures"], second["replayAnalyticsFailures"]]
    assert sum(r["resolved"] for r in reports) == 3
    assert all(r["stillFailing"] == 0 for r in reports)  # "remaining" may count the rival's
    assert await count(engine, "kpi_events") == 3
    resolved = (await as_admin(api, FAILURES, {"unresolvedOnly": False}))["analyticsFailures"]
    stored = await rows(engine, "SELECT id FROM kpi_events")
    events = {uuid.UUID(str(r["id"])) for r in stored}
    assert {uuid.UUID(e["node"]["resolvedEventId"]) for e in resolved["edges"]} == events
    assert (await as_admin(api, FAILURES, {"unresolvedOnly": True}))["analyticsFailures"][
        "totalCount"
    ] == 0
    again = (await as_admin(api, REPLAY, {"limit": 10}))["replayAnalyticsFailures"]
    assert again == {"resolved": 0, "stillFailing": 0, "remaining": 0}


async def test_replayed_events_count_in_the_series(
    api: Api, engine: AsyncEngine, flow: OnboardingFlow
) -> None:
    await break_event_writes(engine)
    await api.complete(1, user="late")
    await repair_event_writes(engine)

    await as_admin(api, REPLAY, {"limit": 5})

    [slot] = await rows(
        engine, "SELECT kpi_id, sum(events) AS n FROM kpi_event_rollups GROUP BY kpi_id"
    )
    assert (slot["kpi_id"], slot["n"]) == (step_kpi(flow, 1), 1)


async def test_failures_page_through(api: Api, engine: AsyncEngine) -> None:
    await break_event_writes(engine)
    for i in range(5):
        await api.complete(1, user=f"pg{i}")

    first = await as_admin(api, FAILURES, {"unresolvedOnly": True, "first": 2})
    page = first["analyticsFailures"]
    ids = [e["node"]["id"] for e in page["edges"]]
    while page["pageInfo"]["hasNextPage"]:
        page = (
            await as_admin(
                api,
                FAILURES,
                {
                    "unresolvedOnly": True,
                    "first": 2,
                    "after": page["pageInfo"]["endCursor"],
                },
            )
        )["analyticsFailures"]
        ids += [e["node"]["id"] for e in page["edges"]]

    assert len(ids) == len(set(ids)) == 5


@pytest.mark.parametrize("document", [FAILURES, REPLAY])
async def test_failures_and_replay_need_admin(api: Api, document: str) -> None:
    variables = {"unresolvedOnly": True} if document is FAILURES else {"limit": 1}
    analyst = {"Authorization": f"Bearer {api.tokens.mint('ana', roles=['analyst'])}"}

    body = await api.execute(document, variables, headers=analyst)

    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_replay_limit_is_bounded(api: Api) -> None:
    body = await api.execute(REPLAY, {"limit": 0}, headers=admin(api))

    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
