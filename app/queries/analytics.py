"""Read side of analytics: event pages, series, funnel, failures (no transaction bookkeeping)."""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from app.dao.analytics import AnalyticsDao, EventFilter, FailureRow
from app.errors import InvalidQuery
from app.kpi import OnboardingFlow
from app.services.analytics import ROLLUP_SLOT, KpiEventRecord, rollup_slot
from app.services.funnel import (
    MAX_CONVERSION_WINDOW_DAYS,
    FunnelStep,
    cohort_plan,
    funnel_from_histogram,
    user_reaches,
)
from app.services.onboarding import Progress, progress_of
from app.services.series import Bucket, TimeInterval, buckets

MAX_PAGE_SIZE = 500
MAX_ROW_ID = 2**31 - 1  # PostgreSQL integer ids
MIN_YEAR, MAX_YEAR = 1970, 9000  # far from datetime's edges, where bucket arithmetic overflows
DEFAULT_PAGE_SIZE = 50
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[tuple[str, T]]  # (cursor, item)
    has_next_page: bool

    @property
    def end_cursor(self) -> str | None:
        return self.items[-1][0] if self.items else None


@dataclass(frozen=True, slots=True)
class SeriesBucket:
    bucket: Bucket
    events: int

    @property
    def unique_users(self) -> int:
        # One event per (user, KPI) by construction (unique constraint), so they are equal.
        return self.events


@dataclass(frozen=True, slots=True)
class Series:
    kpi_id: str
    interval: TimeInterval
    zone: ZoneInfo
    buckets: list[SeriesBucket]

    @property
    def total_events(self) -> int:
        return sum(b.events for b in self.buckets)


def encode_cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode()


def decode_cursor(cursor: str) -> list[object]:
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidQuery("after is not a cursor returned by this query") from None
    if not isinstance(parts, list):
        raise InvalidQuery("after is not a cursor returned by this query")
    return parts


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def check_text(name: str, value: str | None) -> None:
    """Refuse strings no database can compare (NUL, lone surrogates): they match nothing."""
    if value is not None and _UNSTORABLE.search(value):
        raise InvalidQuery(f"{name} holds characters that cannot be stored")


def check_filter(where: EventFilter, flow: OnboardingFlow) -> None:
    check_text("userId", where.user_id)
    check_text("source", where.source)
    for kpi_id in where.kpi_ids or ():
        if flow.kpi(kpi_id) is None:  # a typo would otherwise read as "no events"
            raise InvalidQuery(f"kpiIds: '{kpi_id}' is not a KPI of this flow; see kpiDefinitions")
    for moment in (where.occurred_from, where.occurred_to):
        if moment is not None and not MIN_YEAR <= moment.year <= MAX_YEAR:
            raise InvalidQuery(f"times must lie between the years {MIN_YEAR} and {MAX_YEAR}")


def event_cursor(cursor: str) -> tuple[datetime, str]:
    parts = decode_cursor(cursor)
    try:
        at = datetime.fromisoformat(str(parts[0]))
        event_id = str(uuid.UUID(str(parts[1])))
    except (IndexError, ValueError):
        raise InvalidQuery("after is not a cursor returned by this query") from None
    if at.tzinfo is None or not MIN_YEAR <= at.year <= MAX_YEAR:
        raise InvalidQuery("after is not a cursor returned by this query")
    return at, event_id


def failure_cursor(cursor: str) -> int:
    parts = decode_cursor(cursor)
    if (
        len(parts) != 1
        or isinstance(parts[0], bool)
        or not isinstance(parts[0], int)
        or not 1 <= parts[0] <= MAX_ROW_ID
    ):
        raise InvalidQuery("after is not a cursor returned by this query")
    return parts[0]


def check_range(start: datetime, end: datetime) -> None:
    if end <= start:
        raise InvalidQuery("to must be later than from")
    if not (start.year >= MIN_YEAR and end.year <= MAX_YEAR):
        raise InvalidQuery(f"from and to must lie between the years {MIN_YEAR} and {MAX_YEAR}")


def check_page_size(first: int | None) -> int:
    size = DEFAULT_PAGE_SIZE if first is None else first
    if not 0 <= size <= MAX_PAGE_SIZE:
        raise InvalidQuery(f"first must be between 0 and {MAX_PAGE_SIZE}, got {size}")
    return size


def _aligned(moment: datetime) -> bool:
    return rollup_slot(moment) == moment


def _ceil_slot(moment: datetime) -> datetime:
    return moment if _aligned(moment) else rollup_slot(moment) + ROLLUP_SLOT


