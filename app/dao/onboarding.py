"""Data access for onboarding state and analytics events (seed resource db-d3w8).

Every statement of the write path, as plain SQL (see ``app.dao.sql`` for why and how it
runs). Each function is a piece of a transaction script: ``x = yield from lock_progress(...)``
inside the caller's transaction. JSON columns are written as JSON text and read back
with ``json.loads`` on both engines; times are aware UTC datetimes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.dao.sql import Fetch, Script, Statement
from app.services.analytics import KpiEventRecord, rollup_shard, rollup_slot


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


# The no-op upsert creates the row on first use and takes its row lock on PostgreSQL,
# serialising one user's concurrent submissions (SQLite serialises all writers with
# BEGIN IMMEDIATE).
LOCK_PROGRESS = Statement.of(
    """
    INSERT INTO onboarding_progress (user_id, completed_steps, updated_at)
    VALUES (:user_id, '[]', :now)
    ON CONFLICT (user_id) DO UPDATE SET user_id = onboarding_progress.user_id
    RETURNING completed_steps
    """
)
READ_PROGRESS = Statement.of(
    "SELECT completed_steps FROM onboarding_progress WHERE user_id = :user_id"
)
UPDATE_PROGRESS = Statement.of(
    """
    UPDATE onboarding_progress SET completed_steps = :steps, updated_at = :now
    WHERE user_id = :user_id
    """
)
# Claimed atomically: never check-then-insert.
CLAIM_KEY = Statement.of(
    """
    INSERT INTO idempotency_keys (user_id, operation, key, fingerprint, created_at)
    VALUES (:user_id, :operation, :key, :fingerprint, :now)
    ON CONFLICT DO NOTHING
    RETURNING key
    """
)
FIND_KEY = Statement.of(
    """
    SELECT fingerprint, response FROM idempotency_keys
    WHERE user_id = :user_id AND operation = :operation AND key = :key
    """
)
STORE_RESPONSE = Statement.of(
    """
    UPDATE idempotency_keys SET response = :response
    WHERE user_id = :user_id AND operation = :operation AND key = :key
    """
)
INSERT_COMPLETION = Statement.of(
    """
    INSERT INTO step_completions
        (user_id, step, source, metadata, idempotency_key, completed_at)
    VALUES (:user_id, :step, :source, :metadata, :idempotency_key, :completed_at)
    ON CONFLICT (user_id, step) DO NOTHING
    RETURNING id
    """
)
INSERT_KPI_EVENT = Statement.of(
    """
    INSERT INTO kpi_events
        (id, completion_id, kpi_id, user_id, step, source, metadata, occurred_at, recorded_at)
    VALUES (:id, :completion_id, :kpi_id, :user_id, :step, :source, :metadata,
            :occurred_at, :recorded_at)
    """
)
# Events per KPI per 15-minute slot, in the event's own transaction (see KpiEventRollup).
BUMP_ROLLUP = Statement.of(
    """
    INSERT INTO kpi_event_rollups (kpi_id, slot_start, shard, events)
    VALUES (:kpi_id, :slot_start, :shard, 1)
    ON CONFLICT (kpi_id, slot_start, shard)
    DO UPDATE SET events = kpi_event_rollups.events + 1
    """
)
INSERT_ANALYTICS_FAILURE = Statement.of(
    """
    INSERT INTO analytics_failures
        (completion_id, stage, error_type, error_message, payload, attempts, created_at)
    VALUES (:completion_id, :stage, :error_type, :error_message, :payload, 1, :now)
    RETURNING id
    """
)


def lock_progress(user_id: str, *, now: datetime) -> Script[list[int]]:
    """The user's completed steps, holding their progress row until commit."""
    (steps,) = yield LOCK_PROGRESS(Fetch.ONE, user_id=user_id, now=now)
    completed: list[int] = json.loads(steps)
    return completed


def read_progress(user_id: str) -> Script[list[int]]:
    row = yield READ_PROGRESS(Fetch.ONE, user_id=user_id)
    completed: list[int] = json.loads(row[0]) if row else []
    return completed


def update_progress(user_id: str, *, steps: list[int], now: datetime) -> Script[None]:
    yield UPDATE_PROGRESS(user_id=user_id, steps=json.dumps(steps), now=now)


def claim_key(
    *, user_id: str, operation: str, key: str, fingerprint: str, now: datetime
) -> Script[bool]:
    """Insert the key atomically; False when it already exists."""
    claimed = yield CLAIM_KEY(
        Fetch.ONE, user_id=user_id, operation=operation, key=key, fingerprint=fingerprint, now=now
    )
    return claimed is not None


def find_key(*, user_id: str, operation: str, key: str) -> Script[StoredKey | None]:
    row = yield FIND_KEY(Fetch.ONE, user_id=user_id, operation=operation, key=key)
    if row is None:
        return None
    fingerprint, response = row
    return StoredKey(fingerprint, json.loads(response) if response is not None else None)


def store_response(
    *, user_id: str, operation: str, key: str, response: dict[str, Any]
) -> Script[None]:
    yield STORE_RESPONSE(
        user_id=user_id, operation=operation, key=key, response=json.dumps(response)
    )


def insert_completion(
    *,
    user_id: str,
    step: int,
    source: str,
    metadata: dict[str, Any],
    idempotency_key: str,
    completed_at: datetime,
) -> Script[CompletionRow | None]:
    """Insert the completion; None when (user, step) already exists."""
    row = yield INSERT_COMPLETION(
        Fetch.ONE,
        user_id=user_id,
        step=step,
        source=source,
        metadata=json.dumps(metadata),
        idempotency_key=idempotency_key,
        completed_at=completed_at,
    )
    if row is None:
        return None
    return CompletionRow(row[0], user_id, step, source, metadata, completed_at)


def insert_kpi_event(event: KpiEventRecord, *, recorded_at: datetime) -> Script[None]:
    yield INSERT_KPI_EVENT(
        id=uuid.UUID(event.id),
        completion_id=event.completion_id,
        kpi_id=event.kpi_id,
        user_id=event.user_id,
        step=event.step,
        source=event.source,
        metadata=json.dumps(event.metadata),
        occurred_at=event.occurred_at,
        recorded_at=recorded_at,
    )


def bump_rollup(event: KpiEventRecord) -> Script[None]:
    yield BUMP_ROLLUP(
        kpi_id=event.kpi_id,
        slot_start=rollup_slot(event.occurred_at),
        shard=rollup_shard(event.id),
    )


def insert_analytics_failure(
    *,
    completion_id: int,
    stage: str,
    error_type: str,
    error_message: str,
    payload: dict[str, Any],
    now: datetime,
) -> Script[int]:
    (failure_id,) = yield INSERT_ANALYTICS_FAILURE(
        Fetch.ONE,
        completion_id=completion_id,
        stage=stage,
        error_type=error_type,
        error_message=error_message,
        payload=json.dumps(payload),
        now=now,
    )
    return int(failure_id)
