"""GraphQL types of the analytics read side (part of the api-q7v1 contract)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.dao.analytics import EventFilter, FailureRow
from app.errors import AnalyticsFailureStage
from app.kpi import KpiDefinition as KpiDefinitionConfig
from app.kpi import KpiKind
from app.processors.replay import ReplayReport
from app.queries.analytics import Series
from app.services.funnel import FunnelStep as FunnelStepResult
from app.services.series import TimeInterval
from schema._enums import graphql_enum
from schema.types import KpiEvent

graphql_enum(
    KpiKind,
    description="Whether a KPI predicts an outcome (leading) or confirms it (lagging).",
    values={
        "LEADING": "Moves early; predicts the outcome (e.g. step 1 completed).",
        "LAGGING": "Moves late; confirms the outcome (e.g. onboarding completed).",
    },
)
graphql_enum(
    TimeInterval,
    description="Size of a series bucket, aligned in the requested time zone.",
    values={
        "HOUR": "One hour.",
        "DAY": "One calendar day, midnight to midnight (23 or 25 hours across DST changes).",
        "WEEK": "One ISO week, Monday midnight to Monday midnight.",
    },
)
graphql_enum(
    AnalyticsFailureStage,
    description="Where recording a KPI event failed.",
    values={
        "BUILD": (
            "The event could not be built: the step's KPI is not one the flow declares, or "
            "the metadata does not satisfy the step's tracking plan."
        ),
        "WRITE": "The database refused the event row.",
    },
)


@strawberry.type(
    description="A canonical KPI of the served flow, that onboarding steps count toward."
)
class KpiDefinition:
    id: str = strawberry.field(description="Dotted canonical id, e.g. onboarding.step_1_completed.")
    name: str = strawberry.field(description="Human-readable name.")
    description: str = strawberry.field(description="What the KPI measures.")
    kind: KpiKind = strawberry.field(description="Leading or lagging.")
    steps: list[int] = strawberry.field(description="The onboarding steps that count toward it.")

    @classmethod
    def from_config(cls, definition: KpiDefinitionConfig, steps: list[int]) -> KpiDefinition:
        return cls(
            id=definition.id,
            name=definition.name,
            description=definition.description,
            kind=definition.kind,
            steps=steps,
        )


@strawberry.input(description="Narrows kpiEvents; every given field must match.")
class KpiEventFilter:
    kpi_ids: list[str] | None = strawberry.field(
        default=None, description="Only events of these KPI ids (at most 50)."
    )
    user_id: str | None = strawberry.field(default=None, description="Only this user's events.")
    step: int | None = strawberry.field(default=None, description="Only this onboarding step.")
    source: str | None = strawberry.field(default=None, description="Only this source.")
    occurred_from: datetime | None = strawberry.field(
        default=None, description="Only events at or after this time (inclusive)."
    )
    occurred_to: datetime | None = strawberry.field(
        default=None, description="Only events before this time (exclusive)."
    )


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="True when another page follows.")
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` to get the next page; null on an empty page."
    )


@strawberry.type(description="One KPI event in a page, with its cursor.")
class KpiEventEdge:
    cursor: str = strawberry.field(description="Opaque position of this event.")
    node: KpiEvent = strawberry.field(description="The event.")


@strawberry.type(description="A page of KPI events, newest first.")
class KpiEventConnection:
    edges: list[KpiEventEdge] = strawberry.field(description="The events of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")
    where: strawberry.Private[EventFilter]

    @strawberry.field(description="Number of events matching the filter, across all pages.")
    async def total_count(self, info: strawberry.Info) -> int:
        # Counted only when selected: a dashboard paging through events rarely asks.
        total: int = await info.context.services.analytics.count_events(self.where)
        return total


@strawberry.type(description="Events of a KPI within one time bucket.")
class KpiEventSeriesBucket:
    start: datetime = strawberry.field(description="Bucket start, in the requested time zone.")
    end: datetime = strawberry.field(description="Bucket end (exclusive), in that zone.")
    events: int = strawberry.field(description="KPI events in the bucket (within from/to).")
    unique_users: int = strawberry.field(description="Distinct users with an event in the bucket.")


@strawberry.type(description="A KPI's event counts over time, every bucket present.")
class KpiEventSeries:
    kpi_id: str = strawberry.field(description="The KPI.")
    interval: TimeInterval = strawberry.field(description="Bucket size.")
    time_zone: str = strawberry.field(description="IANA zone the buckets are aligned in.")
    buckets: list[KpiEventSeriesBucket] = strawberry.field(
        description="Consecutive buckets covering [from, to), zero-filled."
    )
    total_events: int = strawberry.field(description="Events in [from, to).")
    total_unique_users: int = strawberry.field(description="Distinct users in [from, to).")

    @classmethod
    def from_domain(cls, series: Series) -> KpiEventSeries:
        return cls(
            kpi_id=series.kpi_id,
            interval=series.interval,
            time_zone=series.zone.key,
            buckets=[
                KpiEventSeriesBucket(
                    start=b.bucket.start,
                    end=b.bucket.end,
                    events=b.events,
                    unique_users=b.unique_users,
                )
                for b in series.buckets
            ],
            total_events=series.total_events,
            total_unique_users=series.total_events,  # one event per (user, KPI)
        )


@strawberry.type(description="One step of the onboarding funnel.")
class FunnelStep:
    step: int = strawberry.field(description="The step number.")
    key: str = strawberry.field(description="The step's machine name.")
    title: str = strawberry.field(description="The step's title.")
    users: int = strawberry.field(
        description="Cohort users who completed this step, in order, within the window."
    )
    conversion_from_start: float | None = strawberry.field(
        description="users / users of step 1, from 0 to 1; null when the cohort is empty."
    )
    conversion_from_previous: float | None = strawberry.field(
        description="users / users of the previous step, from 0 to 1; null when that is 0."
    )
    median_seconds_from_previous: float | None = strawberry.field(
        description=(
            "Median time from the previous step to this one, in seconds; null if none. "
            "Approximate: within 1 % of the exact median (read from 2 %-wide buckets)."
        )
    )


@strawberry.type(description="Conversion through the onboarding steps for a cohort.")
class OnboardingFunnel:
    from_: datetime = strawberry.field(
        name="from", description="Cohort start: step 1 completed at or after this time."
    )
    to: datetime = strawberry.field(description="Cohort end: step 1 completed before this time.")
    conversion_window_days: int = strawberry.field(
        description="Days after step 1 within which later steps count."
    )
    steps: list[FunnelStep] = strawberry.field(description="Every step, in order.")

    @classmethod
    def from_domain(
        cls,
        steps: list[FunnelStepResult],
        *,
        start: datetime,
        end: datetime,
        window_days: int,
        titles: dict[int, tuple[str, str]],
    ) -> OnboardingFunnel:
        return cls(
            from_=start,
            to=end,
            conversion_window_days=window_days,
            steps=[
                FunnelStep(
                    step=s.step,
                    key=titles[s.step][0],
                    title=titles[s.step][1],
                    users=s.users,
                    conversion_from_start=s.conversion_from_start,
                    conversion_from_previous=s.conversion_from_previous,
                    median_seconds_from_previous=s.median_seconds_from_previous,
                )
                for s in steps
            ],
        )


@strawberry.type(description="A KPI event that could not be recorded, kept for replay.")
class AnalyticsFailure:
    id: strawberry.ID = strawberry.field(description="Failure record id.")
    completion_id: int = strawberry.field(description="The completion whose event is missing.")
    user_id: str | None = strawberry.field(description="The user of that completion.")
    step: int | None = strawberry.field(description="The step of that completion.")
    stage: AnalyticsFailureStage = strawberry.field(description="Where it failed (last attempt).")
    error_type: str = strawberry.field(description="Error class of the last attempt.")
    error_message: str = strawberry.field(description="Error message of the last attempt.")
    attempts: int = strawberry.field(description="Attempts so far, the original included.")
    created_at: datetime = strawberry.field(description="When the failure was first recorded.")
    resolved_at: datetime | None = strawberry.field(
        description="When a replay recorded the event; null while unresolved."
    )
    resolved_event_id: str | None = strawberry.field(
        description="The KPI event a replay recorded; null while unresolved."
    )

    @classmethod
    def from_domain(cls, row: FailureRow) -> AnalyticsFailure:
        return cls(
            id=strawberry.ID(str(row.id)),
            completion_id=row.completion_id,
            user_id=row.payload.get("user_id"),
            step=row.payload.get("step"),
            stage=AnalyticsFailureStage(row.stage),
            error_type=row.error_type,
            error_message=row.error_message,
            attempts=row.attempts,
            created_at=row.created_at,
            resolved_at=row.resolved_at,
            resolved_event_id=row.resolved_event_id,
        )


@strawberry.type(description="One analytics failure in a page, with its cursor.")
class AnalyticsFailureEdge:
    cursor: str = strawberry.field(description="Opaque position of this failure.")
    node: AnalyticsFailure = strawberry.field(description="The failure.")


@strawberry.type(description="A page of analytics failures, newest first.")
class AnalyticsFailureConnection:
    edges: list[AnalyticsFailureEdge] = strawberry.field(description="The failures of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")
    unresolved_only: strawberry.Private[bool]

    @strawberry.field(description="Failures matching, across all pages.")
    async def total_count(self, info: strawberry.Info) -> int:
        total: int = await info.context.services.analytics.count_failures(
            unresolved_only=self.unresolved_only
        )
        return total


@strawberry.type(description="What a replay of analytics failures did.")
class ReplayAnalyticsFailuresResult:
    resolved: int = strawberry.field(description="Failures whose KPI event is now recorded.")
    still_failing: int = strawberry.field(description="Failures that failed again (recorded).")
    remaining: int = strawberry.field(description="Unresolved failures left after this replay.")

    @classmethod
    def from_domain(cls, report: ReplayReport) -> ReplayAnalyticsFailuresResult:
        return cls(
            resolved=report.resolved,
            still_failing=report.still_failing,
            remaining=report.remaining,
        )
