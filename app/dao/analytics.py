"""Data access for the analytics read side and the failure replay (seed resource db-d3w8)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    column,
    func,
    literal,
    select,
    tuple_,
    union_all,
    update,
    values,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dao.tables import (
    completions,
    event_row,
    events,
    failures,
    funnel_rollups,
    progress,
    rollups,
)
from app.services.analytics import KpiEventRecord
from models.types import UTCDateTime


@dataclass(frozen=True, slots=True)
class EventFilter:
    kpi_ids: Sequence[str] | None = None
    user_id: str | None = None
    step: int | None = None
    source: str | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.kpi_ids is not None:
            clauses.append(events.c.kpi_id.in_(list(self.kpi_ids)))
        if self.user_id is not None:
            clauses.append(events.c.user_id == self.user_id)
        if self.step is not None:
            clauses.append(events.c.step == self.step)
        if self.source is not None:
            clauses.append(events.c.source == self.source)
        if self.occurred_from is not None:
            clauses.append(events.c.occurred_at >= self.occurred_from)
        if self.occurred_to is not None:
            clauses.append(events.c.occurred_at < self.occurred_to)
        return clauses


@dataclass(frozen=True, slots=True)
class FailureRow:
    id: int
    completion_id: int
    stage: str
    error_type: str
    error_message: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime
    resolved_at: datetime | None
    resolved_event_id: str | None


def _event(row: Any) -> KpiEventRecord:
    return KpiEventRecord(
        id=str(row.id),
        completion_id=row.completion_id,
        kpi_id=row.kpi_id,
        user_id=row.user_id,
        step=row.step,
        source=row.source,
        metadata=row.metadata,
        occurred_at=row.occurred_at,
    )


def _failure(row: Any) -> FailureRow:
    return FailureRow(
        id=row.id,
        completion_id=row.completion_id,
        stage=row.stage,
        error_type=row.error_type,
        error_message=row.error_message,
        payload=row.payload,
        attempts=row.attempts,
        created_at=row.created_at,
        resolved_at=row.resolved_at,
        resolved_event_id=str(row.resolved_event_id) if row.resolved_event_id else None,
    )


class AnalyticsDao:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._postgres = conn.dialect.name == "postgresql"
        self._insert = postgresql.insert if self._postgres else sqlite.insert

    # -- events ---------------------------------------------------------------------------

    async def events_page(
        self, where: EventFilter, *, limit: int, before: tuple[datetime, str] | None
    ) -> list[KpiEventRecord]:
        """Newest first; ``before`` is the keyset (occurred_at, id) of the previous page's end."""
        stmt = select(events).where(*where.clauses())
        if before is not None:
            at, event_id = before
            position = tuple_(
                literal(at, events.c.occurred_at.type), literal(event_id, events.c.id.type)
            )
            stmt = stmt.where(tuple_(events.c.occurred_at, events.c.id) < position)
        stmt = stmt.order_by(events.c.occurred_at.desc(), events.c.id.desc()).limit(limit)
        return [_event(r) for r in await self._conn.execute(stmt)]

    async def count_events(self, where: EventFilter) -> int:
        stmt = select(func.count()).select_from(events).where(*where.clauses())
        total: int = (await self._conn.execute(stmt)).scalar_one()
        return total

    async def rollup_total(
        self, kpi_ids: Sequence[str] | None, start: datetime | None, end: datetime | None
    ) -> int:
        """Events of these KPIs (all when None) in the whole slots starting in [start, end)."""
        stmt = select(func.coalesce(func.sum(rollups.c.events), 0))
        if kpi_ids is not None:
            stmt = stmt.where(rollups.c.kpi_id.in_(list(kpi_ids)))
        if start is not None:
            stmt = stmt.where(rollups.c.slot_start >= start)
        if end is not None:
            stmt = stmt.where(rollups.c.slot_start < end)
        return int((await self._conn.execute(stmt)).scalar_one())

    async def rollup_slots(
        self, kpi_id: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, int]]:
        """Event counts per 15-minute slot starting in [start, end), shards summed."""
        stmt = (
            select(rollups.c.slot_start, func.sum(rollups.c.events))
            .where(
                rollups.c.kpi_id == kpi_id,
                rollups.c.slot_start >= start,
                rollups.c.slot_start < end,
            )
            .group_by(rollups.c.slot_start)
            .order_by(rollups.c.slot_start)
        )
        return [(r[0], int(r[1])) for r in await self._conn.execute(stmt)]

    async def rollup_sums(
        self, kpi_id: str, ranges: Sequence[tuple[datetime, datetime]]
    ) -> dict[int, int]:
        """Events per range (by index) from the rollup: one pass, one row per range.

        The ranges travel as a VALUES list joined to the rollup's primary key, so the
        database sums the slots and only one row per bucket comes back.
        """
        numbered = [(i, lo, hi) for i, (lo, hi) in enumerate(ranges) if lo < hi]
        if not numbered:
            return {}
        bounds = (
            values(
                column("i", Integer()),
                column("lo", UTCDateTime()),
                column("hi", UTCDateTime()),
                name="bounds",
            )
            .data(numbered)
            .cte("bounds")
        )  # WITH bounds(i, lo, hi) AS (VALUES ...): both engines
        stmt = (
            select(bounds.c.i, func.sum(rollups.c.events))
            .select_from(bounds)
            .join(
                rollups,
                and_(
                    rollups.c.kpi_id == kpi_id,
                    rollups.c.slot_start >= bounds.c.lo,
                    rollups.c.slot_start < bounds.c.hi,
                ),
            )
            .group_by(bounds.c.i)
        )
        return {int(r[0]): int(r[1]) for r in await self._conn.execute(stmt)}

    async def event_times(
        self, kpi_id: str, ranges: Sequence[tuple[datetime, datetime]]
    ) -> list[datetime]:
        """Raw event timestamps in a few short ranges (the slots a bucket edge cuts).

        One index range scan per range (UNION ALL): an OR of ranges made SQLite without
        planner statistics, as a server-written file is, read every event of the KPI.
        """
        if not ranges:
            return []
        parts = [
            select(events.c.occurred_at).where(
                events.c.kpi_id == kpi_id, events.c.occurred_at >= a, events.c.occurred_at < b
            )
            for a, b in ranges
        ]
        stmt = parts[0] if len(parts) == 1 else union_all(*parts)
        return list((await self._conn.execute(stmt)).scalars())

    # -- funnel ---------------------------------------------------------------------------

    async def funnel_histogram(
        self, blocks: Sequence[tuple[int, datetime, datetime]], *, window_days: int
    ) -> dict[tuple[int, int], int]:
        """Users per (step, gap bucket) in the given cohort blocks, within the window.

        ``blocks`` are (span_hours, first, end) from ``app.services.funnel.cohort_plan``:
        one index range of the rollup's primary key (span_hours, cohort_start, ...) each,
        as UNION ALL branches (joined to a VALUES list instead, PostgreSQL scanned the
        whole rollup); the database does the sums.
        """
        if not blocks:
            return {}
        r = funnel_rollups.c
        parts = [
            select(r.step, r.gap_bucket, r.users).where(
                r.span_hours == span,
                r.cohort_start >= first,
                r.cohort_start < end,
                r.days_to_reach <= window_days,
            )
            for span, first, end in blocks
        ]
        rows = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("blocks")
        stmt = select(rows.c.step, rows.c.gap_bucket, func.sum(rows.c.users)).group_by(
            rows.c.step, rows.c.gap_bucket
        )
        return {(int(x[0]), int(x[1])): int(x[2]) for x in await self._conn.execute(stmt)}

    async def cohort_completions(
        self, start: datetime, end: datetime
    ) -> list[tuple[str, int, datetime]]:
        """(user, step, completed_at) of every user whose step 1 is in [start, end)."""
        return await self.cohorts_completions([(start, end)])

    async def cohorts_completions(
        self, ranges: Sequence[tuple[datetime, datetime]]
    ) -> list[tuple[str, int, datetime]]:
        """(user, step, completed_at) of every user whose step 1 is in one of the ranges.

        Two plain index lookups (the cohort by (step, completed_at), then its users'
        completions by (user_id, step)) rather than a join, which PostgreSQL may answer
        with a hash join over every completion.
        """
        if not ranges:
            return []
        parts = [
            select(completions.c.user_id).where(
                completions.c.step == 1,
                completions.c.completed_at >= start,
                completions.c.completed_at < end,
            )
            for start, end in ranges
        ]
        cohort = parts[0] if len(parts) == 1 else union_all(*parts)
        user_ids = list((await self._conn.execute(cohort)).scalars())
        found: list[tuple[str, int, datetime]] = []
        for at in range(0, len(user_ids), 1000):  # bounded IN lists
            stmt = select(
                completions.c.user_id, completions.c.step, completions.c.completed_at
            ).where(completions.c.user_id.in_(user_ids[at : at + 1000]))
            found += [(r[0], r[1], r[2]) for r in await self._conn.execute(stmt)]
        return found

    # -- progress (DataLoader batch) --------------------------------------------------------

    async def progress_of_users(self, user_ids: Sequence[str]) -> dict[str, list[int]]:
        stmt = select(progress.c.user_id, progress.c.completed_steps).where(
            progress.c.user_id.in_(list(user_ids))
        )
        return {r[0]: r[1] for r in await self._conn.execute(stmt)}

    # -- failures -------------------------------------------------------------------------

    async def failures_page(
        self, *, unresolved_only: bool, limit: int, before_id: int | None
    ) -> list[FailureRow]:
        stmt = select(failures)
        if unresolved_only:
            stmt = stmt.where(failures.c.resolved_at.is_(None))
        if before_id is not None:
            stmt = stmt.where(failures.c.id < before_id)
        stmt = stmt.order_by(failures.c.id.desc()).limit(limit)
        return [_failure(r) for r in await self._conn.execute(stmt)]

    async def count_failures(self, *, unresolved_only: bool) -> int:
        stmt = select(func.count()).select_from(failures)
        if unresolved_only:
            stmt = stmt.where(failures.c.resolved_at.is_(None))
        total: int = (await self._conn.execute(stmt)).scalar_one()
        return total

    async def unresolved_failure_ids(self, limit: int) -> list[int]:
        stmt = (
            select(failures.c.id)
            .where(failures.c.resolved_at.is_(None))
            .order_by(failures.c.id)
            .limit(limit)
        )
        return list((await self._conn.execute(stmt)).scalars())

    async def lock_unresolved_failure(self, failure_id: int) -> FailureRow | None:
        """The failure, locked for this transaction; None if resolved or taken by another."""
        stmt = select(failures).where(failures.c.id == failure_id, failures.c.resolved_at.is_(None))
        if self._postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        row = (await self._conn.execute(stmt)).first()
        return _failure(row) if row else None

    async def completion(self, completion_id: int) -> Any:
        stmt = select(completions).where(completions.c.id == completion_id)
        return (await self._conn.execute(stmt)).one()

    async def insert_event_if_absent(self, event: KpiEventRecord, *, recorded_at: datetime) -> str:
        """Insert the completion's event unless it exists; return the id that is stored."""
        stmt = (
            self._insert(events)
            .values(event_row(event, recorded_at))
            .on_conflict_do_nothing(index_elements=[events.c.completion_id])
            .returning(events.c.id)
        )
        inserted = (await self._conn.execute(stmt)).scalar_one_or_none()
        if inserted is not None:
            return str(inserted)
        existing = select(events.c.id).where(events.c.completion_id == event.completion_id)
        return str((await self._conn.execute(existing)).scalar_one())

    async def resolve_failure(self, failure_id: int, *, event_id: str, now: datetime) -> None:
        stmt = (
            update(failures)
            .where(failures.c.id == failure_id)
            .values(resolved_at=now, resolved_event_id=event_id, attempts=failures.c.attempts + 1)
        )
        await self._conn.execute(stmt)

    async def record_failed_attempt(
        self, failure_id: int, *, stage: str, error_type: str, error_message: str
    ) -> None:
        stmt = (
            update(failures)
            .where(failures.c.id == failure_id)
            .values(
                stage=stage,
                error_type=error_type,
                error_message=error_message,
                attempts=failures.c.attempts + 1,
            )
        )
        await self._conn.execute(stmt)
