"""The typed per-request GraphQL context."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from strawberry.dataloader import DataLoader
from strawberry.types import Info as _Info

from app.auth import Principal, TokenCodec
from app.errors import AuthenticationFailed
from app.kpi import OnboardingFlow
from app.metrics import Metrics
from app.processors.onboarding import OnboardingProcessor
from app.processors.replay import ReplayProcessor
from app.queries.analytics import AnalyticsQueries
from app.queries.onboarding import OnboardingQueries
from app.ratelimit import RateLimiter
from app.services.onboarding import Progress


@dataclass(slots=True)
class Services:
    """Long-lived collaborators, built once by the app factory."""

    processor: OnboardingProcessor
    replay: ReplayProcessor
    queries: OnboardingQueries
    analytics: AnalyticsQueries
    tokens: TokenCodec
    flow: OnboardingFlow
    rate_limiter: RateLimiter
    metrics: Metrics


class Loaders:
    """Per-request DataLoaders: nested fields batch their lookups, never one query per row."""

    def __init__(self, services: Services) -> None:
        self.progress: DataLoader[str, Progress] = DataLoader(
            load_fn=services.analytics.progress_of_users
        )


@dataclass(slots=True)
class Context:
    request: Request
    response: Response
    services: Services
    loaders: Loaders
    _principal: Principal | AuthenticationFailed | None = field(default=None)

    def authenticate(self) -> Principal:
        """The signed-in user, or ``AuthenticationFailed``; checked once per request."""
        if self._principal is None:
            try:
                self._principal = self.services.tokens.authenticate(
                    self.request.headers.get("authorization")
                )
            except AuthenticationFailed as exc:
                self._principal = exc
        if isinstance(self._principal, AuthenticationFailed):
            raise self._principal
        return self._principal


Info = _Info[Context, None]
