"""Data access for onboarding state and analytics events (seed resource db-d3w8).

All SQL of the write path lives here, written with SQLAlchemy Core against the
SQLModel tables: a handful of set-based statements per request, no ORM unit of work
or identity map on the hot path. Every method runs inside the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from app.services.analytics import KpiEventRecord, rollup_shard, rollup_slot
from models import (
    AnalyticsFailure,
    IdempotencyKey,
    KpiEvent,
    KpiEventRollup,
    OnboardingProgress,
    StepCompletion,
)


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


completions = _table(StepCompletion)
progress = _table(OnboardingProgress)
events = _table(KpiEvent)
failures = _table(AnalyticsFailure)
keys = _table(IdempotencyKey)
rollups = _table(KpiEventRollup)


@dataclass(frozen=True, slots=True)
class StoredKey:
    fingerprint: str
    response: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class CompletionRow:
    id: int
    user_id: str
    step: int
    source: str
    metadata: dict[str, Any]
    completed_at: datetime


def event_row(event: KpiEventRecord, recorded_at: datetime) -> dict[str, Any]:
    """The kpi_events row for an event."""
    return {
        "id": event.id,
        "completion_id": event.completion_id,
        "kpi_id": event.kpi_id,
        "user_id": event.user_id,
        "step": event.step,
        "source": event.source,
        "metadata": event.metadata,
        "occurred_at": event.occurred_at,
        "recorded_at": recorded_at,
    }


class OnboardingDao:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert

    async def lock_progress(self, user_id: str, *, now: datetime) -> list[int]:
        """Return the user's completed steps, holding their progress row until commit.

        The no-op upsert creates the row on first use and takes a row lock on
        PostgreSQL, serialising one user's concurrent submissions (SQLite serialises
        all writers with ``BEGIN IMMEDIATE``).
        """
        stmt = (
            self._insert(progress)
            .values(user_id=user_id, completed_steps=[], updated_at=now)
            .on_conflict_do_update(
                index_elements=[progress.c.user_id],
                set_={"user_id": progress.c.user_id},
            )
            .returning(progress.c.completed_steps)
        )
        steps: list[int] = (await self._conn.execute(stmt)).scalar_one()
        return steps

    async def read_progress(self, user_id: str) -> list[int]:
        stmt = select(progress.c.completed_steps).where(progress.c.user_id == user_id)
        steps: list[int] | None = (await self._conn.execute(stmt)).scalar_one_or_none()
        return steps or []

    async def claim_key(
        self, *, user_id: str, operation: str, key: str, fingerprint: str, now: datetime
    ) -> bool:
        """Insert the key atomically; False when it already exists (never check-then-insert)."""
        stmt = (
            self._insert(keys)
            .values(
                user_id=user_id,
                operation=operation,
                key=key,
                fingerprint=fingerprint,
                created_at=now,
            )
            .on_conflict_do_nothing()
            .returning(keys.c.key)
        )
        return (await self._conn.execute(stmt)).first() is not None

    async def get_key(self, *, user_id: str, operation: str, key: str) -> StoredKey:
        stmt = select(keys.c.fingerprint, keys.c.response).where(
            keys.c.user_id == user_id, keys.c.operation == operation, keys.c.key == key
        )
        row = (await self._conn.execute(stmt)).one()
        return StoredKey(fingerprint=row.fingerprint, response=row.response)

    async def find_key(self, *, user_id: str, operation: str, key: str) -> StoredKey | None:
        stmt = select(keys.c.fingerprint, keys.c.response).where(
            keys.c.user_id == user_id, keys.c.operation == operation, keys.c.key == key
        )
        row = (await self._conn.execute(stmt)).first()
        return StoredKey(fingerprint=row.fingerprint, response=row.response) if row else None

    async def store_response(
        self, *, user_id: str, operation: str, key: str, response: dict[str, Any]
    ) -> None:
        stmt = (
            update(keys)
            .where(keys.c.user_id == user_id, keys.c.operation == operation, keys.c.key == key)
            .values(response=response)
        )
        await self._conn.execute(stmt)

    async def insert_completion(
        self,
        *,
        user_id: str,
        step: int,
        source: str,
        metadata: dict[str, Any],
        idempotency_key: str,
        completed_at: datetime,
    ) -> CompletionRow | None:
        """Insert the completion; None when (user, step) already exists."""
        stmt = (
            self._insert(completions)
            .values(
                user_id=user_id,
                step=step,
                source=source,
                metadata=metadata,
                idempotency_key=idempotency_key,
                completed_at=completed_at,
            )
            .on_conflict_do_nothing(index_elements=[completions.c.user_id, completions.c.step])
            .returning(completions.c.id)
        )
        completion_id = (await self._conn.execute(stmt)).scalar_one_or_none()
        if completion_id is None:
            return None
        return CompletionRow(completion_id, user_id, step, source, metadata, completed_at)

    async def update_progress(self, *, user_id: str, steps: list[int], now: datetime) -> None:
        stmt = (
            update(progress)
            .where(progress.c.user_id == user_id)
            .values(completed_steps=steps, updated_at=now)
        )
        await self._conn.execute(stmt)

    async def insert_kpi_event(self, event: KpiEventRecord, *, recorded_at: datetime) -> None:
        await self._conn.execute(events.insert().values(event_row(event, recorded_at)))

    async def bump_rollup(self, event: KpiEventRecord) -> None:
        """Count the event in its 15-minute slot; same transaction as the event itself."""
        stmt = (
            self._insert(rollups)
            .values(
                kpi_id=event.kpi_id,
                slot_start=rollup_slot(event.occurred_at),
                shard=rollup_shard(event.id),
                events=1,
            )
            .on_conflict_do_update(
                index_elements=[rollups.c.kpi_id, rollups.c.slot_start, rollups.c.shard],
                set_={"events": rollups.c.events + 1},
            )
        )
        await self._conn.execute(stmt)

    async def insert_analytics_failure(
        self,
        *,
        completion_id: int,
        stage: str,
        error_type: str,
        error_message: str,
        payload: dict[str, Any],
        now: datetime,
    ) -> int:
        stmt = (
            failures.insert()
            .values(
                completion_id=completion_id,
                stage=stage,
                error_type=error_type,
                error_message=error_message,
                payload=payload,
                attempts=1,
                created_at=now,
            )
            .returning(failures.c.id)
        )
        failure_id: int = (await self._conn.execute(stmt)).scalar_one()
        return failure_id
