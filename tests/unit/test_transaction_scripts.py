"""Transaction scripts (app.dao.sql): how failures travel between driver and script."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from app.dao.sql import Query, Script, Statement, StatementFailed, drive, savepoint
from app.drivers import SqliteDriver, _is_busy

WRITE = Statement.of("INSERT INTO t (v) VALUES (:v)")


def failed(*, lost: bool = False) -> StatementFailed:
    return StatementFailed(RuntimeError("refused"), permanent=False, transaction_lost=lost)


def write(value: str) -> Script[None]:
    yield WRITE(v=value)


def record_failure_and_go_on() -> Script[str]:
    try:
        yield from savepoint(write("event"))
    except StatementFailed:
        yield WRITE(v="failure record")
        return "recorded the failure"
    return "wrote the event"


def test_a_failure_inside_a_savepoint_is_undone_and_reaches_the_script() -> None:
    ran: list[str] = []
    outcomes = iter([None, failed(), None, None, None])  # the event write fails

    def execute(query: Query) -> Any:
        ran.append(query.statement.sql)
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    assert drive(record_failure_and_go_on(), execute) == "recorded the failure"
    assert ran == [
        "SAVEPOINT hot_path",
        WRITE.sql,
        "ROLLBACK TO SAVEPOINT hot_path",
        "RELEASE SAVEPOINT hot_path",
        WRITE.sql,
    ]


def test_a_lost_transaction_is_not_rolled_back_to_the_savepoint() -> None:
    ran: list[str] = []

    def execute(query: Query) -> Any:
        ran.append(query.statement.sql)
        if query.statement is WRITE:
            raise failed(lost=True)

    def script() -> Script[None]:
        yield from savepoint(write("event"))

    with pytest.raises(StatementFailed) as raised:
        drive(script(), execute)
    assert raised.value.transaction_lost
    assert ran == ["SAVEPOINT hot_path", WRITE.sql]


def test_when_the_rollback_to_the_savepoint_fails_the_first_error_is_reported() -> None:
    first = failed()

    def execute(query: Query) -> Any:
        if query.statement is WRITE:
            raise first
        if query.statement.sql.startswith("ROLLBACK TO"):
            raise failed()

    def script() -> Script[None]:
        yield from savepoint(write("event"))

    with pytest.raises(StatementFailed) as raised:
        drive(script(), execute)
    assert raised.value.orig is first.orig
    assert raised.value.transaction_lost  # nothing more may run in it


def test_a_script_interrupted_by_another_error_runs_its_cleanup() -> None:
    cleaned: list[bool] = []

    def script() -> Script[None]:
        try:
            yield WRITE(v="x")
        finally:
            cleaned.append(True)

    def execute(query: Query) -> Any:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        drive(script(), execute)
    assert cleaned == [True]


def test_extended_busy_codes_count_as_busy() -> None:
    recovering = sqlite3.OperationalError("database is locked")
    recovering.sqlite_errorcode = 261  # type: ignore[attr-defined]  # SQLITE_BUSY_RECOVERY
    other = sqlite3.OperationalError("disk I/O error")
    other.sqlite_errorcode = 10  # type: ignore[attr-defined]
    assert _is_busy(recovering)
    assert not _is_busy(other)


# --- on a real SQLite file ----------------------------------------------------------------


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "script.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (v)")
    conn.commit()
    conn.close()
    return path


def rows(path: Path) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return [v for (v,) in conn.execute("SELECT v FROM t ORDER BY rowid")]
    finally:
        conn.close()


async def test_a_value_the_driver_cannot_bind_is_undone_like_a_refused_write(
    database: Path,
) -> None:
    driver = SqliteDriver(str(database), busy_timeout_ms=1000)
    seen: list[StatementFailed] = []

    def script() -> Script[str]:
        yield WRITE(v="completion")
        try:
            yield from savepoint(write(2**70))  # type: ignore[arg-type]  # beyond SQLite's int
        except StatementFailed as exc:
            seen.append(exc)
            yield WRITE(v="failure record")
            return "kept going"
        return "no error?"

    try:
        assert await driver.transaction(script()) == "kept going"
    finally:
        await driver.close()
    assert rows(database) == ["completion", "failure record"]
    [failure] = seen
    assert failure.permanent
    assert not failure.transaction_lost


async def test_a_full_disk_loses_the_transaction_and_the_driver_recovers(database: Path) -> None:
    driver = SqliteDriver(str(database), busy_timeout_ms=1000)
    conn = sqlite3.connect(database)
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.close()

    def fill_the_disk() -> Script[None]:
        yield Statement.of(f"PRAGMA max_page_count = {pages + 2}")()
        yield WRITE(v="completion")
        yield from savepoint(write("x" * 100_000))  # needs far more than 2 pages

    try:
        with pytest.raises(StatementFailed) as raised:
            await driver.transaction(fill_the_disk())
        assert raised.value.transaction_lost  # SQLite rolled everything back itself
        assert "full" in str(raised.value)
        assert rows(database) == []

        # the next transaction on the same driver starts clean
        await driver.transaction(write("after"))
    finally:
        await driver.close()
    assert rows(database) == ["after"]
