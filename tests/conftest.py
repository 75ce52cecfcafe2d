"""Shared fixtures: a real app on a real SQLite file per test, driven over HTTP (httpx)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from app.auth import TokenCodec
from app.config import Settings
from app.kpi import DEFAULT_FLOW, OnboardingFlow
from app.main import create_app

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


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        env="development",
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'test.sqlite3'}",
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
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def tokens(settings: Settings) -> TokenCodec:
    return TokenCodec(settings, TEST_SECRET)


class Api:
    """A GraphQL client the way a frontend uses one: POST JSON, bearer token."""

    def __init__(self, http: httpx.AsyncClient, tokens: TokenCodec) -> None:
        self.http = http
        self.tokens = tokens

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
        variables = {"input": {"step": step, "idempotencyKey": key or new_key(), **fields}}
        body = await self.execute(
            COMPLETE_STEP, variables, headers=headers if headers is not None else self.auth(user)
        )
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"]["completeOnboardingStep"]
        return result


@pytest.fixture
def api(http: httpx.AsyncClient, tokens: TokenCodec) -> Api:
    return Api(http, tokens)


CountRows = Callable[[str], Any]


async def count(engine: AsyncEngine, table: str, where: str = "1=1", **params: Any) -> int:
    async with engine.connect() as conn:
        result = await conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"), params)  # noqa: S608
        value: int = result.scalar_one()
        return value


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(text(sql), params)
        return [dict(r._mapping) for r in result]
