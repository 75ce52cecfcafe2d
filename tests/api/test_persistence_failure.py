"""The database cannot take the write: a retryable PersistenceError, nothing half-recorded."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from tests.conftest import TEST_SECRET, Api, count, new_key


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    """SQLite only: another process holding the file's write lock is SQLite's own fault."""
    return Settings(
        data_dir=tmp_path, database_url=sqlite_url, jwt_secret=TEST_SECRET, db_busy_timeout_ms=200
    )


async def test_locked_database_gives_retryable_persistence_error(
    api: Api, engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    key = new_key()
    # given another process holding the write lock
    blocker = sqlite3.connect(tmp_path / "test.sqlite3", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        result = await api.complete(1, key=key)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    assert result["__typename"] == "PersistenceError"
    assert result["code"] == "PERSISTENCE_FAILED"
    assert result["retryable"] is True
    assert await count(engine, "step_completions") == 0
    assert await count(engine, "idempotency_keys") == 0

    # when the lock is gone, the same retry succeeds without a restart
    retried = await api.complete(1, key=key)
    assert retried["__typename"] == "CompleteOnboardingStepSuccess"
    assert retried["replayed"] is False
    assert await count(engine, "kpi_events") == 1
