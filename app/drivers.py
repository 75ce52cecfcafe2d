"""Run the hot path's transaction scripts (``app.dao.sql``) on the plain database driver.

- SQLite: one writer thread owns one ``sqlite3`` connection and runs each transaction
  start to finish in a single hop from the event loop (``BEGIN IMMEDIATE``, so writers
  queue here instead of spinning in SQLite's busy handler); a reader thread with its
  own connection serves reads, which WAL lets run beside the writer.
- PostgreSQL: an asyncpg pool of its own (no pre-ping round trips; a broken connection
  is dropped by the pool when it is released).

SQLAlchemy's engine still serves everything else (analytics, migrations, readiness).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import URL

from app.dao.sql import Fetch, Query, Script, StatementFailed, drive, drive_async, fetch

T = TypeVar("T")


class Driver(Protocol):
    async def transaction(self, script: Script[T]) -> T:
        """Run ``script`` in one transaction: committed if it returns, rolled back if it raises."""
        ...

    async def read(self, script: Script[T]) -> T:
        """Run a read-only ``script`` (no transaction bookkeeping)."""
        ...

    async def close(self) -> None: ...


def create_driver(url: URL, *, busy_timeout_ms: int, pool_size: int) -> Driver:
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("SQLite needs a database file (the hot path opens its own)")
        return SqliteDriver(url.database, busy_timeout_ms=busy_timeout_ms)
    return PostgresDriver(url, pool_size=pool_size)


# --- SQLite ----------------------------------------------------------------------------------


def _sqlite_error(exc: sqlite3.Error) -> StatementFailed:
    return StatementFailed(
        exc,
        permanent=isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError),
        connection_lost=False,
    )


class _SqliteThread:
    """One thread, one connection: sqlite3 objects never cross threads."""

    def __init__(self, path: str, *, name: str, busy_timeout_ms: int) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._local = threading.local()

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: the driver never opens transactions behind our back.
            conn = sqlite3.connect(
                self._path,
                isolation_level=None,
                timeout=self._busy_timeout_ms / 1000,
                cached_statements=256,
            )
            for pragma in (
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=NORMAL",
                "PRAGMA foreign_keys=ON",
                f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}",
            ):
                conn.execute(pragma)
            self._local.conn = conn
        return conn

    def execute(self, query: Query) -> Any:
        try:
            cursor = self.connection().execute(query.statement.sql, query.sqlite_params())
            return fetch(query.fetch, cursor)
        except sqlite3.Error as exc:
            raise _sqlite_error(exc) from exc

    async def run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close_connection(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    async def close(self) -> None:
        await self.run(self.close_connection)
        self._executor.shutdown()


class SqliteDriver:
    def __init__(self, path: str, *, busy_timeout_ms: int) -> None:
        self._writer = _SqliteThread(path, name="sqlite-writer", busy_timeout_ms=busy_timeout_ms)
        self._reader = _SqliteThread(path, name="sqlite-reader", busy_timeout_ms=busy_timeout_ms)

    async def transaction(self, script: Script[T]) -> T:
        result: T = await self._writer.run(self._transaction, script)
        return result

    def _transaction(self, script: Script[T]) -> T:
        conn = self._writer.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            result = drive(script, self._writer.execute)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback(conn)
            raise _sqlite_error(exc) from exc
        except BaseException:
            self._rollback(conn)
            raise
        return result

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    async def read(self, script: Script[T]) -> T:
        result: T = await self._reader.run(drive, script, self._reader.execute)
        return result

    async def close(self) -> None:
        await self._writer.close()
        await self._reader.close()


# --- PostgreSQL ------------------------------------------------------------------------------

_CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    ConnectionError,
    OSError,
)


def _postgres_error(exc: BaseException) -> StatementFailed:
    return StatementFailed(
        exc,
        permanent=isinstance(exc, asyncpg.IntegrityConstraintViolationError | asyncpg.DataError),
        connection_lost=isinstance(exc, _CONNECTION_LOST),
    )


class PostgresDriver:
    def __init__(self, url: URL, *, pool_size: int) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    try:
                        self._pool = await asyncpg.create_pool(
                            self._dsn, min_size=0, max_size=self._pool_size
                        )
                    except (asyncpg.PostgresError, *_CONNECTION_LOST) as exc:
                        raise _postgres_error(exc) from exc
        return self._pool

    async def transaction(self, script: Script[T]) -> T:
        pool = await self._get_pool()
        try:
            async with pool.acquire() as conn:
                try:
                    await conn.execute("BEGIN")
                    result = await drive_async(script, _Executor(conn))
                    await conn.execute("COMMIT")
                except BaseException:
                    if not conn.is_closed() and conn.is_in_transaction():
                        # On failure the pool's reset on release rolls back, or drops
                        # the connection: the original error is the one to report.
                        with contextlib.suppress(asyncpg.PostgresError, *_CONNECTION_LOST):
                            await conn.execute("ROLLBACK")
                    raise
        except (asyncpg.PostgresError, *_CONNECTION_LOST) as exc:
            raise _postgres_error(exc) from exc
        return result

    async def read(self, script: Script[T]) -> T:
        pool = await self._get_pool()
        try:
            async with pool.acquire() as conn:
                result: T = await drive_async(script, _Executor(conn))
        except (asyncpg.PostgresError, *_CONNECTION_LOST) as exc:
            raise _postgres_error(exc) from exc
        return result

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


class _Executor:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def __call__(self, query: Query) -> Any:
        sql, args = query.statement.numbered, query.numbered_params()
        try:
            if query.fetch is Fetch.NOTHING:
                await self._conn.execute(sql, *args)
                return None
            rows = await self._conn.fetch(sql, *args)
        except (asyncpg.PostgresError, *_CONNECTION_LOST) as exc:
            raise _postgres_error(exc) from exc
        if query.fetch is Fetch.ONE:
            return tuple(rows[0]) if rows else None
        return [tuple(row) for row in rows]