class AnalyticsQueries:
    def __init__(self, engine: AsyncEngine, *, flow: OnboardingFlow) -> None:
        self._engine = engine
        self._flow = flow

    async def events(
        self, where: EventFilter, *, first: int | None, after: str | None
    ) -> Page[KpiEventRecord]:
        size = check_page_size(first)
        check_filter(where, self._flow)
        before = event_cursor(after) if after is not None else None
        async with self._engine.connect() as conn:
            rows = await AnalyticsDao(conn).events_page(where, limit=size + 1, before=before)
        items = [(encode_cursor(e.occurred_at.isoformat(), e.id), e) for e in rows[:size]]
        return Page(items, has_next_page=len(rows) > size)

    async def count_events(self, where: EventFilter) -> int:
        check_filter(where, self._flow)
        async with self._engine.connect() as conn:
            dao = AnalyticsDao(conn)
            if where.user_id is not None or where.step is not None or where.source is not None:
                return await dao.count_events(where)
            # Only KPI ids and/or a time range: whole 15-minute slots from the rollup, the
            # slots cut by `from`/`to` from the raw events (count(*) is linear on PostgreSQL).
            low, high = where.occurred_from, where.occurred_to
            whole_from = _ceil_slot(low) if low is not None else None
            whole_to = rollup_slot(high) if high is not None else None
            if whole_from is not None and whole_to is not None and whole_from >= whole_to:
                return await dao.count_events(where)  # within one slot or two
            total = await dao.rollup_total(where.kpi_ids, whole_from, whole_to)
            for edge_from, edge_to in ((low, whole_from), (whole_to, high)):
                if edge_from is not None and edge_to is not None and edge_from < edge_to:
                    edge = EventFilter(
                        kpi_ids=where.kpi_ids, occurred_from=edge_from, occurred_to=edge_to
                    )
                    total += await dao.count_events(edge)
            return total

    async def series(
        self,
        kpi_id: str,
        *,
        start: datetime,
        end: datetime,
        interval: TimeInterval,
        zone: ZoneInfo,
    ) -> Series:
        if self._flow.kpi(kpi_id) is None:
            raise InvalidQuery(f"'{kpi_id}' is not a KPI of this flow; see kpiDefinitions")
        check_range(start, end)
        plan = buckets(start, end, interval, zone)
        start, end = plan[0].clipped_start, plan[-1].clipped_end
        # Whole 15-minute slots come from the rollup; a slot that a bucket edge (or the
        # range's own edge) cuts through is counted from the raw events instead.
        edges = {start, end, *(b.clipped_start for b in plan)}
        cut_slots = sorted({rollup_slot(e) for e in edges if not _aligned(e)})
        raw_ranges = [(max(s, start), min(s + ROLLUP_SLOT, end)) for s in cut_slots]
        # per bucket, the whole slots inside it: [first slot at or after its start, last
        # slot boundary at or before its end)
        whole = [(_ceil_slot(b.clipped_start), rollup_slot(b.clipped_end)) for b in plan]
        async with self._engine.connect() as conn:
            dao = AnalyticsDao(conn)
            sums = await dao.rollup_sums(kpi_id, whole)
            raw_times = await dao.event_times(kpi_id, raw_ranges)

        starts = [b.clipped_start for b in plan]
        counts = [sums.get(i, 0) for i in range(len(plan))]
        for moment in raw_times:
            counts[bisect.bisect_right(starts, moment.astimezone(UTC)) - 1] += 1
        return Series(
            kpi_id=kpi_id,
            interval=interval,
            zone=zone,
            buckets=[SeriesBucket(b, c) for b, c in zip(plan, counts, strict=True)],
        )

    async def funnel(self, *, start: datetime, end: datetime, window_days: int) -> list[FunnelStep]:
        check_range(start, end)
        if not 1 <= window_days <= MAX_CONVERSION_WINDOW_DAYS:
            raise InvalidQuery(
                f"conversionWindowDays must be between 1 and {MAX_CONVERSION_WINDOW_DAYS}"
            )
        # Whole cohort blocks from the rollup; the partial hours at the ends of the range
        # from the raw completions, through the same rule the rollup was written with.
        blocks, raw_ranges = cohort_plan(start, end)
        async with self._engine.connect() as conn:
            dao = AnalyticsDao(conn)
            histogram = await dao.funnel_histogram(blocks, window_days=window_days)
            raw = await dao.cohorts_completions(raw_ranges)
        users: dict[str, dict[int, datetime]] = defaultdict(dict)
        for user_id, step, completed_at in raw:
            users[user_id][step] = completed_at
        for steps in users.values():
            for reach in user_reaches(steps):
                if reach.days_to_reach <= window_days:
                    key = (reach.step, reach.gap_bucket)
                    histogram[key] = histogram.get(key, 0) + 1
        return funnel_from_histogram(self._flow, histogram)

    async def failures(
        self, *, unresolved_only: bool, first: int | None, after: str | None
    ) -> Page[FailureRow]:
        size = check_page_size(first)
        before_id = failure_cursor(after) if after is not None else None
        async with self._engine.connect() as conn:
            rows = await AnalyticsDao(conn).failures_page(
                unresolved_only=unresolved_only, limit=size + 1, before_id=before_id
            )
        return Page([(encode_cursor(f.id), f) for f in rows[:size]], len(rows) > size)

    async def count_failures(self, *, unresolved_only: bool) -> int:
        async with self._engine.connect() as conn:
            return await AnalyticsDao(conn).count_failures(unresolved_only=unresolved_only)

    async def progress_of_users(self, user_ids: Sequence[str]) -> list[Progress]:
        async with self._engine.connect() as conn:
            found = await AnalyticsDao(conn).progress_of_users(user_ids)
        return [progress_of(self._flow, found.get(u, [])) for u in user_ids]
