"""The funnel's cohort rollup: equal to brute force over step_completions, on both engines.

Counts are compared exactly; medians within ``MEDIAN_RELATIVE_ERROR`` of the exact
reference (``app.services.funnel.funnel``), for ranges that no rollup block aligns with.
Every test here runs on both flows of ``tests/flows.py`` (default and team_trial).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.dao.analytics import AnalyticsDao
from app.kpi import OnboardingFlow
from app.migrate import downgrade, upgrade
from app.services.funnel import MEDIAN_RELATIVE_ERROR, FunnelRollupKey, funnel, funnel_rollup_keys
from tests.api.conftest import Record, query
from tests.api.test_analytics_queries import FUNNEL
from tests.api.test_analytics_replay import REPLAY, as_admin, repair_event_writes
from tests.api.test_analytics_write_failure import break_event_writes
from tests.conftest import Api
from tests.flows import (
    every_flow,  # noqa: F401 - runs every test here on both flows
    kpi_steps,
)

START = datetime(2026, 3, 5, 7, 23, 11, 250_000, tzinfo=UTC)
DAY = timedelta(days=1)


async def stored_rollup(engine: AsyncEngine) -> Counter[FunnelRollupKey]:
    sql = text(
        "SELECT span_hours, cohort_start, step, days_to_reach, gap_bucket, shard, users "
        "FROM funnel_cohort_rollups"
    )
    async with engine.connect() as conn:
        found = (await conn.execute(sql)).all()
    stored: Counter[FunnelRollupKey] = Counter()
    for span, start, step, days, gap, shard, users in found:
        if isinstance(start, str):  # SQLite: text without an offset
            start = datetime.fromisoformat(start).replace(tzinfo=UTC)
        stored[FunnelRollupKey(span, start.astimezone(UTC), step, days, gap, shard)] += users
    return stored


async def brute_force_rollup(engine: AsyncEngine) -> Counter[FunnelRollupKey]:
    """The rollup recomputed from every completion: funnel_rollup_keys summed."""
    async with engine.connect() as conn:
        raw = await AnalyticsDao(conn).cohorts_completions([(START - 400 * DAY, START + 400 * DAY)])
    users: dict[str, dict[int, datetime]] = {}
    for user, step, at in raw:
        users.setdefault(user, {})[step] = at
    expected: Counter[FunnelRollupKey] = Counter()
    for steps in users.values():
        for step, at in steps.items():
            expected.update(funnel_rollup_keys(steps, step, at) or ())
    return expected


async def assert_funnel_matches_reference(
    api: Api, engine: AsyncEngine, flow: OnboardingFlow, start: datetime, end: datetime, window: int
) -> None:
    async with engine.connect() as conn:
        raw = await AnalyticsDao(conn).cohort_completions(start, end)
    expected = funnel(flow, raw, window=timedelta(days=window))
    variables = {"from": start.isoformat(), "to": end.isoformat(), "window": window}
    data = (await query(api, FUNNEL, variables))["onboardingFunnel"]
    for got, want in zip(data["steps"], expected, strict=True):
        context = (start, end, window, got["step"])
        assert got["users"] == want.users, context
        assert got["conversionFromStart"] == pytest.approx(want.conversion_from_start), context
        assert got["conversionFromPrevious"] == pytest.approx(want.conversion_from_previous), (
            context
        )
        if want.median_seconds_from_previous is None:
            assert got["medianSecondsFromPrevious"] is None, context
        else:
            assert got["medianSecondsFromPrevious"] == pytest.approx(
                want.median_seconds_from_previous, rel=MEDIAN_RELATIVE_ERROR, abs=1e-9
            ), context


async def test_funnel_equals_the_reference_on_random_data(
    api: Api, record: Record, engine: AsyncEngine, flow: OnboardingFlow
) -> None:
    rng = random.Random(4)
    for i in range(110):  # step 1 spread over 60 days; gaps from 0 to 20 days
        at = START + timedelta(microseconds=rng.randrange(60 * 86_400_000_000))
        first = at
        for step in range(1, flow.total_steps + 1):
            await record(f"r{i}", step, at)
            if rng.random() < 0.25:
                break
            kind = rng.random()
            if kind < 0.1:  # exactly on a window edge, or just past it
                window = rng.choice([1, 3, 7])
                at = first + window * DAY + rng.choice([timedelta(0), timedelta(microseconds=1)])
            elif kind < 0.15:  # out of time order (clock skew): the reference stops here
                at -= timedelta(seconds=rng.randrange(1, 3600))
            elif kind < 0.2:
                pass  # the same instant: a gap of 0
            else:
                at += timedelta(microseconds=rng.randrange(1, 8 * 86_400_000_000))

    assert await stored_rollup(engine) == await brute_force_rollup(engine)
    for _ in range(10):
        start = START + timedelta(
            microseconds=rng.randrange(-2 * 86_400_000_000, 50 * 86_400_000_000)
        )
        end = start + timedelta(microseconds=rng.randrange(1, 70 * 86_400_000_000))
        await assert_funnel_matches_reference(
            api, engine, flow, start, end, rng.choice([1, 3, 7, 30, 365])
        )
    # within one hour (raw only), and the whole data set aligned to the epoch's hours
    await assert_funnel_matches_reference(
        api, engine, flow, START, START + timedelta(minutes=50), 7
    )
    await assert_funnel_matches_reference(
        api, engine, flow, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC), 3
    )


async def test_a_step_exactly_w_days_after_step_1_counts_and_one_microsecond_later_not(
    api: Api, record: Record, flow: OnboardingFlow
) -> None:
    start = START
    await record("on-edge", 1, start)
    await record("on-edge", 2, start + 3 * DAY)
    await record("past-edge", 1, start)
    await record("past-edge", 2, start + 3 * DAY + timedelta(microseconds=1))

    variables = {"from": start.isoformat(), "to": (start + DAY).isoformat(), "window": 3}
    steps = (await query(api, FUNNEL, variables))["onboardingFunnel"]["steps"]

    assert [s["users"] for s in steps] == [2, 1] + [0] * (flow.total_steps - 2)
    assert steps[1]["medianSecondsFromPrevious"] == pytest.approx(3 * 86400, rel=0.01)


async def test_concurrent_completions_keep_the_funnel_rollup_exact(
    api: Api, engine: AsyncEngine, flow: OnboardingFlow
) -> None:
    async def onboard(user: str, steps: int) -> None:
        for step in range(1, steps + 1):
            result = await api.complete(step, user=user)
            assert result["__typename"] == "CompleteOnboardingStepSuccess", result

    await asyncio.gather(*(onboard(f"c{i}", 1 + i % flow.total_steps) for i in range(40)))

    stored = await stored_rollup(engine)
    assert stored == await brute_force_rollup(engine)
    assert sum(n for k, n in stored.items() if k.span_hours == 1) == sum(
        1 + i % flow.total_steps for i in range(40)
    )


async def test_replaying_a_failed_event_does_not_count_the_completion_twice(
    api: Api, engine: AsyncEngine, flow: OnboardingFlow
) -> None:
    await break_event_writes(engine)
    for step in range(1, flow.total_steps + 1):
        await api.complete(step, user="flaky")
    before = await stored_rollup(engine)
    await repair_event_writes(engine)

    report = (await as_admin(api, REPLAY, {"limit": 10}))["replayAnalyticsFailures"]

    assert report["resolved"] == len(kpi_steps(flow))  # one failure per step with a KPI
    assert await stored_rollup(engine) == before == await brute_force_rollup(engine)
    assert sum(n for k, n in before.items() if k.span_hours == 1) == flow.total_steps


async def test_migration_backfills_the_rollup_from_earlier_completions(
    api: Api, record: Record, engine: AsyncEngine, flow: OnboardingFlow
) -> None:
    rng = random.Random(7)
    for i in range(30):
        at = START + timedelta(seconds=rng.randrange(20 * 86400))
        for step in range(1, 1 + rng.randrange(1, flow.total_steps + 1)):
            await record(f"m{i}", step, at)
            at += timedelta(seconds=rng.randrange(0, 5 * 86400))
    written = await stored_rollup(engine)
    start, end = START + timedelta(hours=5, minutes=3), START + 15 * DAY
    variables = {"from": start.isoformat(), "to": end.isoformat(), "window": 4}
    answer = await query(api, FUNNEL, variables)

    await downgrade(engine, "0002")  # the completions stay; the rollup goes
    await upgrade(engine)  # 0003 rebuilds it

    assert await stored_rollup(engine) == written
    assert await query(api, FUNNEL, variables) == answer
    await assert_funnel_matches_reference(api, engine, flow, start, end, 4)
