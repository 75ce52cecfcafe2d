"""Storage schema (seed resource db-f8n5)."""

from models.tables import (
    AnalyticsFailure,
    IdempotencyKey,
    KpiEvent,
    KpiEventRollup,
    OnboardingProgress,
    StepCompletion,
)

__all__ = [
    "AnalyticsFailure",
    "IdempotencyKey",
    "KpiEvent",
    "KpiEventRollup",
    "OnboardingProgress",
    "StepCompletion",
]
