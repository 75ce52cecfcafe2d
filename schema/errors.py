"""GraphQL error types (part of the api-q7v1 contract), derived from ``app.errors``.

Each ``UserFacingError`` subclass has exactly one GraphQL type here, built by
``from_domain``; ``to_graphql_error`` is the single mapping used by resolvers.
The enums are the domain enums themselves, registered with Strawberry in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry

from app import errors as domain
from app.errors import ErrorCode, IdempotencyConflictReason, StepNotEligibleReason
from schema._enums import graphql_enum

graphql_enum(
    ErrorCode,
    description="Machine-readable code carried by every user error.",
    values={
        "VALIDATION_FAILED": "The input broke a rule; see ValidationError.fieldErrors.",
        "UNAUTHENTICATED": "No valid bearer token was sent.",
        "STEP_NOT_ELIGIBLE": "The step cannot be completed now; see StepNotEligibleError.reason.",
        "IDEMPOTENCY_CONFLICT": "The idempotency key cannot be used for this submission.",
        "PERSISTENCE_FAILED": "The database could not save the submission.",
        "RATE_LIMITED": "Too many submissions from this user; retry after a pause.",
    },
)
graphql_enum(
    StepNotEligibleReason,
    description="Why a step cannot be completed now.",
    values={
        "UNKNOWN_STEP": "The step number is not part of the onboarding flow.",
        "PREVIOUS_STEP_INCOMPLETE": "An earlier step has not been completed yet.",
        "ALREADY_COMPLETED": "The user has already completed this step.",
    },
)
graphql_enum(
    IdempotencyConflictReason,
    description="Why an idempotency key could not be honoured.",
    values={
        "KEY_REUSED_WITH_DIFFERENT_INPUT": (
            "The key was used before with different input; make a new key for a new submission."
        ),
        "REQUEST_IN_PROGRESS": "The first request with this key is still running; retry shortly.",
    },
)


@strawberry.interface(description="An expected failure, returned as data inside a result union.")
class UserError:
    message: str = strawberry.field(description="Human-readable explanation, safe to display.")
    code: ErrorCode = strawberry.field(description="Stable machine-readable code.")


@strawberry.type(description="One invalid input field.")
class FieldError:
    path: list[str] = strawberry.field(
        description='Path to the field in the operation\'s arguments, e.g. ["input", "source"].'
    )
    message: str = strawberry.field(description="What is wrong with the value.")


@strawberry.type(description="The input is invalid; nothing was recorded.")
class ValidationError(UserError):
    field_errors: list[FieldError] = strawberry.field(
        description="Every offending field, with its own message."
    )

    @classmethod
    def from_domain(cls, err: domain.RequestValidationError) -> ValidationError:
        return cls(
            message=err.message,
            code=err.code,
            field_errors=[
                FieldError(path=list(e.path), message=e.message) for e in err.field_errors
            ],
        )


@strawberry.type(description="No valid bearer token: sign in (again). Nothing was recorded.")
class AuthenticationError(UserError):
    @classmethod
    def from_domain(cls, err: domain.AuthenticationFailed) -> AuthenticationError:
        return cls(message=err.message, code=err.code)


@strawberry.type(description="The step cannot be completed now; nothing was recorded.")
class StepNotEligibleError(UserError):
    step: int = strawberry.field(description="The step that was submitted.")
    reason: StepNotEligibleReason = strawberry.field(description="Why it is not eligible.")

    @classmethod
    def from_domain(cls, err: domain.StepNotEligible) -> StepNotEligibleError:
        return cls(message=err.message, code=err.code, step=err.step, reason=err.reason)


@strawberry.type(
    description="The idempotency key cannot be used for this submission; nothing was recorded."
)
class IdempotencyConflictError(UserError):
    reason: IdempotencyConflictReason = strawberry.field(description="What the conflict is.")
    retryable: bool = strawberry.field(
        description="True when retrying the same submission later can succeed."
    )

    @classmethod
    def from_domain(cls, err: domain.IdempotencyConflict) -> IdempotencyConflictError:
        return cls(message=err.message, code=err.code, reason=err.reason, retryable=err.retryable)


@strawberry.type(description="The database could not save the completion; nothing was recorded.")
class PersistenceError(UserError):
    retryable: bool = strawberry.field(
        description="True when retrying with the same idempotency key is expected to work."
    )

    @classmethod
    def from_domain(cls, err: domain.PersistenceFailure) -> PersistenceError:
        return cls(message=err.message, code=err.code, retryable=err.retryable)


@strawberry.type(description="Too many submissions from this user; nothing was recorded.")
class RateLimitedError(UserError):
    retry_after_seconds: int = strawberry.field(
        description="Seconds to wait before the same submission will be accepted."
    )
    retryable: bool = strawberry.field(description="Always true: retry after the pause.")

    @classmethod
    def from_domain(cls, err: domain.RateLimited) -> RateLimitedError:
        return cls(
            message=err.message,
            code=err.code,
            retry_after_seconds=err.retry_after_seconds,
            retryable=True,
        )


GRAPHQL_ERROR_TYPES: dict[type[domain.UserFacingError], Callable[[Any], UserError]] = {
    domain.RequestValidationError: ValidationError.from_domain,
    domain.AuthenticationFailed: AuthenticationError.from_domain,
    domain.StepNotEligible: StepNotEligibleError.from_domain,
    domain.IdempotencyConflict: IdempotencyConflictError.from_domain,
    domain.PersistenceFailure: PersistenceError.from_domain,
    domain.RateLimited: RateLimitedError.from_domain,
}


def to_graphql_error(err: domain.UserFacingError) -> UserError:
    return GRAPHQL_ERROR_TYPES[type(err)](err)
