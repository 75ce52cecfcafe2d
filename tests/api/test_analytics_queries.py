"""kpiDefinitions, kpiEvents, kpiEventSeries, onboardingFunnel: answers and access rules.

Every test here runs on both flows of ``tests/flows.py`` (default and team_trial).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kpi import OnboardingFlow
from app.services.funnel import MEDIAN_RELATIVE_ERROR
from tests.api.conftest import Record, analyst, query
from tests.conftest import Api
from tests.flows import (
    every_flow,  # noqa: F401 - runs every test here on both flows
    kpi_steps,
    plain_steps,
    step_kpi,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)

EVENTS = """
query Events($filter: KpiEventFilter, $first: Int, $after: String) {
  kpiEvents(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id kpiId userId step source occurredAt } }
  }
}
"""
SERIES = """
query Series($kpi: String!, $from: DateTime!, $to: DateTime!, $interval: TimeInterval!,
             $tz: String!) {
  kpiEventSeries(kpiId: $kpi, from: $from, to: $to, interval: $interval, timeZone: $tz) {
    kpiId interval timeZone totalEvents totalUniqueUsers
    buckets { start end events uniqueUsers }
  }
}
"""
FUNNEL = """
query Funnel($from: DateTime!, $to: DateTime!, $window: Int) {
  onboardingFunnel(from: $from, to: $to, conversionWindowDays: $window) {
    conversionWindowDays
    steps { step key users conversionFromStart conversionFromPrevious medianSecondsFromPrevious }
  }
}
"""


async def test_kpi_definitions_are_public(api: Api, flow: OnboardingFlow) -> None:
    body = await api.execute("{ kpiDefinitions { id name kind steps } }")

    # every KPI the flow declares, in its order, with the steps that count it (maybe none)
    assert body["data"]["kpiDefinitions"] == [
        {
            "id": kpi.id,
            "name": kpi.name,
            "kind": kpi.kind.value,
            "steps": [s.step for s in flow.steps if s.kpi_id == kpi.id],
        }
        for kpi in flow.kpis
    ]
    by_id = {d["id"]: d for d in body["data"]["kpiDefinitions"]}
    for step in kpi_steps(flow):
        assert step in by_id[step_kpi(flow, step)]["steps"]


@pytest.mark.parametrize(
    ("document", "variables_for"),
    [
        pytest.param(EVENTS, lambda flow: {}, id="kpiEvents"),
        pytest.param(
            SERIES,
            lambda flow: {
                "kpi": step_kpi(flow, 1),
                "from": "2026-03-01T00:00:00Z",
                "to": "2026-03-02T00:00:00Z",
                "interval": "HOUR",
                "tz": "UTC",
            },
            id="kpiEventSeries",
        ),
        pytest.param(
            FUNNEL,
            lambda flow: {"from": "2026-03-01T00:00:00Z", "to": "2026-03-02T00:00:00Z"},
            id="funnel",
        ),
    ],
)
async def test_analyst_queries_need_the_analyst_role(
    api: Api,
    flow: OnboardingFlow,
    document: str,
    variables_for: Callable[[OnboardingFlow], dict[str, Any]],
) -> None:
    variables = variables_for(flow)
    anonymous = await api.execute(document, variables)
    plain_user = await api.execute(document, variables, headers=api.auth("bob"))
    admin = await api.execute(
        document,
        variables,
        headers={"Authorization": f"Bearer {api.tokens.mint('root', roles=['admin'])}"},
    )

    assert anonymous["data"] is None
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert plain_user["data"] is None
    assert plain_user["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "errors" not in admin  # admin includes analyst
    assert "errors" not in await api.execute(document, variables, headers=analyst(api))


async def test_events_are_newest_first_and_filterable(
    api: Api, record: Record, flow: OnboardingFlow
) -> None:
    # u1 goes on to the next step with a KPI; the steps before it count toward none
    first, second = kpi_steps(flow)[:2]
    assert first == 1
    between = list(range(2, second))
    assert between
    assert set(between) <= set(plain_steps(flow))
    await record("u1", 1, T0, source="web")
    await record("u2", 1, T0 + timedelta(minutes=1), source="ios")
    for step in between:
        await record("u1", step, T0 + timedelta(minutes=step))  # no KPI: no event
    await record("u1", second, T0 + timedelta(minutes=second))

    everything = (await query(api, EVENTS, {}))["kpiEvents"]
    ios = (await query(api, EVENTS, {"filter": {"source": "ios"}}))["kpiEvents"]
    u1_step_1 = (
        await query(api, EVENTS, {"filter": {"userId": "u1", "kpiIds": [step_kpi(flow, 1)]}})
    )["kpiEvents"]
    half_open = (
        await query(
            api,
            EVENTS,
            {
                "filter": {
                    "occurredFrom": (T0 + timedelta(minutes=1)).isoformat(),
                    "occurredTo": (T0 + timedelta(minutes=second)).isoformat(),
                }
            },
        )
    )["kpiEvents"]

    assert [(e["node"]["userId"], e["node"]["step"]) for e in everything["edges"]] == [
        ("u1", second),
        ("u2", 1),
        ("u1", 1),
    ]
    assert everything["totalCount"] == 3
    assert [e["node"]["userId"] for e in ios["edges"]] == ["u2"]
    assert ios["totalCount"] == 1
    assert [e["node"]["step"] for e in u1_step_1["edges"]] == [1]
    assert [e["node"]["userId"] for e in half_open["edges"]] == ["u2"]


async def test_pages_neither_skip_nor_repeat_while_events_arrive(api: Api, record: Record) -> None:
    for i in range(25):  # some share a timestamp: the id breaks the tie
        await record(f"p{i}", 1, T0 + timedelta(seconds=i // 3))

    seen: list[str] = []
    after = None
    while True:
        page = (await query(api, EVENTS, {"first": 7, "after": after}))["kpiEvents"]
        seen += [e["node"]["id"] for e in page["edges"]]
        await record(f"late{len(seen)}", 1, T0 + timedelta(days=1))  # newer than any page
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert len(seen) == len(set(seen)) == 25


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        pytest.param({"first": 501}, "between 0 and 500", id="page-too-big"),
        pytest.param({"first": -1}, "between 0 and 500", id="negative-page"),
        pytest.param({"after": "not-a-cursor"}, "cursor", id="bad-cursor"),
        pytest.param({"filter": {"kpiIds": ["k"] * 51}}, "at most 50", id="too-many-kpis"),
    ],
)
async def test_event_page_bounds_are_clear_errors(
    api: Api, variables: dict[str, Any], message: str
) -> None:
    body = await api.execute(EVENTS, variables, headers=analyst(api))

    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert message in body["errors"][0]["message"]


async def test_event_user_progress_is_batched(
    api: Api, record: Record, engine: AsyncEngine
) -> None:
    for i in range(12):
        await record(f"b{i}", 1, T0 + timedelta(seconds=i))
    statements: list[str] = []

    def log(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", log)
    try:
        data = await query(
            api,
            "{ kpiEvents(first: 12) { edges { node { userProgress { completedSteps } } } } }",
            {},
        )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", log)

    assert [e["node"]["userProgress"]["completedSteps"] for e in data["kpiEvents"]["edges"]] == [
        [1]
    ] * 12
    assert sum("onboarding_progress" in s for s in statements) == 1


async def test_series_is_zero_filled_and_totals(
    api: Api, record: Record, flow: OnboardingFlow
) -> None:
    await record("s1", 1, T0 + timedelta(hours=1, minutes=5))
    await record("s2", 1, T0 + timedelta(hours=1, minutes=50))
    await record("s3", 1, T0 + timedelta(hours=4))

    series = (
        await query(
            api,
            SERIES,
            {
                "kpi": step_kpi(flow, 1),
                "from": T0.isoformat(),
                "to": (T0 + timedelta(hours=6)).isoformat(),
                "interval": "HOUR",
                "tz": "UTC",
            },
        )
    )["kpiEventSeries"]

    assert [b["events"] for b in series["buckets"]] == [0, 2, 0, 0, 1, 0]
    assert [b["uniqueUsers"] for b in series["buckets"]] == [0, 2, 0, 0, 1, 0]
    assert series["totalEvents"] == series["totalUniqueUsers"] == 3
    assert series["buckets"][1]["start"] == "2026-03-01T01:00:00+00:00"


async def test_day_buckets_follow_the_zone_across_a_dst_change(
    api: Api, record: Record, flow: OnboardingFlow
) -> None:
    # New York springs forward on 2026-03-08: that local day lasts 23 hours
    ny_midnight_mar_8 = datetime(2026, 3, 8, 5, tzinfo=UTC)  # 00:00 EST
    ny_midnight_mar_9 = datetime(2026, 3, 9, 4, tzinfo=UTC)  # 00:00 EDT
    await record("d1", 1, ny_midnight_mar_8 - timedelta(seconds=1))  # Mar 7, local
    await record("d2", 1, ny_midnight_mar_8)  # Mar 8, local
    await record("d3", 1, ny_midnight_mar_9 - timedelta(seconds=1))  # still Mar 8, local
    await record("d4", 1, ny_midnight_mar_9)  # Mar 9, local

    series = (
        await query(
            api,
            SERIES,
            {
                "kpi": step_kpi(flow, 1),
                "from": "2026-03-07T05:00:00Z",
                "to": "2026-03-10T04:00:00Z",
                "interval": "DAY",
                "tz": "America/New_York",
            },
        )
    )["kpiEventSeries"]

    assert [(b["start"], b["events"]) for b in series["buckets"]] == [
        ("2026-03-07T00:00:00-05:00", 1),
        ("2026-03-08T00:00:00-05:00", 2),
        ("2026-03-09T00:00:00-04:00", 1),
    ]
    assert series["buckets"][1]["end"] == "2026-03-09T00:00:00-04:00"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        pytest.param({"tz": "Mars/Olympus"}, "IANA", id="unknown-zone"),
        pytest.param({"kpi": "nope"}, "is not a KPI of this flow", id="unknown-kpi"),
        pytest.param({"to": "2026-01-01T00:00:00Z"}, "later than", id="empty-range"),
        pytest.param({"to": "2027-03-01T00:00:00Z"}, "more than 5000", id="too-many-buckets"),
    ],
)
async def test_series_bounds_are_clear_errors(
    api: Api, flow: OnboardingFlow, variables: dict[str, Any], message: str
) -> None:
    base = {
        "kpi": step_kpi(flow, 1),
        "from": "2026-03-01T00:00:00Z",
        "to": "2026-03-02T00:00:00Z",
        "interval": "HOUR",
        "tz": "UTC",
    }
    body = await api.execute(SERIES, {**base, **variables}, headers=analyst(api))

    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert message in body["errors"][0]["message"]


async def test_funnel_counts_ordered_steps_within_the_window(
    api: Api, record: Record, flow: OnboardingFlow
) -> None:
    day = timedelta(days=1)
    # fast: every step within a day, an hour apart; slow: step 3 after the 7-day window
    assert flow.total_steps >= 4
    for step in range(1, flow.total_steps + 1):
        await record("fast", step, T0 + (step - 1) * timedelta(hours=1))
    for step, offset in ((1, 0), (2, 2), (3, 9)):
        await record("slow", step, T0 + offset * day)
    await record("stalled", 1, T0 + day)
    await record("outside", 1, T0 + 20 * day)  # step 1 outside the cohort range

    data = (
        await query(
            api,
            FUNNEL,
            {
                "from": T0.isoformat(),
                "to": (T0 + 10 * day).isoformat(),
                "window": 7,
            },
        )
    )["onboardingFunnel"]

    steps = {s["step"]: s for s in data["steps"]}
    assert sorted(steps) == list(range(1, flow.total_steps + 1))
    later = range(4, flow.total_steps + 1)  # only fast reaches these
    assert [steps[n]["users"] for n in sorted(steps)] == [3, 2, 1] + [1] * len(later)
    assert steps[2]["conversionFromStart"] == pytest.approx(2 / 3)
    assert steps[3]["conversionFromPrevious"] == pytest.approx(1 / 2)
    assert [steps[n]["conversionFromPrevious"] for n in later] == [1.0] * len(later)
    assert steps[1]["medianSecondsFromPrevious"] is None
    # medians come from 2 %-wide buckets: within MEDIAN_RELATIVE_ERROR (1 %)
    within = MEDIAN_RELATIVE_ERROR
    assert steps[2]["medianSecondsFromPrevious"] == pytest.approx(
        (3600 + 2 * 86400) / 2, rel=within
    )
    assert steps[3]["medianSecondsFromPrevious"] == pytest.approx(3600, rel=within)


async def test_concurrent_completions_keep_the_rollup_exact(
    api: Api, engine: AsyncEngine, flow: OnboardingFlow
) -> None:
    await asyncio.gather(*(api.complete(1, user=f"c{i}") for i in range(30)))
    now = datetime.now(UTC)

    series = (
        await query(
            api,
            SERIES,
            {
                "kpi": step_kpi(flow, 1),
                "from": (now - timedelta(hours=1)).isoformat(),
                "to": (now + timedelta(hours=1)).isoformat(),
                "interval": "HOUR",
                "tz": "UTC",
            },
        )
    )["kpiEventSeries"]

    assert series["totalEvents"] == 30
