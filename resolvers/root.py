"""The root Query and Mutation types: one line per field, pointing at its resolver."""

from __future__ import annotations

import strawberry

from resolvers import analytics, onboarding
from schema.analytics import (
    AnalyticsFailureConnection,
    KpiDefinition,
    KpiEventConnection,
    KpiEventSeries,
    OnboardingFunnel,
    ReplayAnalyticsFailuresResult,
)
from schema.types import CompleteOnboardingStepResult, OnboardingFlow, OnboardingProgress


@strawberry.type(description="Read the onboarding flow, progress and KPI analytics.")
class Query:
    onboarding_flow: OnboardingFlow = strawberry.field(
        resolver=onboarding.onboarding_flow,
        description="The onboarding steps, in order, with the KPI each counts toward. Public.",
    )
    my_onboarding_progress: OnboardingProgress = strawberry.field(
        resolver=onboarding.my_onboarding_progress,
        description="The signed-in user's progress. Needs a bearer token.",
    )
    kpi_definitions: list[KpiDefinition] = strawberry.field(
        resolver=analytics.kpi_definitions,
        description=(
            "Every KPI the served flow declares, with the steps that count toward it "
            "(none for a KPI counted elsewhere). Public."
        ),
    )
    kpi_events: KpiEventConnection = strawberry.field(
        resolver=analytics.kpi_events,
        description="Recorded KPI events, newest first, keyset-paginated. Role: analyst.",
    )
    kpi_event_series: KpiEventSeries = strawberry.field(
        resolver=analytics.kpi_event_series,
        description="A KPI's events and unique users per time bucket, zero-filled, for the "
        "half-open range [from, to). Role: analyst.",
    )
    onboarding_funnel: OnboardingFunnel = strawberry.field(
        resolver=analytics.onboarding_funnel,
        description="For users who completed step 1 in [from, to): how many reached each "
        "later step in order within the window. Role: analyst.",
    )
    analytics_failures: AnalyticsFailureConnection = strawberry.field(
        resolver=analytics.analytics_failures,
        description="KPI events that could not be recorded, newest first. Role: admin.",
    )


@strawberry.type(description="Record onboarding progress; repair analytics.")
class Mutation:
    complete_onboarding_step: CompleteOnboardingStepResult = strawberry.mutation(
        resolver=onboarding.complete_onboarding_step,
        description="Complete an onboarding step as the signed-in user and record the KPI "
        "analytics event it counts toward. Safe to retry with the same idempotency key.",
    )
    replay_analytics_failures: ReplayAnalyticsFailuresResult = strawberry.mutation(
        resolver=analytics.replay_analytics_failures,
        description="Rebuild missing KPI events from their completions, idempotently. Role: admin.",
    )
