"""Storage schema (seed resource db-f8n5): SQLModel tables only, no behaviour.

- ``step_completions``   one row per (user, step): the source of truth for progress.
- ``onboarding_progress`` one row per user: the denormalised progress, and the row the
  processor locks so that one user's submissions are serialised on PostgreSQL.
- ``kpi_events``          one analytics event per completion whose step counts toward a KPI.
- ``kpi_event_rollups``   event counts per KPI per 15-minute slot, for fast series.
- ``funnel_cohort_rollups`` users per cohort block, step reached, days to reach it and
  time from the previous step, for a fast funnel.
- ``analytics_failures``  one row per completion whose KPI event could not be recorded;
  its payload is enough to rebuild the event later.
- ``idempotency_keys``    the stored answer to each (user, operation, key).
- ``flow_history``        the flow the server has served: per step number its key and KPI,
  so a changed flow file cannot silently change what recorded completions mean.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, Text, UniqueConstraint, Uuid
from sqlmodel import Field, SQLModel

from models.types import JsonType, UTCDateTime


class StepCompletion(SQLModel, table=True):
    __tablename__ = "step_completions"
    __table_args__ = (
        UniqueConstraint("user_id", "step", name="uq_step_completions_user_step"),
        Index("ix_step_completions_step_completed_at", "step", "completed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=128)
    step: int
    source: str = Field(max_length=32)
    step_metadata: dict[str, Any] = Field(sa_column=Column("metadata", JsonType, nullable=False))
    idempotency_key: str = Field(max_length=255)
    completed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class OnboardingProgress(SQLModel, table=True):
    __tablename__ = "onboarding_progress"

    user_id: str = Field(primary_key=True, max_length=128)
    completed_steps: list[int] = Field(sa_column=Column(JsonType, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class KpiEvent(SQLModel, table=True):
    __tablename__ = "kpi_events"
    __table_args__ = (
        Index("ix_kpi_events_occurred_at_id", "occurred_at", "id"),
        Index("ix_kpi_events_kpi_id_occurred_at", "kpi_id", "occurred_at"),
        Index("ix_kpi_events_user_id", "user_id"),
        UniqueConstraint("kpi_id", "user_id", name="uq_kpi_events_kpi_user"),
    )

    id: str = Field(sa_column=Column(Uuid(as_uuid=False), primary_key=True))
    completion_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("step_completions.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        )
    )
    kpi_id: str = Field(max_length=128)
    user_id: str = Field(max_length=128)
    step: int
    source: str = Field(max_length=32)
    event_metadata: dict[str, Any] = Field(sa_column=Column("metadata", JsonType, nullable=False))
    occurred_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    recorded_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class KpiEventRollup(SQLModel, table=True):
    """Events per KPI per 15-minute UTC slot, kept in the event's own transaction.

    15 minutes because every time zone's offset is a multiple of it, so hour, day and
    week buckets in any zone are sums of whole slots. ``shard`` spreads concurrent
    increments of one slot over several rows (fewer lock waits on PostgreSQL); readers
    sum the shards.
    """

    __tablename__ = "kpi_event_rollups"

    kpi_id: str = Field(primary_key=True, max_length=128)
    slot_start: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    shard: int = Field(primary_key=True)
    events: int


class FunnelCohortRollup(SQLModel, table=True):
    """Users per (cohort block, step reached, days to reach it, gap bucket), kept in the
    completion's own transaction (``app.services.funnel.funnel_rollup_keys``).

    Every completion that counts is in one block of each span (1, 4, 16 ... 4096 hours of
    step-1 time, aligned to the epoch), so a funnel range reads a few blocks per span.
    ``days_to_reach`` = ceil(days from step 1): reached within W days <=> <= W.
    ``gap_bucket``: 2 %-wide bucket of the time since the previous step (for medians).
    ``shard`` spreads the step-1 rows that every sign-up increments (0 for later steps).
    WITHOUT ROWID on SQLite: the primary key holds the row, so range scans read no table.
    """

    __tablename__ = "funnel_cohort_rollups"
    __table_args__ = {"sqlite_with_rowid": False}

    span_hours: int = Field(primary_key=True)
    cohort_start: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    step: int = Field(primary_key=True)
    days_to_reach: int = Field(primary_key=True)
    gap_bucket: int = Field(primary_key=True)
    shard: int = Field(primary_key=True)
    users: int


class AnalyticsFailure(SQLModel, table=True):
    __tablename__ = "analytics_failures"

    id: int | None = Field(default=None, primary_key=True)
    completion_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("step_completions.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        )
    )
    stage: str = Field(max_length=16)
    error_type: str = Field(max_length=128)
    error_message: str = Field(sa_column=Column(Text, nullable=False))
    payload: dict[str, Any] = Field(sa_column=Column(JsonType, nullable=False))
    attempts: int = 1
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    resolved_event_id: str | None = Field(default=None, sa_column=Column(Uuid(as_uuid=False)))


class IdempotencyKey(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    user_id: str = Field(primary_key=True, max_length=128)
    operation: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=255)
    fingerprint: str = Field(max_length=64)
    response: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonType))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class FlowHistoryStep(SQLModel, table=True):
    """What one step number has meant since it was first served (``app.flow_history``).

    Completions and events store only the step number; this row is what that number means.
    ``recorded_at``: when the number got its current key (a re-key is allowed only while it
    has no completions). ``kpi_since``: when ``kpi_id`` was attached; completions before it
    were recorded without that KPI. Written only by ``app.dao.flow_history``.
    """

    __tablename__ = "flow_history"

    step: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    key: str = Field(max_length=64)
    kpi_id: str | None = Field(default=None, max_length=128)
    kpi_since: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    recorded_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


TABLES = (
    StepCompletion,
    OnboardingProgress,
    KpiEvent,
    KpiEventRollup,
    FunnelCohortRollup,
    AnalyticsFailure,
    IdempotencyKey,
    FlowHistoryStep,
)
