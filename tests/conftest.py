"""Shared fixtures: a real app on a real SQLite file per test, driven over HTTP (httpx)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.auth import TokenCodec
from app.config import Settings
from app.drivers import Driver
from app.kpi import OnboardingFlow
from app.main import create_app
from tests.databases import (
    POSTGRES_URL_ENV,
    PostgresDatabases,
    SqliteDatabases,
    postgres_admin_url,
)
from tests.flows import DEFAULT_FLOW, valid_metadata

TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"

COMPLETE_STEP = """
mutation Complete($input: CompleteOnboardingStepInput!) {
  completeOnboardingStep(input: $input) {
    __typename
    ... on UserError { message code }
    ... on ValidationError { fieldErrors { path message } }
    ... on StepNotEligibleError { step reason }
    ... on IdempotencyConflictError { conflictReason: reason retryable }
    ... on PersistenceError { retryable }
    ... on CompleteOnboardingStepSuccess {
      replayed
      completion { step completedAt }
      progress { completedSteps nextStep totalSteps isComplete }
      analytics { status event { id kpiId occurredAt userId step source metadata } }
    }
  }
}
"""


def new_key() -> str:
    return str(uuid.uuid4())


@pytest.fixture(scope="session")
def sqlite_databases(tmp_path_factory: pytest.TempPathFactory) -> SqliteDatabases:
    return SqliteDatabases(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    admin_url = postgres_admin_url()
    if admin_url is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_ENV}")
    try:
        databases = PostgresDatabases(admin_url)
    except (OSError, asyncpg.PostgresError) as exc:  # set but unreachable: fail loudly
        pytest.fail(f"{POSTGRES_URL_ENV} is set but PostgreSQL is unreachable: {exc!r}")
    yield databases
    databases.close()


@pytest.fixture
def sqlite_url(sqlite_databases: SqliteDatabases, tmp_path: Path) -> str:
    return sqlite_databases.create(tmp_path)


@pytest.fixture
async def postgres_database(postgres_databases: PostgresDatabases) -> AsyncIterator[str]:
    name = await postgres_databases.create()
    yield name
    await postgres_databases.drop(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Every test that uses the app runs once per engine."""
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
        return url
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    return databases.url(request.getfixturevalue("postgres_database"))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        env="development",
        data_dir=tmp_path,
        database_url=database_url,
        jwt_secret=TEST_SECRET,
        log_format="json",
    )


@pytest.fixture
def flow() -> OnboardingFlow:
    return DEFAULT_FLOW


@pytest.fixture
async def app(settings: Settings, flow: OnboardingFlow) -> AsyncIterator[Starlette]:
    application = create_app(settings, flow=flow)
    async with LifespanManager(application):
        yield application


@pytest.fixture
def engine(app: Starlette) -> AsyncEngine:
    engine: AsyncEngine = app.state.engine
    return engine


@pytest.fixture
def driver(app: Starlette) -> Driver:
    driver: Driver = app.state.driver
    return driver


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def tokens(settings: Settings) -> TokenCodec:
    return TokenCodec(settings, TEST_SECRET)


class Api:
    """A GraphQL client the way a frontend uses one: POST JSON, bearer token.

    ``complete`` sends metadata that satisfies the step's tracking plan in ``flow`` unless
    the test passes its own ``metadata``.
    """

    def __init__(
        self, http: httpx.AsyncClient, tokens: TokenCodec, flow: OnboardingFlow = DEFAULT_FLOW
    ) -> None:
        self.http = http
        self.tokens = tokens
        self.flow = flow

    def auth(self, user: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.mint(user)}"} if user else {}

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def complete(
        self,
        step: int,
        *,
        user: str | None = "user-1",
        key: str | None = None,
        headers: dict[str, str] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        fields.setdefault("metadata", valid_metadata(self.flow, step))
        variables = {"input": {"step": step, "idempotencyKey": key or new_key(), **fields}}
        body = await self.execute(
            COMPLETE_STEP, variables, headers=headers if headers is not None else self.auth(user)
        )
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"]["completeOnboardingStep"]
        return result


@pytest.fixture
def api(http: httpx.AsyncClient, tokens: TokenCodec, flow: OnboardingFlow) -> Api:
    return Api(http, tokens, flow)


async def count(engine: AsyncEngine, table: str, where: str = "1=1", **params: Any) -> int:
    async with engine.connect() as conn:
        result = await conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"), params)
        value: int = result.scalar_one()
        return value


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(text(sql), params)
        return [dict(r._mapping) for r in result]


async def settle_failed_sqlite_connects() -> None:
    """Let aiosqlite finish stopping the worker threads of connections that failed to open.

    aiosqlite stops such a thread by queueing a future on the running loop; if the test's
    loop closes first, the thread raises "Event loop is closed" into a later test.
    """
    for _ in range(200):  # at most about two seconds
        if not any("_connection_worker_thread" in t.name for t in threading.enumerate()):
            return
        await asyncio.sleep(0.01)
