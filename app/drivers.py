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

from app.config import SqliteSynchronous, sqlite_synchronous_pragma
from app.dao.sql import Fetch, Query, Script, StatementFailed, drive, drive_async
from app.logging import get_logger

T = TypeVar("T")
log = get_logger(__name__)

#: Errors raised while binding a value (a naive datetime, an int beyond 64 bits): the
#: database refused nothing, but the statement cannot run; reported like bad data.
_BIND_ERRORS = (ValueError, TypeError, OverflowError, KeyError)


class Driver(Protocol):
    async def transaction(self, script: Script[T]) -> T:
        """Run ``script`` in one transaction: committed if it returns, rolled back if it raises."""
        ...

    async def read(self, script: Script[T]) -> T:
        """Run a read-only ``script`` (no transaction bookkeeping)."""
        ...

    async def close(self) -> None: ...


def create_driver(
    url: URL,
    *,
    busy_timeout_ms: int,
    pool_size: int,
    pool_timeout_seconds: float = 10,
    sqlite_synchronous: SqliteSynchronous = "full",
) -> Driver:
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("SQLite needs a database file (the hot path opens its own)")
        return SqliteDriver(
            url.database, busy_timeout_ms=busy_timeout_ms, synchronous=sqlite_synchronous
        )
    return PostgresDriver(url, pool_size=pool_size, pool_timeout_seconds=pool_timeout_seconds)


# --- SQLite ----------------------------------------------------------------------------------


