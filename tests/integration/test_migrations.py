"""Migrations: from empty they build exactly the models' schema, and they round-trip."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import SQLModel

import models  # noqa: F401  (registers the tables)
from app.db import normalise_url
from app.migrate import DatabaseBehindHead, current_revision, downgrade, ensure_at_head, upgrade


@pytest.fixture
async def empty_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The parametrised test database, with every migration undone."""
    engine = create_async_engine(normalise_url(database_url))
    await downgrade(engine, "base")
    yield engine
    await engine.dispose()


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


async def test_upgrade_from_empty_matches_the_models(empty_engine: AsyncEngine) -> None:
    async with empty_engine.connect() as conn:
        assert await conn.run_sync(_tables) == set()
    assert await current_revision(empty_engine) is None

    await upgrade(empty_engine)

    async with empty_engine.connect() as conn:
        assert await conn.run_sync(_diff) == []
    await ensure_at_head(empty_engine)


async def test_downgrade_then_upgrade_round_trips(empty_engine: AsyncEngine) -> None:
    await upgrade(empty_engine)
    await downgrade(empty_engine, "base")
    async with empty_engine.connect() as conn:
        assert await conn.run_sync(_tables) == set()

    await upgrade(empty_engine)

    async with empty_engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_a_database_behind_head_is_refused(empty_engine: AsyncEngine) -> None:
    with pytest.raises(DatabaseBehindHead, match="onboarding-kpi migrate"):
        await ensure_at_head(empty_engine)
