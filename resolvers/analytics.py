"""Request handlers for the analytics queries and the failure replay (seed resource api-n8k2)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.dao.analytics import EventFilter
from app.errors import InvalidQuery
from app.services.series import TimeInterval, parse_zone
from resolvers.context import Info
from resolvers.permissions import Role, require_role
from schema.analytics import (
    AnalyticsFailure,
    AnalyticsFailureConnection,
    AnalyticsFailureEdge,
    KpiDefinition,
    KpiEventConnection,
    KpiEventEdge,
    KpiEventFilter,
    KpiEventSeries,
    OnboardingFunnel,
    PageInfo,
    ReplayAnalyticsFailuresResult,
)
from schema.types import KpiEvent

MAX_FILTER_KPI_IDS = 50

# The paging arguments every connection field takes.
PageSize = Annotated[
    int | None, strawberry.argument(description="Page size: default 50, at most 500.")
]
PageAfter = Annotated[
    str | None, strawberry.argument(description="endCursor of the previous page.")
]


def kpi_definitions(info: Info) -> list[KpiDefinition]:
    flow = info.context.services.flow
    return [KpiDefinition.from_config(d, flow.steps_for(d.id)) for d in flow.kpis]


async def kpi_events(
    info: Info,
    filter: Annotated[
        KpiEventFilter | None, strawberry.argument(description="Which events to return.")
    ] = None,
    first: PageSize = None,
    after: PageAfter = None,
) -> KpiEventConnection:
    require_role(info, Role.ANALYST)
    given = filter or KpiEventFilter()
    if given.kpi_ids is not None and len(given.kpi_ids) > MAX_FILTER_KPI_IDS:
        raise InvalidQuery(f"kpiIds holds at most {MAX_FILTER_KPI_IDS} ids")
    where = EventFilter(
        kpi_ids=given.kpi_ids,
        user_id=given.user_id,
        step=given.step,
        source=given.source,
        occurred_from=given.occurred_from,
        occurred_to=given.occurred_to,
    )
    page = await info.context.services.analytics.events(where, first=first, after=after)
    return KpiEventConnection(
        edges=[KpiEventEdge(cursor=c, node=KpiEvent.from_domain(e)) for c, e in page.items],
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        where=where,
    )


async def kpi_event_series(
    info: Info,
    kpi_id: Annotated[str, strawberry.argument(description="The KPI, by dotted id.")],
    from_: Annotated[
        datetime, strawberry.argument(name="from", description="Range start (inclusive).")
    ],
    to: Annotated[datetime, strawberry.argument(description="Range end (exclusive).")],
    interval: Annotated[TimeInterval, strawberry.argument(description="Bucket size.")],
    time_zone: Annotated[
        str, strawberry.argument(description="IANA zone for bucket boundaries.")
    ] = "UTC",
) -> KpiEventSeries:
    require_role(info, Role.ANALYST)
    series = await info.context.services.analytics.series(
        kpi_id, start=from_, end=to, interval=interval, zone=parse_zone(time_zone)
    )
    return KpiEventSeries.from_domain(series)


async def onboarding_funnel(
    info: Info,
    from_: Annotated[
        datetime,
        strawberry.argument(name="from", description="Cohort: step 1 completed at or after."),
    ],
    to: Annotated[datetime, strawberry.argument(description="Cohort: step 1 completed before.")],
    conversion_window_days: Annotated[
        int, strawberry.argument(description="Days after step 1 within which later steps count.")
    ] = 30,
) -> OnboardingFunnel:
    require_role(info, Role.ANALYST)
    steps = await info.context.services.analytics.funnel(
        start=from_, end=to, window_days=conversion_window_days
    )
    flow = info.context.services.flow
    return OnboardingFunnel.from_domain(
        steps,
        start=from_,
        end=to,
        window_days=conversion_window_days,
        titles={s.step: (s.key, s.title) for s in flow.steps},
    )


async def analytics_failures(
    info: Info,
    first: PageSize = None,
    after: PageAfter = None,
    unresolved_only: Annotated[
        bool, strawberry.argument(description="Only failures not yet replayed.")
    ] = True,
) -> AnalyticsFailureConnection:
    require_role(info, Role.ADMIN)
    page = await info.context.services.analytics.failures(
        unresolved_only=unresolved_only, first=first, after=after
    )
    return AnalyticsFailureConnection(
        edges=[
            AnalyticsFailureEdge(cursor=c, node=AnalyticsFailure.from_domain(f))
            for c, f in page.items
        ],
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        unresolved_only=unresolved_only,
    )


async def replay_analytics_failures(
    info: Info,
    limit: Annotated[
        int, strawberry.argument(description="Most failures to replay in this call (1-1000).")
    ] = 100,
) -> ReplayAnalyticsFailuresResult:
    require_role(info, Role.ADMIN)
    report = await info.context.services.replay.replay(limit=limit)
    return ReplayAnalyticsFailuresResult.from_domain(report)
