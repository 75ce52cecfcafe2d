"""SQLite's write lock held by another process for longer than the server's busy timeout.

Against the real server process (``DB_BUSY_TIMEOUT_MS=200``): while a second connection holds
``BEGIN IMMEDIATE``, completions (a new user's step 1; step 3 of a user with steps 1-2 done)
and their retries are answered with HTTP 200 and a ``PersistenceError`` with
``retryable: true`` (never a 5xx), and nothing of them is recorded (no progress row or change,
no key, no completion, no event, no failure record); reads keep working meanwhile. Once the
lock is released, the same retries (same key, same input) succeed on the same process,
without a restart, and a further retry replays each.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx

from app.flow_file import DEFAULT_FLOW
from tests.faults.support import (
    SUCCESS,
    Attempt,
    db_engine,
    event_id,
    post_completion,
    server_env,
    sqlite_path,
    stored,
    token_codec,
)
from tests.invariants import assert_core_invariants
from tests.server import running_server

PROGRESS = "query { myOnboardingProgress { completedSteps nextStep } }"


def snapshot(conn: sqlite3.Connection) -> dict[str, list[Any]]:
    """Every row the write path touches (the lock holder reads the committed state)."""
    tables = (
        "onboarding_progress",
        "idempotency_keys",
        "step_completions",
        "kpi_events",
        "analytics_failures",
        "kpi_event_rollups",
    )
    return {t: sorted(map(tuple, conn.execute(f"SELECT * FROM {t}").fetchall())) for t in tables}


async def test_locked_sqlite_gives_retryable_persistence_error_then_recovers(
    sqlite_url: str, tmp_path: Path
) -> None:
    tokens = token_codec()
    env = server_env(sqlite_url, tmp_path, db_busy_timeout_ms="200")
    blocker = sqlite3.connect(sqlite_path(sqlite_url), isolation_level=None)
    new_user = Attempt("locked-new", 1)
    returning = Attempt("locked-returning", 3)
    try:
        with running_server(env=env, log_dir=tmp_path) as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
                for step in (1, 2):
                    status, result = await post_completion(
                        http, tokens, Attempt(returning.user, step)
                    )
                    assert status == 200 and result["__typename"] == SUCCESS, result
                before = snapshot(blocker)

                # given another process holding the write lock longer than the busy timeout
                blocker.execute("BEGIN IMMEDIATE")
                try:
                    # when completions arrive, and are retried, while the lock is held
                    answers = [
                        await post_completion(http, tokens, attempt)
                        for attempt in (new_user, returning, new_user, returning)
                    ]
                    # (reads need no write lock and keep working)
                    progress = await http.post(
                        "/graphql",
                        json={"query": PROGRESS},
                        headers={"Authorization": f"Bearer {tokens.mint(returning.user)}"},
                    )
                    while_locked = snapshot(blocker)
                finally:
                    blocker.execute("ROLLBACK")

                # then each gets HTTP 200 and a retryable PersistenceError; nothing is recorded
                for status, result in answers:
                    assert status == 200, result
                    assert result["__typename"] == "PersistenceError", result
                    assert result["code"] == "PERSISTENCE_FAILED"
                    assert result["retryable"] is True
                assert while_locked == before
                assert progress.status_code == 200, progress.text
                assert progress.json()["data"]["myOnboardingProgress"] == {
                    "completedSteps": [1, 2],
                    "nextStep": 3,
                }

                # when the lock is gone, the same retries succeed on the same process
                recorded = {}
                for attempt in (new_user, returning):
                    status, result = await post_completion(http, tokens, attempt)
                    assert status == 200 and result["__typename"] == SUCCESS, result
                    assert result["replayed"] is False
                    assert result["analytics"]["status"] == "RECORDED"
                    status, again = await post_completion(http, tokens, attempt)
                    assert status == 200 and again["__typename"] == SUCCESS, again
                    assert again["replayed"] is True
                    assert event_id(again) == event_id(result)
                    recorded[attempt] = result
                assert server.process.poll() is None  # never restarted
    finally:
        blocker.close()

    engine = db_engine(sqlite_url)
    try:
        rows = await stored(engine)
        for attempt, result in recorded.items():
            completion = rows.completions[(attempt.user, attempt.step)]
            assert completion["idempotency_key"] == attempt.key
            event = rows.events[event_id(result) or ""]
            assert event["completion_id"] == completion["id"]
            assert event["kpi_id"] == DEFAULT_FLOW.steps[attempt.step - 1].kpi_id
        assert len(rows.completions) == 4
        await assert_core_invariants(engine, DEFAULT_FLOW)
    finally:
        await engine.dispose()
