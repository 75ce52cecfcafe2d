"""The SQLite driver runs transactions on the event loop: waiting for another process's
write lock must not stall other requests, and WAL checkpoints happen off the loop."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.drivers import SqliteDriver
from app.flow_file import DEFAULT_FLOW
from app.metrics import Metrics
from app.processors.onboarding import OnboardingProcessor
from app.services.onboarding import CompleteStepCommand
from tests.conftest import TEST_SECRET, Api, count, new_key


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path, database_url=sqlite_url, jwt_secret=TEST_SECRET, db_busy_timeout_ms=5000
    )


def _database_file(tmp_path: Path) -> Path:
    return tmp_path / "test.sqlite3"


async def test_a_write_waits_for_another_writer_while_other_requests_are_served(
    api: Api, engine: AsyncEngine, tmp_path: Path
) -> None:
    # given another process holding the write lock
    blocker = sqlite3.connect(_database_file(tmp_path), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        completion = asyncio.create_task(api.complete(1, user="waiting", key=new_key()))
        await asyncio.sleep(0.2)
        # when other users read while that completion waits for the lock
        progress = await api.execute(
            "{ myOnboardingProgress { completedSteps } }",
            headers={"Authorization": f"Bearer {api.tokens.mint('reader')}"},
        )
        assert progress == {"data": {"myOnboardingProgress": {"completedSteps": []}}}
        assert not completion.done()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    # then, once the lock is released, the waiting completion is recorded
    result = await asyncio.wait_for(completion, timeout=5)
    assert result["__typename"] == "CompleteOnboardingStepSuccess"
    assert await count(engine, "step_completions", "user_id = 'waiting'") == 1
    assert await count(engine, "kpi_events", "user_id = 'waiting'") == 1


async def test_wal_is_checkpointed_into_the_database_file_in_the_background(
    api: Api, driver: SqliteDriver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SqliteDriver, "CHECKPOINT_EVERY", 3)
    database = _database_file(tmp_path)

    def rows_in_the_database_file() -> int:
        # immutable=1 reads the main file only, ignoring the WAL: what a checkpoint copied
        conn = sqlite3.connect(f"file:{database}?immutable=1", uri=True)
        try:
            (rows,) = conn.execute("SELECT count(*) FROM step_completions").fetchone()
        finally:
            conn.close()
        return int(rows)

    for user in ("a", "b"):
        await api.complete(1, user=user, key=new_key())
    assert rows_in_the_database_file() == 0  # still only in the WAL

    await api.complete(1, user="c", key=new_key())  # the third commit starts a checkpoint
    checkpoint = driver._checkpoint
    assert checkpoint is not None
    await asyncio.wait_for(checkpoint, timeout=5)
    assert rows_in_the_database_file() == 3


async def test_the_wal_starts_over_instead_of_growing_with_every_completion(
    driver: SqliteDriver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under load the checkpoint thread races the writer and never copies every frame
    # back, and SQLite restarts the WAL only when it has: without the driver's top-up
    # on the loop the WAL grew ~80 KB per completion, forever.
    monkeypatch.setattr(SqliteDriver, "CHECKPOINT_EVERY", 20)
    processor = OnboardingProcessor(driver, flow=DEFAULT_FLOW, metrics=Metrics())
    wal = _database_file(tmp_path).with_name("test.sqlite3-wal")
    sizes = []
    for burst in range(12):  # bursts of commits, as under load
        for i in range(47):  # (not a multiple of 20: every checkpoint starts mid-burst)
            await processor.complete_step(
                f"w{burst}-{i}", CompleteStepCommand(1, new_key(), "web", {})
            )
            await asyncio.sleep(0)  # other requests' turn: a checkpoint can start
        await asyncio.sleep(0.005)  # a quiet moment: the checkpoint finishes
        sizes.append(wal.stat().st_size)
    # never starting over, 600 completions would take ~30 MB; starting over, the WAL
    # holds a few bursts at most
    assert max(sizes) < 8_000_000, sizes