def _is_busy(exc: sqlite3.Error) -> bool:
    # the primary code: SQLITE_BUSY_RECOVERY, _SNAPSHOT ... are busy too
    code: int | None = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


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
    stalling every request for up to 50 ms. The connection's auto-checkpoint is off; every
    ``CHECKPOINT_EVERY`` commits a thread copies the bulk with a PASSIVE checkpoint (it
    never blocks writers), then this process's writers pause (asynchronously: the loop
    runs on) while the thread finishes with a RESTART checkpoint, which copies the few
    frames written meanwhile and makes the next writer start the WAL over. Both steps
    matter: SQLite reuses the WAL from its beginning only once every frame is copied
    back, which a checkpoint racing the writer never achieves (with PASSIVE alone the WAL
    grew ~80 KB per completion: 628 MB after 8,000), and a RESTART's own wait for the
    write lock would starve against back-to-back transactions. Finishing on the loop
    instead blocked it for the checkpoint's fsync, ~5 ms each time.
    """

    CHECKPOINT_EVERY = 50  # commits, ~19 pages each: near SQLite's 1000-page default

    def __init__(
        self, path: str, *, busy_timeout_ms: int, synchronous: SqliteSynchronous = "full"
    ) -> None:
        self._path = path
        self._synchronous = sqlite_synchronous_pragma(synchronous)
        self._busy_timeout = busy_timeout_ms / 1000
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._commits = 0
        self._checkpoint: asyncio.Future[None] | None = None
        self._writers_may_begin = asyncio.Event()
        self._writers_may_begin.set()

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("the SQLite driver is closed")
        if self._conn is None:
            # isolation_level=None: the driver never opens transactions behind our back.
            conn = sqlite3.connect(
                self._path, isolation_level=None, timeout=0, cached_statements=256
            )
            try:
                for pragma in (
                    "PRAGMA journal_mode=WAL",
                    self._synchronous,
                    "PRAGMA foreign_keys=ON",
                    "PRAGMA wal_autocheckpoint=0",
                    "PRAGMA journal_size_limit=16777216",  # a WAL that started over: 16 MiB
                ):
                    conn.execute(pragma)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _error(self, exc: BaseException) -> StatementFailed:
        return StatementFailed(
            exc,
            permanent=isinstance(exc, (sqlite3.IntegrityError, sqlite3.DataError, *_BIND_ERRORS)),
            # SQLite rolls the whole transaction back by itself on some errors (a full
            # disk, I/O errors, out of memory): then no savepoint is left to return to.
            transaction_lost=self._conn is None or not self._conn.in_transaction,
        )

    def _execute(self, query: Query) -> Any:
        conn = self._conn or self._connection()
        try:
            cursor = conn.execute(query.statement.sql, query.sqlite_params())
            fetch = query.fetch
            if fetch is Fetch.NOTHING:
                return None
            return cursor.fetchone() if fetch is Fetch.ONE else cursor.fetchall()
        except (sqlite3.Error, *_BIND_ERRORS) as exc:
            raise self._error(exc) from exc

    async def _begin(self) -> sqlite3.Connection:
        await self._writers_may_begin.wait()  # no wait unless a checkpoint is finishing
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
                    raise self._error(exc) from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def transaction(self, script: Script[T]) -> T:
        conn = await self._begin()
        # From here to COMMIT nothing awaits: no other request can run in between.
        try:
            result = drive(script, self._execute)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            failure = self._error(exc)
            self._rollback(conn)
            raise failure from exc
        except BaseException:
            self._rollback(conn)
            raise
        self._commits += 1
        if self._commits % self.CHECKPOINT_EVERY == 0:
            self._start_checkpoint()
        return result

    def _rollback(self, conn: sqlite3.Connection) -> None:
        """Roll back; if even that fails, drop the connection (a new one starts clean)
        rather than leave every later BEGIN failing inside a dead transaction."""
        if not conn.in_transaction:
            return
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.error("sqlite.rollback_failed", error=repr(exc))
            conn.close()
            self._conn = None

    def _start_checkpoint(self) -> None:
        if self._checkpoint is None or self._checkpoint.done():
            self._checkpoint = asyncio.ensure_future(self._checkpoint_wal())
            self._checkpoint.add_done_callback(_log_checkpoint_failure)

    async def _checkpoint_wal(self) -> None:
        await asyncio.to_thread(self._checkpoint_now, "PASSIVE")
        self._writers_may_begin.clear()  # no transaction is open here: they run to the end
        try:
            await asyncio.to_thread(self._checkpoint_now, "RESTART")
        finally:
            self._writers_may_begin.set()

    def _checkpoint_now(self, mode: str) -> None:
        # Another process's writer may hold the lock: give up quickly rather than pause
        # this process's writers; the next round tries again.
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=0.1)
        try:
            conn.execute(f"PRAGMA wal_checkpoint({mode})")
        finally:
            conn.close()

    async def read(self, script: Script[T]) -> T:
        # WAL readers never wait for the writer; each statement is its own snapshot.
        try:
            self._connection()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return drive(script, self._execute)

    async def close(self) -> None:
        self._closed = True
        if self._checkpoint is not None:
            await asyncio.wait([self._checkpoint])
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _log_checkpoint_failure(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and (exc := done.exception()) is not None:
        log.warning("sqlite.checkpoint_failed", error=repr(exc))


# --- PostgreSQL ------------------------------------------------------------------------------

#: What asyncpg and the socket raise when the server or the network goes away.
_DISCONNECTS = (asyncpg.PostgresConnectionError, ConnectionError, OSError)
_POSTGRES_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, *_DISCONNECTS)


class PostgresDriver:
    def __init__(self, url: URL, *, pool_size: int, pool_timeout_seconds: float) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._pool_size = pool_size
        self._pool_timeout = pool_timeout_seconds
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    try:
                        self._pool = await _durable_pool(self._dsn, self._pool_size)
                    except _POSTGRES_ERRORS as exc:
                        raise _postgres_error(exc, None) from exc
        return self._pool

    async def transaction(self, script: Script[T]) -> T:
        committed = False
        try:
            pool = await self._get_pool()
            async with pool.acquire(timeout=self._pool_timeout) as conn:
                try:
                    await conn.execute("BEGIN")
                    result = await drive_async(script, _executor(conn))
                    status = await conn.execute("COMMIT")
                except BaseException:
                    if not conn.is_closed() and conn.is_in_transaction():
                        # If this fails too, the pool's reset on release rolls back or
                        # drops the connection: the original error is the one to report.
                        with contextlib.suppress(*_POSTGRES_ERRORS):
                            await conn.execute("ROLLBACK")
                    raise
                if status != "COMMIT":  # PostgreSQL answers ROLLBACK to an aborted transaction
                    raise StatementFailed(
                        RuntimeError(f"COMMIT answered {status!r}"),
                        permanent=False,
                        transaction_lost=True,
                    )
                committed = True
        except _POSTGRES_ERRORS as exc:
            if not committed:
                raise _postgres_error(exc, None) from exc
            # Committed: returning the connection to the pool failed, not the request.
            log.warning("postgres.release_failed", error=repr(exc))
        return result

    async def read(self, script: Script[T]) -> T:
        try:
            pool = await self._get_pool()
            async with pool.acquire(timeout=self._pool_timeout) as conn:
                result: T = await drive_async(script, _executor(conn))
        except _POSTGRES_ERRORS as exc:
            raise _postgres_error(exc, None) from exc
        return result

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


async def _durable_pool(dsn: str, size: int) -> asyncpg.Pool:
    """A pool whose COMMITs are on disk before they return.

    With ``synchronous_commit = off`` (from the database's or role's defaults, or the URL)
    PostgreSQL answers COMMIT before the WAL is flushed, and a crash loses what users were
    told was completed. Then the pool is rebuilt with ``on`` in every connection's startup
    packet: a ``SET`` would not do, as the pool's ``RESET ALL`` on release undoes it. Any
    stronger level (``remote_apply``, ...) is left as configured."""
    pool = await asyncpg.create_pool(dsn, min_size=0, max_size=size)
    async with pool.acquire() as conn:
        level = await conn.fetchval("SELECT current_setting('synchronous_commit')")
    if level != "off":
        return pool
    await pool.close()
    log.warning(
        "postgres.synchronous_commit_restored",
        detail="synchronous_commit is off for this database or role; the write path runs on",
    )
    return await asyncpg.create_pool(
        dsn, min_size=0, max_size=size, server_settings={"synchronous_commit": "on"}
    )


def _postgres_error(exc: BaseException, conn: asyncpg.Connection | None) -> StatementFailed:
    return StatementFailed(
        exc,
        permanent=isinstance(
            exc, (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError, *_BIND_ERRORS)
        ),
        transaction_lost=isinstance(exc, _DISCONNECTS) or (conn is not None and conn.is_closed()),
    )


def _executor(conn: asyncpg.Connection) -> Any:
    async def execute(query: Query) -> Any:
        sql, args = query.statement.numbered, query.numbered_params()
        try:
            if query.fetch is Fetch.ONE:
                return await conn.fetchrow(sql, *args)
            if query.fetch is Fetch.ALL:
                return await conn.fetch(sql, *args)
            await conn.execute(sql, *args)
            return None
        except (*_POSTGRES_ERRORS, *_BIND_ERRORS) as exc:
            raise _postgres_error(exc, conn) from exc

    return execute
