"""Storage schema (seed resource db-f8n5)."""

from models.tables import (
    AnalyticsFailure,
    FunnelCohortRollup,
    IdempotencyKey,
    KpiEvent,
    KpiEventRollup,
    OnboardingProgress,
    StepCompletion,
)

__all__ = [
    "AnalyticsFailure",
    "FunnelCohortRollup",
    "IdempotencyKey",
    "KpiEvent",
    "KpiEventRollup",
    "OnboardingProgress",
    "StepCompletion",
]
