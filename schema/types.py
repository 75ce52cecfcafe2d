"""GraphQL object and input types of the onboarding contract (seed resource api-q7v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, cast

import strawberry
from strawberry.scalars import JSON

from app.kpi import FieldType
from app.kpi import OnboardingFlow as FlowConfig
from app.kpi import OnboardingStep as StepConfig
from app.kpi import StepField as StepFieldConfig
from app.processors.onboarding import AnalyticsStatus, CompletionOutcome
from app.services.analytics import KpiEventRecord
from app.services.onboarding import Progress
from schema._enums import graphql_enum
from schema.errors import (
    AuthenticationError,
    IdempotencyConflictError,
    PersistenceError,
    RateLimitedError,
    StepNotEligibleError,
    ValidationError,
)

graphql_enum(
    AnalyticsStatus,
    description="What happened to the KPI analytics event of a completion.",
    values={
        "RECORDED": "The KPI event was persisted.",
        "FAILED": (
            "The KPI event could not be recorded; the failure is stored for an admin to replay "
            "(replayAnalyticsFailures). The completion itself is saved."
        ),
        "NOT_APPLICABLE": "This step counts toward no KPI, so no event exists.",
    },
)


graphql_enum(
    FieldType,
    name="StepFieldType",
    description="The type of a step's metadata field; the server checks every value against it.",
    values={
        "STRING": "Text; minLength and maxLength count characters (Unicode code points).",
        "EMAIL": "An email address (the HTML standard's shape, with a dot in the domain).",
        "INTEGER": "A whole number, within minimum and maximum when given.",
        "NUMBER": "A finite number, within minimum and maximum when given.",
        "BOOLEAN": "true or false.",
        "CHOICE": "One of the values listed in choices (send the value, show the label).",
    },
)


@strawberry.type(description="One allowed value of a CHOICE field.")
class StepFieldChoice:
    value: str = strawberry.field(description="What to send in metadata.")
    label: str = strawberry.field(description="What to show the user.")


@strawberry.type(
    description="One metadata key of a step: its event's tracking plan. completeOnboardingStep "
    "refuses metadata that breaks these rules, with one fieldErrors entry per problem."
)
class StepField:
    name: str = strawberry.field(description="The metadata key, e.g. 'displayName'.")
    label: str = strawberry.field(description="Human-readable label for a form.")
    type: FieldType = strawberry.field(description="The value's type.")
    required: bool = strawberry.field(
        description="True when the key must be present and not blank."
    )
    min_length: int | None = strawberry.field(description="STRING/EMAIL: fewest characters.")
    max_length: int | None = strawberry.field(description="STRING/EMAIL: most characters.")
    minimum: float | None = strawberry.field(description="INTEGER/NUMBER: smallest value.")
    maximum: float | None = strawberry.field(description="INTEGER/NUMBER: largest value.")
    choices: list[StepFieldChoice] | None = strawberry.field(
        description="CHOICE: the allowed values, in display order; null for other types."
    )

    @classmethod
    def from_config(cls, spec: StepFieldConfig) -> StepField:
        return cls(
            name=spec.name,
            label=spec.label,
            type=spec.type,
            required=spec.required,
            min_length=spec.min_length,
            max_length=spec.max_length,
            minimum=spec.minimum,
            maximum=spec.maximum,
            choices=(
                [StepFieldChoice(value=c.value, label=c.label) for c in spec.choices]
                if spec.choices is not None
                else None
            ),
        )


@strawberry.type(description="One step of the onboarding flow.")
class OnboardingStep:
    step: int = strawberry.field(description="1-based position of the step in the flow.")
    key: str = strawberry.field(description="Stable machine name of the step, e.g. 'profile'.")
    title: str = strawberry.field(description="Human-readable title.")
    description: str | None = strawberry.field(
        description="A sentence or two for the user about the step, or null."
    )
    kpi_id: str | None = strawberry.field(
        description="Dotted id of the KPI this step counts toward, or null if none."
    )
    fields: list[StepField] = strawberry.field(
        description="The metadata the step's completion carries, in form order."
    )
    allows_extra_metadata: bool = strawberry.field(
        description="True when metadata keys other than fields are kept; false when they "
        "are refused."
    )

    @classmethod
    def from_config(cls, step: StepConfig) -> OnboardingStep:
        return cls(
            step=step.step,
            key=step.key,
            title=step.title,
            description=step.description,
            kpi_id=step.kpi_id,
            fields=[StepField.from_config(f) for f in step.fields],
            allows_extra_metadata=step.extra_allowed,
        )


@strawberry.type(description="The onboarding flow: its steps, in the order they are completed.")
class OnboardingFlow:
    steps: list[OnboardingStep] = strawberry.field(description="Every step, in order.")

    @classmethod
    def from_config(cls, flow: FlowConfig) -> OnboardingFlow:
        return cls(steps=[OnboardingStep.from_config(s) for s in flow.steps])


@strawberry.type(description="A user's progress through the onboarding flow.")
class OnboardingProgress:
    completed_steps: list[int] = strawberry.field(description="Completed step numbers, ascending.")
    next_step: int | None = strawberry.field(
        description="The step to complete next, or null when onboarding is complete."
    )
    total_steps: int = strawberry.field(description="Number of steps in the flow.")
    is_complete: bool = strawberry.field(description="True when every step is completed.")

    @classmethod
    def from_domain(cls, progress: Progress) -> OnboardingProgress:
        return cls(
            completed_steps=progress.completed_steps,
            next_step=progress.next_step,
            total_steps=progress.total_steps,
            is_complete=progress.is_complete,
        )


@strawberry.type(description="A recorded onboarding step completion.")
class StepCompletion:
    step: int = strawberry.field(description="The completed step.")
    completed_at: datetime = strawberry.field(description="Server time of the completion, in UTC.")


@strawberry.type(description="An analytics event recorded for a KPI.")
class KpiEvent:
    id: strawberry.ID = strawberry.field(description="Unique id of the event (a UUID).")
    kpi_id: str = strawberry.field(description="Dotted canonical KPI id.")
    occurred_at: datetime = strawberry.field(
        description="When the action happened: the completion's server time, in UTC."
    )
    user_id: str = strawberry.field(description="The user who completed the step.")
    step: int = strawberry.field(description="The onboarding step that was completed.")
    source: str = strawberry.field(description="Where the action happened: 'web', 'ios', 'api'.")
    metadata: JSON = strawberry.field(description="The step metadata sent with the completion.")

    @strawberry.field(description="The user's current onboarding progress (batched lookup).")
    async def user_progress(self, info: strawberry.Info) -> OnboardingProgress:
        progress: Progress = await info.context.loaders.progress.load(self.user_id)
        return OnboardingProgress.from_domain(progress)

    @classmethod
    def from_domain(cls, event: KpiEventRecord) -> KpiEvent:
        return cls(
            id=strawberry.ID(event.id),
            kpi_id=event.kpi_id,
            occurred_at=event.occurred_at,
            user_id=event.user_id,
            step=event.step,
            source=event.source,
            metadata=cast(JSON, event.metadata),
        )


@strawberry.type(description="The analytics side of a completion.")
class AnalyticsResult:
    status: AnalyticsStatus = strawberry.field(description="Whether the KPI event was recorded.")
    event: KpiEvent | None = strawberry.field(
        description="The recorded event when status is RECORDED, otherwise null."
    )


@strawberry.type(description="The step was completed (now, or by an earlier identical request).")
class CompleteOnboardingStepSuccess:
    completion: StepCompletion = strawberry.field(description="The recorded completion.")
    progress: OnboardingProgress = strawberry.field(
        description="The user's progress right after this completion."
    )
    analytics: AnalyticsResult = strawberry.field(description="The KPI analytics outcome.")
    replayed: bool = strawberry.field(
        description="True when this is the stored answer to an earlier request with the same "
        "idempotency key; nothing new was recorded."
    )

    @classmethod
    def from_domain(cls, outcome: CompletionOutcome) -> CompleteOnboardingStepSuccess:
        return cls(
            completion=StepCompletion(step=outcome.step, completed_at=outcome.completed_at),
            progress=OnboardingProgress.from_domain(outcome.progress),
            analytics=AnalyticsResult(
                status=outcome.analytics_status,
                event=KpiEvent.from_domain(outcome.event) if outcome.event else None,
            ),
            replayed=outcome.replayed,
        )


@strawberry.input(description="A request to complete one onboarding step as the signed-in user.")
class CompleteOnboardingStepInput:
    step: int = strawberry.field(description="1-based step number.")
    idempotency_key: str = strawberry.field(
        description="Client-made key (a UUID), reused on every retry of the same submission: "
        "16-255 characters of letters, digits, '-', '_', ':', '.'."
    )
    source: str | None = strawberry.field(
        default=None,
        description="Where the action happened ('web', 'ios', ...): 1-32 characters of "
        "lowercase letters, digits, '-', '_'. 'api' when omitted.",
    )
    metadata: JSON | None = strawberry.field(
        default=None,
        description="Optional flat object of step metadata: at most 32 keys, values strings, "
        "numbers, booleans or null, at most 4 KiB as JSON.",
    )


CompleteOnboardingStepResult = Annotated[
    CompleteOnboardingStepSuccess
    | ValidationError
    | AuthenticationError
    | StepNotEligibleError
    | IdempotencyConflictError
    | PersistenceError
    | RateLimitedError,
    strawberry.union(
        "CompleteOnboardingStepResult",
        description="The completion, or the typed reason it was not recorded.",
    ),
]
