"""PostgreSQL goes away in the middle of a request, then comes back."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.drivers import Driver
from app.flow_file import DEFAULT_FLOW
from app.metrics import Metrics
from app.processors.onboarding import OnboardingProcessor
from app.services.onboarding import CompleteStepCommand
from tests.conftest import Api, count, new_key
from tests.databases import PostgresDatabases
from tests.flows import valid_metadata

SLOW_COMPLETIONS = [
    "CREATE FUNCTION slow_completion() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN PERFORM pg_sleep(1.5); RETURN NEW; END $$",
    "CREATE TRIGGER slow_completion BEFORE INSERT ON step_completions "
    "FOR EACH ROW EXECUTE FUNCTION slow_completion()",
]


def step_1_command() -> CompleteStepCommand:
    return CompleteStepCommand(1, new_key(), "web", valid_metadata(DEFAULT_FLOW, 1))


@pytest.fixture
def database_url(postgres_databases: PostgresDatabases, postgres_database: str) -> str:
    return postgres_databases.url(postgres_database)


async def test_database_loss_mid_request_is_retryable_and_recovers(
    api: Api,
    http: httpx.AsyncClient,
    engine: AsyncEngine,
    postgres_databases: PostgresDatabases,
    postgres_database: str,
) -> None:
    # given a completion that takes a while inside its transaction
    async with engine.begin() as conn:
        for statement in SLOW_COMPLETIONS:
            await conn.execute(text(statement))
    key = new_key()

    # when the database goes away while that request is in flight
    in_flight = asyncio.create_task(api.complete(1, user="alice", key=key))
    await asyncio.sleep(0.5)
    await postgres_databases.set_connections_allowed(postgres_database, allowed=False)
    result = await in_flight

    # then the client gets a retryable PersistenceError, and the server reports not ready
    assert result["__typename"] == "PersistenceError"
    assert result["retryable"] is True
    ready = await http.get("/readyz")
    assert ready.status_code == 503
    while_down = await api.complete(1, user="alice", key=key)
    assert while_down["__typename"] == "PersistenceError"
    assert while_down["retryable"] is True

    # when the database comes back, the same retry succeeds without a restart
    await postgres_databases.set_connections_allowed(postgres_database, allowed=True)
    assert (await http.get("/readyz")).status_code == 200
    async with engine.begin() as conn:
        await conn.execute(text("DROP TRIGGER slow_completion ON step_completions"))
    retried = await api.complete(1, user="alice", key=key)
    assert retried["__typename"] == "CompleteOnboardingStepSuccess"
    assert retried["replayed"] is False
    assert await count(engine, "step_completions") == 1
    assert await count(engine, "kpi_events") == 1


async def test_a_request_cancelled_mid_transaction_leaves_no_open_transaction(
    driver: Driver, engine: AsyncEngine, postgres_database: str
) -> None:
    # given a completion that is inside its transaction for a while
    async with engine.begin() as conn:
        for statement in SLOW_COMPLETIONS:
            await conn.execute(text(statement))
    processor = OnboardingProcessor(driver, flow=DEFAULT_FLOW, metrics=Metrics())

    # when the request is cancelled there (a client that went away, a server shutting down)
    in_flight = asyncio.create_task(processor.complete_step("bob", step_1_command()))
    await asyncio.sleep(0.5)
    in_flight.cancel()
    with pytest.raises(asyncio.CancelledError):
        await in_flight

    # then nothing was recorded, no pooled connection sits in an open transaction,
    # and the next request on the same pool succeeds
    async def open_transactions() -> int:
        async with engine.connect() as conn:
            found = await conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = :db "
                    "AND state LIKE 'idle in transaction%'"
                ),
                {"db": postgres_database},
            )
            return int(found.scalar_one())

    for _ in range(50):  # PostgreSQL ends the cancelled statement asynchronously
        if await open_transactions() == 0:
            break
        await asyncio.sleep(0.1)
    assert await open_transactions() == 0
    assert await count(engine, "step_completions") == 0
    async with engine.begin() as conn:
        await conn.execute(text("DROP TRIGGER slow_completion ON step_completions"))
    outcome = await processor.complete_step("bob", step_1_command())
    assert outcome.analytics_status.value == "RECORDED"
    assert await count(engine, "step_completions") == 1
