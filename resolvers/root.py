"""The root Query and Mutation types: one line per field, pointing at its resolver."""

from __future__ import annotations

import strawberry

from resolvers import onboarding
from schema.types import CompleteOnboardingStepResult, OnboardingFlow, OnboardingProgress


@strawberry.type(description="Read the onboarding flow and progress.")
class Query:
    onboarding_flow: OnboardingFlow = strawberry.field(
        resolver=onboarding.onboarding_flow,
        description="The onboarding steps, in order, with the KPI each counts toward. Public.",
    )
    my_onboarding_progress: OnboardingProgress = strawberry.field(
        resolver=onboarding.my_onboarding_progress,
        description="The signed-in user's progress. Needs a bearer token.",
    )


@strawberry.type(description="Record onboarding progress.")
class Mutation:
    complete_onboarding_step: CompleteOnboardingStepResult = strawberry.mutation(
        resolver=onboarding.complete_onboarding_step,
        description="Complete an onboarding step as the signed-in user and record the KPI "
        "analytics event it counts toward. Safe to retry with the same idempotency key.",
    )
