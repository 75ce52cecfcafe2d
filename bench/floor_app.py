"""The benchmark's GraphQL floor: the same GraphQL exchange with no database at all.

What strawberry-graphql, under the same uvicorn settings, costs for the bench's requests
when the resolvers do no work beyond checking the bearer token (as the app and the
reference both do): the app's schema shape for ``completeOnboardingStep`` (input object,
result union, nested progress and analytics objects) and ``myOnboardingProgress``, with
the app's parser and validation caches. The answers are made up on the spot (a new
event id and time each). No app code is imported; the token check is the reference's.

The app cannot be faster than this floor on the same machine: its figures next to the
floor's show how much of the app's cost is the GraphQL stack the project is built on,
and how much is its own work (the transaction, the rules, the metrics). Run by
``bench/run.py`` (workloads ``complete`` and ``read`` only: it keeps no idempotency keys,
so it cannot replay):

    uvicorn floor_app:create_app --factory --app-dir bench --workers N

Configured by ``BENCH_REF_JWT_SECRET``, the HS256 secret the bench tokens are signed with.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated

import strawberry
from reference_app import authenticate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.scalars import JSON
from strawberry.types import Info


@strawberry.enum
class AnalyticsStatus(Enum):
    RECORDED = "RECORDED"
    FAILED = "FAILED"
    NOT_APPLICABLE = "NOT_APPLICABLE"


@strawberry.type
class OnboardingProgress:
    completed_steps: list[int]
    next_step: int | None
    total_steps: int
    is_complete: bool


@strawberry.type
class KpiEvent:
    id: strawberry.ID
    kpi_id: str
    occurred_at: datetime


@strawberry.type
class AnalyticsResult:
    status: AnalyticsStatus
    event: KpiEvent | None


@strawberry.type
class CompleteOnboardingStepSuccess:
    progress: OnboardingProgress
    analytics: AnalyticsResult
    replayed: bool


@strawberry.type
class UserError:
    code: str
    message: str


@strawberry.input
class CompleteOnboardingStepInput:
    step: int
    idempotency_key: str
    source: str | None = None
    metadata: JSON | None = None


CompleteOnboardingStepResult = Annotated[
    CompleteOnboardingStepSuccess | UserError, strawberry.union("CompleteOnboardingStepResult")
]


def signed_in(info: Info) -> str:
    """The reference's own token check (a bad token fails the request)."""
    request: Request = info.context["request"]
    return authenticate(os.environ["BENCH_REF_JWT_SECRET"], request.headers.get("authorization"))


@strawberry.type
class Query:
    @strawberry.field
    async def my_onboarding_progress(self, info: Info) -> OnboardingProgress:
        signed_in(info)
        return OnboardingProgress(
            completed_steps=[1], next_step=2, total_steps=4, is_complete=False
        )


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def complete_onboarding_step(
        self, info: Info, input: CompleteOnboardingStepInput
    ) -> CompleteOnboardingStepResult:
        signed_in(info)
        event = KpiEvent(
            id=strawberry.ID(str(uuid.uuid4())),
            kpi_id="onboarding.step_1_completed",
            occurred_at=datetime.now(UTC),
        )
        return CompleteOnboardingStepSuccess(
            progress=OnboardingProgress(
                completed_steps=[input.step],
                next_step=input.step + 1,
                total_steps=4,
                is_complete=False,
            ),
            analytics=AnalyticsResult(status=AnalyticsStatus.RECORDED, event=event),
            replayed=False,
        )


def create_app() -> Starlette:
    schema = strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=[lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256)],
    )

    async def readyz(_: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/graphql", GraphQL(schema)), Route("/readyz", readyz)])
