"""On random data, the fast analytics answers equal brute-force ones over the raw rows.

Every test here runs on both flows of ``tests/flows.py`` (default and team_trial).
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.dao.analytics import AnalyticsDao, EventFilter
from app.dao.tables import events
from app.kpi import OnboardingFlow
from app.services.funnel import MEDIAN_RELATIVE_ERROR, funnel
from tests.api.conftest import Record, query
from tests.api.test_analytics_queries import EVENTS, FUNNEL, SERIES
from tests.conftest import Api
from tests.flows import (
    every_flow,  # noqa: F401 - runs every test here on both flows
    kpi_steps,
    step_kpi,
)

ZONES = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Adelaide",
]
START = datetime(2026, 3, 5, tzinfo=UTC)  # the window spans US and EU DST changes


async def test_series_matches_brute_force_on_random_data(
    api: Api, record: Record, engine: AsyncEngine, flow: OnboardingFlow
) -> None:
    rng = random.Random(2026)
    first, second = kpi_steps(flow)[:2]  # the first two steps that count toward a KPI
    assert first == 1
    kpis = [step_kpi(flow, first), step_kpi(flow, second)]
    for i in range(120):  # users spread over 40 days, some reaching the second KPI's step
        at = START + timedelta(seconds=rng.randrange(40 * 86400))
        await record(f"r{i}", 1, at)
        if rng.random() < 0.4:
            for step in range(2, second):
                await record(f"r{i}", step, at + timedelta(minutes=step - 1))
            await record(f"r{i}", second, at + timedelta(seconds=rng.randrange(60, 5 * 86400)))

    for _ in range(12):
        kpi = rng.choice(kpis)
        interval = rng.choice(["HOUR", "DAY", "WEEK"])
        span = {"HOUR": 3 * 86400, "DAY": 45 * 86400, "WEEK": 60 * 86400}[interval]
        start = START + timedelta(seconds=rng.randrange(-86400, 20 * 86400))
        end = start + timedelta(seconds=rng.randrange(3600, span))
        zone = rng.choice(ZONES)

        series = (
            await query(
                api,
                SERIES,
                {
                    "kpi": kpi,
                    "from": start.isoformat(),
                    "to": end.isoformat(),
                    "interval": interval,
                    "tz": zone,
                },
            )
        )["kpiEventSeries"]

        buckets = series["buckets"]
        for bucket, following in itertools.pairwise(buckets):
            assert bucket["end"] == following["start"]  # contiguous
            local = datetime.fromisoformat(following["start"]).astimezone(ZoneInfo(zone))
            assert (local.minute, local.second) == (0, 0)  # aligned in the zone
            if interval != "HOUR":
                assert local.hour == 0
            if interval == "WEEK":
                assert local.weekday() == 0  # Monday
        assert datetime.fromisoformat(buckets[0]["start"]) <= start
        assert datetime.fromisoformat(buckets[-1]["end"]) >= end
        for bucket in buckets:
            low = max(datetime.fromisoformat(bucket["start"]), start)
            high = min(datetime.fromisoformat(bucket["end"]), end)
            expected = await _raw_count(engine, kpi, low, high)
            assert bucket["events"] == expected, (kpi, interval, zone, bucket)
        assert series["totalEvents"] == sum(b["events"] for b in buckets)


async def _raw_count(engine: AsyncEngine, kpi: str, low: datetime, high: datetime) -> int:
    stmt = select(func.count()).where(
        events.c.kpi_id == kpi, events.c.occurred_at >= low, events.c.occurred_at < high
    )
    async with engine.connect() as conn:
        total: int = (await conn.execute(stmt)).scalar_one()
        return total


async def test_funnel_matches_the_reference_definition_on_random_data(
    api: Api, record: Record, engine: AsyncEngine, flow: OnboardingFlow
) -> None:
    rng = random.Random(99)
    for i in range(80):
        at = START + timedelta(seconds=rng.randrange(30 * 86400))
        for step in range(1, flow.total_steps + 1):
            await record(f"fn{i}", step, at)
            if rng.random() < 0.35:
                break
            at += timedelta(seconds=rng.randrange(30, 12 * 86400))

    for _ in range(6):
        start = START + timedelta(seconds=rng.randrange(20 * 86400))
        end = start + timedelta(seconds=rng.randrange(86400, 20 * 86400))
        window = rng.choice([1, 3, 7, 30])
        async with engine.connect() as conn:
            raw = await AnalyticsDao(conn).cohort_completions(start, end)
        expected = funnel(flow, raw, window=timedelta(days=window))

        data = (
            await query(
                api,
                FUNNEL,
                {
                    "from": start.isoformat(),
                    "to": end.isoformat(),
                    "window": window,
                },
            )
        )["onboardingFunnel"]

        for got, want in zip(data["steps"], expected, strict=True):
            assert got["users"] == want.users
            assert got["conversionFromStart"] == pytest.approx(want.conversion_from_start)
            assert got["conversionFromPrevious"] == pytest.approx(want.conversion_from_previous)
            if want.median_seconds_from_previous is None:
                assert got["medianSecondsFromPrevious"] is None
            else:  # medians come from 2 %-wide buckets
                assert got["medianSecondsFromPrevious"] == pytest.approx(
                    want.median_seconds_from_previous, rel=MEDIAN_RELATIVE_ERROR
                )


async def test_total_count_matches_a_direct_count_on_random_data(
    api: Api, record: Record, engine: AsyncEngine, flow: OnboardingFlow
) -> None:
    rng = random.Random(15)
    for i in range(60):
        at = START + timedelta(microseconds=rng.randrange(3 * 86_400_000_000))
        for step in range(1, 1 + rng.randrange(1, flow.total_steps + 1)):
            await record(f"t{i}", step, at)
            at += timedelta(microseconds=rng.randrange(1, 6 * 3_600_000_000))
    kpis = [kpi.id for kpi in flow.kpis]  # the flow's KPIs, counted by a step or not

    for _ in range(25):
        start = START + timedelta(microseconds=rng.randrange(-3_600_000_000, 4 * 86_400_000_000))
        end = start + timedelta(microseconds=rng.randrange(1, rng.choice([1800, 86400]) * 10**6))
        where = EventFilter(
            kpi_ids=rng.choice([None, [], kpis[:1], kpis[1:], rng.sample(kpis, 2)]),
            occurred_from=rng.choice([None, start]),
            occurred_to=rng.choice([None, end]),
        )
        variables: dict[str, object] = {
            "filter": {
                "kpiIds": where.kpi_ids,
                "occurredFrom": where.occurred_from.isoformat() if where.occurred_from else None,
                "occurredTo": where.occurred_to.isoformat() if where.occurred_to else None,
            },
            "first": 1,
        }
        async with engine.connect() as conn:
            expected = await AnalyticsDao(conn).count_events(where)  # count(*) of the rows

        got = (await query(api, EVENTS, variables))["kpiEvents"]["totalCount"]

        assert got == expected, where
