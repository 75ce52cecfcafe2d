"""Backend error definitions (seed resource db-l1c3).

The GraphQL error types and the ``ErrorCode`` enum in ``schema/`` are derived from
this module; nothing else defines an error code.

    OnboardingError
    ├── UserFacingError                 (answered to the client as a typed GraphQL error)
    │   ├── RequestValidationError      VALIDATION_FAILED       one entry per offending field
    │   ├── AuthenticationFailed        UNAUTHENTICATED
    │   ├── StepNotEligible             STEP_NOT_ELIGIBLE       reason: StepNotEligibleReason
    │   ├── IdempotencyConflict         IDEMPOTENCY_CONFLICT    reason: IdempotencyConflictReason
    │   ├── PersistenceFailure          PERSISTENCE_FAILED      retryable
    │   └── RateLimited                 RATE_LIMITED            retry_after_seconds
    ├── InvalidQuery                    BAD_USER_INPUT (a top-level GraphQL error on the read side)
    └── AnalyticsEventError             (never reaches the client: recorded as a failure row)
        ├── AnalyticsEventBuildError    stage BUILD
        └── AnalyticsEventWriteError    stage WRITE
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar


class ErrorCode(StrEnum):
    """Machine-readable code carried by every error a client can receive."""

    VALIDATION_FAILED = "VALIDATION_FAILED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    STEP_NOT_ELIGIBLE = "STEP_NOT_ELIGIBLE"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    PERSISTENCE_FAILED = "PERSISTENCE_FAILED"
    RATE_LIMITED = "RATE_LIMITED"


class StepNotEligibleReason(StrEnum):
    UNKNOWN_STEP = "UNKNOWN_STEP"
    PREVIOUS_STEP_INCOMPLETE = "PREVIOUS_STEP_INCOMPLETE"
    ALREADY_COMPLETED = "ALREADY_COMPLETED"


class IdempotencyConflictReason(StrEnum):
    KEY_REUSED_WITH_DIFFERENT_INPUT = "KEY_REUSED_WITH_DIFFERENT_INPUT"
    REQUEST_IN_PROGRESS = "REQUEST_IN_PROGRESS"


class AnalyticsFailureStage(StrEnum):
    """Where recording the KPI event failed; stored on the failure record."""

    BUILD = "BUILD"
    WRITE = "WRITE"


class OnboardingError(Exception):
    """Root of every error this service raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UserFacingError(OnboardingError):
    code: ClassVar[ErrorCode]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid input field; ``path`` is the GraphQL path, e.g. ``("input", "source")``."""

    path: tuple[str, ...]
    message: str


class RequestValidationError(UserFacingError):
    code = ErrorCode.VALIDATION_FAILED

    def __init__(self, field_errors: list[FieldError]) -> None:
        names = ", ".join(".".join(e.path) for e in field_errors)
        super().__init__(f"The request is invalid: {names}.")
        self.field_errors = field_errors


class AuthenticationFailed(UserFacingError):
    code = ErrorCode.UNAUTHENTICATED


class StepNotEligible(UserFacingError):
    code = ErrorCode.STEP_NOT_ELIGIBLE

    _MESSAGES: ClassVar[dict[StepNotEligibleReason, str]] = {
        StepNotEligibleReason.UNKNOWN_STEP: "Step {step} is not part of the onboarding flow.",
        StepNotEligibleReason.PREVIOUS_STEP_INCOMPLETE: (
            "Step {step} cannot be completed before the steps that come before it."
        ),
        StepNotEligibleReason.ALREADY_COMPLETED: "Step {step} is already completed.",
    }

    def __init__(self, step: int, reason: StepNotEligibleReason) -> None:
        super().__init__(self._MESSAGES[reason].format(step=step))
        self.step = step
        self.reason = reason


class IdempotencyConflict(UserFacingError):
    code = ErrorCode.IDEMPOTENCY_CONFLICT

    def __init__(self, reason: IdempotencyConflictReason) -> None:
        if reason is IdempotencyConflictReason.KEY_REUSED_WITH_DIFFERENT_INPUT:
            message = "This idempotency key was already used for a different submission."
        else:
            message = "A request with this idempotency key is still being processed; retry."
        super().__init__(message)
        self.reason = reason

    @property
    def retryable(self) -> bool:
        return self.reason is IdempotencyConflictReason.REQUEST_IN_PROGRESS


class PersistenceFailure(UserFacingError):
    code = ErrorCode.PERSISTENCE_FAILED

    def __init__(self, *, retryable: bool) -> None:
        super().__init__(
            "The completion could not be saved; nothing was recorded."
            + (" Retry with the same idempotency key." if retryable else "")
        )
        self.retryable = retryable


class InvalidQuery(OnboardingError):
    """An analytics query argument is out of bounds (page size, range, time zone, cursor)."""


class RateLimited(UserFacingError):
    code = ErrorCode.RATE_LIMITED

    def __init__(self, *, retry_after_seconds: int) -> None:
        super().__init__(
            f"Too many submissions; nothing was recorded. Retry in {retry_after_seconds} s."
        )
        self.retry_after_seconds = retry_after_seconds


class AnalyticsEventError(OnboardingError):
    stage: ClassVar[AnalyticsFailureStage]


class AnalyticsEventBuildError(AnalyticsEventError):
    stage = AnalyticsFailureStage.BUILD


class AnalyticsEventWriteError(AnalyticsEventError):
    stage = AnalyticsFailureStage.WRITE
