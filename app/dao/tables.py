"""The SQLModel tables as SQLAlchemy Core ``Table`` objects, for the Core queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table

from app.services.analytics import KpiEventRecord
from models import (
    AnalyticsFailure,
    FunnelCohortRollup,
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
rollups = _table(KpiEventRollup)
funnel_rollups = _table(FunnelCohortRollup)


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
