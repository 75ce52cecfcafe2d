"""A real app on a real database, driven from synchronous code so hypothesis can run examples.

Hypothesis cannot wrap an async test (``@given`` would call the coroutine function once per
example from inside pytest-asyncio's running loop). So the harness owns its event loop
(``asyncio.Runner``): the app's lifespan runs in a background task of that loop for the whole
test, and every example is one ``run(...)`` on it. The test function itself is synchronous
and defines its ``@given`` function inside, so hypothesis never sees pytest's
function-scoped fixtures (no health-check suppression needed): the app and database are
shared by all examples of a test on purpose, and every property is stated per request
(before/after snapshots), not per fresh database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.auth import TokenCodec
from app.config import Settings
from app.flow_file import DEFAULT_FLOW
from app.kpi import OnboardingFlow
from app.main import create_app

T = TypeVar("T")

#: The tables a request can write to; a rejected request must leave every count unchanged.
TABLES = (
    "step_completions",
    "kpi_events",
    "analytics_failures",
    "idempotency_keys",
    "onboarding_progress",
    "kpi_event_rollups",
)
_SNAPSHOT = text(
    "SELECT "
    + ", ".join(f"(SELECT count(*) FROM {table}) AS {table}" for table in TABLES)
    + ", (SELECT count(*) FROM analytics_failures WHERE resolved_at IS NOT NULL)"
    " AS resolved_failures"
    + ", (SELECT coalesce(sum(events), 0) FROM kpi_event_rollups) AS rolled_up_events"
)


def fuzz_settings(settings: Settings) -> Settings:
    """The shared test settings, quieter, and without the per-user rate limit.

    The fuzz tests send hundreds of submissions for a handful of users within seconds; the
    rate limit would turn most of them into ``RateLimitedError`` and hide the paths under
    test (it has its own tests).
    """
    return settings.model_copy(update={"log_level": "WARNING", "rate_limit_per_minute": 0})


class Harness:
    def __init__(
        self, settings: Settings, tokens: TokenCodec, *, flow: OnboardingFlow = DEFAULT_FLOW
    ) -> None:
        self.settings = settings
        self.tokens = tokens
        self.flow = flow
        self._runner = asyncio.Runner()
        self._stop: asyncio.Event | None = None
        self._lifespan: asyncio.Task[None] | None = None
        self.app: Starlette | None = None
        self.client: httpx.AsyncClient | None = None

    def __enter__(self) -> Harness:
        self._runner.__enter__()
        try:
            self.run(self._start())
        except BaseException:
            self._runner.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.run(self._close())
        finally:
            self._runner.close()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coroutine)

    @property
    def engine(self) -> AsyncEngine:
        assert self.app is not None
        engine: AsyncEngine = self.app.state.engine
        return engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def _start(self) -> None:
        app = create_app(self.settings, flow=self.flow)
        started, stop = asyncio.Event(), asyncio.Event()

        async def serve() -> None:
            async with LifespanManager(app):
                started.set()
                await stop.wait()

        lifespan = asyncio.create_task(serve())
        ready = asyncio.create_task(started.wait())
        await asyncio.wait({lifespan, ready}, return_when=asyncio.FIRST_COMPLETED)
        if lifespan.done():  # the startup failed: raise its error
            ready.cancel()
            lifespan.result()
        self.app, self._stop, self._lifespan = app, stop, lifespan
        # A crash answers 500, as over a socket, rather than raising into the test.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    async def _close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
        if self._stop is not None and self._lifespan is not None:
            self._stop.set()
            await self._lifespan

    def request(self, method: str, url: str = "/graphql", **kwargs: Any) -> httpx.Response:
        assert self.client is not None
        return self.run(self.client.request(method, url, **kwargs))

    def snapshot(self) -> dict[str, int]:
        return self.run(snapshot(self.engine))


async def snapshot(engine: AsyncEngine) -> dict[str, int]:
    """Row counts of every table a request can write (one round trip)."""
    async with engine.connect() as conn:
        row = (await conn.execute(_SNAPSHOT)).one()
    return {key: int(value) for key, value in row._mapping.items()}
