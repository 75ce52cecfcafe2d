"""Data access for the flow history (``flow_history``): the one module that writes it.

The rules (what may change) are ``app.flow_history``'s; this module reads the recorded
steps, counts the completions, events and unresolved failures a change would touch, takes
the lock that serialises two processes starting at once, and writes the new rows.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from app.dao.tables import completions, events, failures
from models.tables import FlowHistoryStep


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


history = _table(FlowHistoryStep)


@dataclass(frozen=True, slots=True)
class RecordedStep:
    """One ``flow_history`` row: what step number ``step`` means (see ``FlowHistoryStep``)."""

    step: int
    key: str
    kpi_id: str | None
    kpi_since: datetime | None
    recorded_at: datetime
    updated_at: datetime


class FlowHistoryDao:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._postgres = conn.dialect.name == "postgresql"

    async def lock(self) -> None:
        """Hold off every other reconciler until this transaction ends.

        PostgreSQL: EXCLUSIVE conflicts with itself and with every write to the table but
        not with plain reads, so a second process waits here, then reads what the first
        committed. SQLite needs nothing more: the unit of work began with BEGIN IMMEDIATE,
        which already holds the database's one write lock.
        """
        if self._postgres:
            await self._conn.execute(text("LOCK TABLE flow_history IN EXCLUSIVE MODE"))

    async def recorded_steps(self) -> list[RecordedStep]:
        rows = await self._conn.execute(select(history).order_by(history.c.step))
        return [
            RecordedStep(
                step=r.step,
                key=r.key,
                kpi_id=r.kpi_id,
                kpi_since=r.kpi_since,
                recorded_at=r.recorded_at,
                updated_at=r.updated_at,
            )
            for r in rows
        ]

    async def completions_at(self, steps: Collection[int]) -> dict[int, int]:
        """Completions per step number, for the given steps that have any."""
        if not steps:
            return {}
        stmt = (
            select(completions.c.step, func.count())
            .where(completions.c.step.in_(sorted(steps)))
            .group_by(completions.c.step)
        )
        return {step: n for step, n in await self._conn.execute(stmt)}

    async def completions_after(self, step: int) -> dict[int, int]:
        """Completions per step number past ``step`` (steps a shorter flow would drop)."""
        stmt = (
            select(completions.c.step, func.count())
            .where(completions.c.step > step)
            .group_by(completions.c.step)
        )
        return {s: n for s, n in await self._conn.execute(stmt)}

    async def events_of(self, kpi_ids: Collection[str]) -> dict[tuple[str, int], int]:
        """Events per (KPI, step they were recorded at), for the given KPIs."""
        if not kpi_ids:
            return {}
        stmt = (
            select(events.c.kpi_id, events.c.step, func.count())
            .where(events.c.kpi_id.in_(sorted(kpi_ids)))
            .group_by(events.c.kpi_id, events.c.step)
        )
        return {(kpi_id, step): n for kpi_id, step, n in await self._conn.execute(stmt)}

    async def unresolved_failures_at(self, steps: Collection[int]) -> dict[int, int]:
        """Unresolved analytics failures per step number, for the given steps that have any:
        completions still waiting for their KPI event, which replay builds with the KPI of
        the step as the flow says then."""
        if not steps:
            return {}
        stmt = (
            select(completions.c.step, func.count())
            .select_from(failures.join(completions, failures.c.completion_id == completions.c.id))
            .where(failures.c.resolved_at.is_(None), completions.c.step.in_(sorted(steps)))
            .group_by(completions.c.step)
        )
        return {step: n for step, n in await self._conn.execute(stmt)}

    async def all_event_steps(self) -> dict[tuple[str, int], int]:
        """Events per (KPI, step) over the whole table: read once, on the first start only,
        when no history says where each KPI was counted."""
        stmt = select(events.c.kpi_id, events.c.step, func.count()).group_by(
            events.c.kpi_id, events.c.step
        )
        return {(kpi_id, step): n for kpi_id, step, n in await self._conn.execute(stmt)}

    async def record(self, *, rows: Sequence[RecordedStep], removed: Collection[int]) -> None:
        """Delete the ``removed`` step numbers, then insert or replace ``rows``."""
        if removed:
            await self._conn.execute(delete(history).where(history.c.step.in_(sorted(removed))))
        if not rows:
            return
        insert = postgresql.insert(history) if self._postgres else sqlite.insert(history)
        values = [
            {
                "step": r.step,
                "key": r.key,
                "kpi_id": r.kpi_id,
                "kpi_since": r.kpi_since,
                "recorded_at": r.recorded_at,
                "updated_at": r.updated_at,
            }
            for r in rows
        ]
        stmt = insert.values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[history.c.step],
            set_={
                name: stmt.excluded[name]
                for name in ("key", "kpi_id", "kpi_since", "recorded_at", "updated_at")
            },
        )
        await self._conn.execute(stmt)
