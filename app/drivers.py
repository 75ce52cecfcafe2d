"""Run the hot path's transaction scripts (``app.dao.sql``) on the plain database driver.

- SQLite: one ``sqlite3`` connection used on the event loop itself, each transaction
  run start to finish without a thread hop (see ``SqliteDriver``).
- PostgreSQL: an asyncpg pool of its own (no pre-ping round trips; a broken connection
  is dropped by the pool when it is released).

SQLAlchemy's engine still serves everything else (analytics, migrations, readiness).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from typing import Any, Protocol, TypeVar

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import URL

from app.dao.sql import Fetch, Query, Script, StatementFailed, drive, drive_async, fetch
from app.logging import get_logger

T = TypeVar("T")
log = get_logger(__name__)


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


def _is_busy(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY


class SqliteDriver:
    """One ``sqlite3`` connection, used directly on the event loop.

    A transaction runs start to finish without yielding to the loop, so it never
    interleaves with another: the process needs no lock and no thread, and SQLite's
    work (a few point writes, tens of microseconds) costs no thread hop and no GIL
    hand-over. The one wait that can be long, another process holding the write lock,
    is taken asynchronously: ``BEGIN IMMEDIATE`` is tried without SQLite's blocking
    busy handler and retried with backoff until ``busy_timeout_ms``.

    WAL checkpoints (copying the log back into the database file, with an fsync) are
    taken off the loop too: SQLite would run one inside every ~1000-page COMMIT,
    stalling every request for up to 50 ms. The connection's auto-checkpoint is off
    and a PASSIVE checkpoint (it never blocks writers) runs in a thread every
    ``CHECKPOINT_EVERY`` commits.
    """

    CHECKPOINT_EVERY = 200  # commits; ~6 pages each, near SQLite's 1000-page default

    def __init__(self, path: str, *, busy_timeout_ms: int) -> None:
        self._path = path
        self._busy_timeout = busy_timeout_ms / 1000
        self._conn: sqlite3.Connection | None = None
        self._commits = 0
        self._checkpoint: asyncio.Future[None] | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # isolation_level=None: the driver never opens transactions behind our back.
            conn = sqlite3.connect(
                self._path, isolation_level=None, timeout=0, cached_statements=256
            )
            try:
                for pragma in (
                    "PRAGMA journal_mode=WAL",
                    "PRAGMA synchronous=NORMAL",
                    "PRAGMA foreign_keys=ON",
                    "PRAGMA wal_autocheckpoint=0",
                ):
                    conn.execute(pragma)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _execute(self, query: Query) -> Any:
        assert self._conn is not None
        try:
            return fetch(
                query.fetch, self._conn.execute(query.statement.sql, query.sqlite_params())
            )
        except sqlite3.Error as exc:
            raise _sqlite_error(exc) from exc

    async def _begin(self) -> sqlite3.Connection:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._busy_timeout
        delay = 0.001
        while True:
            try:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE")
                return conn
            except sqlite3.Error as exc:
                if not _is_busy(exc) or loop.time() + delay > deadline:
                    raise _sqlite_error(exc) from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def transaction(self, script: Script[T]) -> T:
        conn = await self._begin()
        # From here to COMMIT nothing awaits: no other request can run in between.
        try:
            result = drive(script, self._execute)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback(conn)
            raise _sqlite_error(exc) from exc
        except BaseException:
            self._rollback(conn)
            raise
        self._commits += 1
        if self._commits % self.CHECKPOINT_EVERY == 0:
            self._start_checkpoint()
        return result

    def _start_checkpoint(self) -> None:
        if self._checkpoint is None or self._checkpoint.done():
            self._checkpoint = asyncio.ensure_future(asyncio.to_thread(self._checkpoint_now))
            self._checkpoint.add_done_callback(_log_checkpoint_failure)

    def _checkpoint_now(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=self._busy_timeout)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    async def read(self, script: Script[T]) -> T:
        # WAL readers never wait for the writer; each statement is its own snapshot.
        try:
            self._connection()
        except sqlite3.Error as exc:
            raise _sqlite_error(exc) from exc
        return drive(script, self._execute)

    async def close(self) -> None:
        if self._checkpoint is not None:
            await asyncio.wait([self._checkpoint])
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _log_checkpoint_failure(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and (exc := done.exception()) is not None:
        log.warning("sqlite.checkpoint_failed", error=repr(exc))


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
            if query.fetch is Fetch.ONE:
                return await self._conn.fetchrow(sql, *args)
            if query.fetch is Fetch.ALL:
                return await self._conn.fetch(sql, *args)
            await self._conn.execute(sql, *args)
            return None
        except (asyncpg.PostgresError, *_CONNECTION_LOST) as exc:
            raise _postgres_error(exc) from exc
