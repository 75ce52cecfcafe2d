"""Request handlers for onboarding (seed resource api-n8k2).

Each resolver converts GraphQL input, calls one processor or query, and maps the
result or the domain error back to the contract. No SQL and no business rules here.
"""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.errors import RateLimited, UserFacingError
from app.services.onboarding import parse_complete_step
from resolvers.context import Info
from resolvers.permissions import signed_in
from schema.errors import to_graphql_error
from schema.types import (
    CompleteOnboardingStepInput,
    CompleteOnboardingStepResult,
    CompleteOnboardingStepSuccess,
    OnboardingFlow,
    OnboardingProgress,
)


def onboarding_flow(info: Info) -> OnboardingFlow:
    return OnboardingFlow.from_config(info.context.services.flow)


async def my_onboarding_progress(info: Info) -> OnboardingProgress:
    principal = signed_in(info)
    progress = await info.context.services.queries.progress(principal.user_id)
    return OnboardingProgress.from_domain(progress)


async def complete_onboarding_step(
    info: Info,
    input: Annotated[
        CompleteOnboardingStepInput,
        strawberry.argument(description="The step to complete and how to identify the attempt."),
    ],
) -> CompleteOnboardingStepResult:
    services = info.context.services
    try:
        command = parse_complete_step(
            services.flow,
            step=input.step,
            idempotency_key=input.idempotency_key,
            source=input.source,
            metadata=input.metadata,
        )
        principal = info.context.authenticate()
        try:
            await services.rate_limiter.check(principal.user_id)
        except RateLimited:
            # an exact retry still gets its stored answer; only new work is refused
            replayed = await services.processor.stored_answer(principal.user_id, command)
            if replayed is None:
                raise
            outcome = replayed
        else:
            outcome = await services.processor.complete_step(principal.user_id, command)
    except UserFacingError as exc:
        services.metrics.completions.labels(outcome=exc.code.value).inc()
        return to_graphql_error(exc)  # type: ignore[return-value]
    services.metrics.completions.labels(outcome="replayed" if outcome.replayed else "success").inc()
    return CompleteOnboardingStepSuccess.from_domain(outcome)
