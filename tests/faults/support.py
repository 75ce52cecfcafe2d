"""Shared by the fault tests: the server's environment, one completion over HTTP, the rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.auth import TokenCodec
from app.config import Settings
from app.db import normalise_url
from tests.conftest import COMPLETE_STEP, TEST_SECRET, rows
from tests.flows import DEFAULT_FLOW, valid_metadata

SUCCESS = "CompleteOnboardingStepSuccess"


def server_env(database_url: str, data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of ``onboarding-kpi serve``; a restart with the same one is the same
    deployment on the same database."""
    env = {
        "ONBOARDING_KPI_DATABASE_URL": database_url,
        "ONBOARDING_KPI_JWT_SECRET": TEST_SECRET,
        "ONBOARDING_KPI_DATA_DIR": str(data_dir),
        "ONBOARDING_KPI_LOG_LEVEL": "WARNING",
        "ONBOARDING_KPI_LOG_FORMAT": "json",
    }
    env.update({f"ONBOARDING_KPI_{name.upper()}": value for name, value in settings.items()})
    return env


def token_codec() -> TokenCodec:
    return TokenCodec(Settings(jwt_secret=TEST_SECRET), TEST_SECRET)


def sqlite_path(database_url: str) -> Path:
    database = make_url(database_url).database
    assert database, database_url
    return Path(database)


def db_engine(database_url: str) -> AsyncEngine:
    """A plain engine of the test's own, to look at what the server committed."""
    return create_async_engine(normalise_url(database_url))


@dataclass(frozen=True)
class Attempt:
    """One submission: a retry is the same attempt (same key, same input)."""

    user: str
    step: int
    key: str = field(default_factory=lambda: str(uuid.uuid4()))

    def body(self) -> dict[str, Any]:
        # a distinct valid metadata per attempt: its event must carry exactly this one
        metadata = valid_metadata(DEFAULT_FLOW, self.step, variant=int(self.key[:6], 16) + 1)
        fields = {"step": self.step, "source": "web", "metadata": metadata}
        return {
            "query": COMPLETE_STEP,
            "variables": {"input": {"idempotencyKey": self.key, **fields}},
        }


async def post_completion(
    http: httpx.AsyncClient, tokens: TokenCodec, attempt: Attempt
) -> tuple[int, dict[str, Any]]:
    """POST the attempt; the HTTP status and ``completeOnboardingStep`` (transport errors raise)."""
    response = await http.post(
        "/graphql",
        json=attempt.body(),
        headers={"Authorization": f"Bearer {tokens.mint(attempt.user)}"},
    )
    if response.status_code != 200:
        return response.status_code, {"__typename": None, "body": response.text}
    body = response.json()
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["completeOnboardingStep"]
    return response.status_code, result


def event_id(result: dict[str, Any]) -> str | None:
    """The answered event id, in the canonical form ``stored`` uses."""
    event = result["analytics"]["event"]
    return canonical_uuid(event["id"]) if event else None


def canonical_uuid(value: Any) -> str:
    """SQLite stores a UUID as 32 hex digits, PostgreSQL natively; the API answers dashed."""
    return str(uuid.UUID(str(value)))


@dataclass(frozen=True)
class Stored:
    """Everything the write path stores, keyed the way the checks look it up."""

    completions: dict[tuple[str, int], dict[str, Any]]
    events: dict[str, dict[str, Any]]
    failures_by_completion: dict[int, list[dict[str, Any]]]
    keys: dict[tuple[str, str], dict[str, Any]]


async def stored(engine: AsyncEngine) -> Stored:
    completions = await rows(
        engine, "SELECT id, user_id, step, idempotency_key FROM step_completions"
    )
    events = await rows(engine, "SELECT id, completion_id, kpi_id, user_id, step FROM kpi_events")
    failures = await rows(engine, "SELECT id, completion_id FROM analytics_failures")
    keys = await rows(engine, "SELECT user_id, key, response FROM idempotency_keys")
    by_completion: dict[int, list[dict[str, Any]]] = {}
    for failure in failures:
        by_completion.setdefault(failure["completion_id"], []).append(failure)
    return Stored(
        completions={(c["user_id"], c["step"]): c for c in completions},
        events={canonical_uuid(e["id"]): e for e in events},
        failures_by_completion=by_completion,
        keys={(k["user_id"], k["key"]): k for k in keys},
    )
