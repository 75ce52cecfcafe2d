"""Storage schema (seed resource db-f8n5)."""

from models.tables import (
    AnalyticsFailure,
    IdempotencyKey,
    KpiEvent,
    OnboardingProgress,
    StepCompletion,
)

__all__ = [
    "AnalyticsFailure",
    "IdempotencyKey",
    "KpiEvent",
    "OnboardingProgress",
    "StepCompletion",
]
