"""Engine construction for SQLite (embedded default) and PostgreSQL.

Nothing here connects: ``create_engine`` only builds the pool; the first checkout
connects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from app.config import Settings, sqlite_synchronous_pragma

#: Execution option that makes a SQLite transaction start with ``BEGIN IMMEDIATE``
#: (take the write lock up front, so two writers never deadlock upgrading a read lock).
SQLITE_WRITE = "onboarding_kpi_sqlite_write"


def normalise_url(raw: str) -> URL:
    """Accept plain ``postgresql://`` and ``sqlite://`` URLs and pick the async driver."""
    url = make_url(raw)
    if url.drivername in {"postgresql", "postgres", "postgresql+psycopg2"}:
        url = url.set(drivername="postgresql+asyncpg")
    elif url.drivername == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    return url


def create_engine(settings: Settings) -> AsyncEngine:
    url = normalise_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite":
        return _create_sqlite_engine(url, settings)
    engine = create_async_engine(
        url,
        hide_parameters=True,  # errors and logs never carry users' values
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=True,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _keep_commits_durable(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # as the write path's pool (app/drivers.py): a replay's "resolved" is on disk too
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT current_setting('synchronous_commit')")
        if cursor.fetchone()[0] == "off":
            cursor.execute("SET synchronous_commit = on")
        cursor.close()

    return engine


def _create_sqlite_engine(url: URL, settings: Settings) -> AsyncEngine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url,
        hide_parameters=True,  # errors and logs never carry users' values
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        connect_args={"timeout": settings.db_busy_timeout_ms / 1000},
    )
    busy_timeout_ms = settings.db_busy_timeout_ms
    synchronous = sqlite_synchronous_pragma(settings.sqlite_synchronous)

    # The documented pysqlite workaround: stop the driver from emitting BEGIN itself
    # (it would not for SAVEPOINT and would commit behind our back), and emit our own.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            synchronous,
            "PRAGMA foreign_keys=ON",
            f"PRAGMA busy_timeout={int(busy_timeout_ms)}",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(SQLITE_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
