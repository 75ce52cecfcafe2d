"""Plain SQL for the hot path, run straight on the database driver.

The write path (and the progress read) is a handful of statements per request; going
through SQLAlchemy's statement building and the aiosqlite thread hop per statement cost
several times the database work itself (bench/RESULTS.md). So these statements are
written once, as SQL text with ``:name`` parameters that means the same on SQLite and
PostgreSQL, and the code that uses them is a *transaction script*: a generator that
yields ``Query`` objects and receives their rows. It never touches a connection, so
one script runs unchanged on

- ``app.drivers.SqliteDriver``: a plain ``sqlite3`` connection, the whole transaction
  run on the event loop without a pause;
- ``app.drivers.PostgresDriver``: an asyncpg connection, one await per statement;
- ``run_on_connection``: any SQLAlchemy ``AsyncConnection`` (the replay job).

A statement that fails is thrown back into the script as ``StatementFailed`` at the
``yield`` that ran it, so a script can catch it (the analytics-event SAVEPOINT does);
if the script does not, the driver rolls the transaction back and raises it.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")

# a quoted string (left alone) or a :name parameter (not a ::cast)
_PARAMETER = re.compile(r"'(?:[^']|'')*'|(?<!:):([A-Za-z_][A-Za-z0-9_]*)")


class Fetch(Enum):
    NOTHING = "nothing"
    ONE = "one"  # the first row, or None
    ALL = "all"


@dataclass(frozen=True, slots=True)
class Statement:
    """SQL text with ``:name`` parameters, rendered once for each driver's style."""

    sql: str
    names: tuple[str, ...]
    numbered: str  # PostgreSQL's $1, $2, ...

    @classmethod
    def of(cls, sql: str) -> Statement:
        sql = " ".join(sql.split())
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return match.group(0)
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        numbered = _PARAMETER.sub(number, sql)
        return cls(sql=sql, names=tuple(names), numbered=numbered)

    def __call__(self, fetch: Fetch = Fetch.NOTHING, **params: Any) -> Query:
        return Query(self, params, fetch)  # a missing parameter fails as a KeyError


@dataclass(frozen=True, slots=True)
class Query:
    statement: Statement
    params: Mapping[str, Any]
    fetch: Fetch

    def sqlite_params(self) -> dict[str, Any]:
        params = self.params
        return {
            name: value if (value := params[name]).__class__ in _PLAIN else _sqlite_value(value)
            for name in self.statement.names
        }

    def numbered_params(self) -> tuple[Any, ...]:
        return tuple(self.params[name] for name in self.statement.names)


_PLAIN = frozenset({str, int, float, bool, type(None)})  # bound as they are

#: A transaction script (or a part of one): yields queries, receives their results
#: (``None``; one row or ``None``; or a list of rows: as the driver gives them, indexable
#: and unpackable), and returns a ``T``.
Script = Generator[Query, Any, T]


def _sqlite_value(value: Any) -> Any:
    """What SQLAlchemy stores on SQLite, so rows written here sort and compare with rows
    written through it: DateTime as naive UTC text always with microseconds, Uuid as
    32 hex digits."""
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        return _sqlite_time(value)
    return value


@functools.lru_cache(maxsize=1024)
def _sqlite_time(value: datetime) -> str:
    # Cached: a transaction binds the same few times over and over (its clock reading,
    # the funnel's cohort blocks, the rollup slot), ~3.5 µs each to format. Equal aware
    # datetimes are the same instant, so they share one text whatever their zone.
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class StatementFailed(Exception):
    """A statement (or BEGIN/COMMIT) failed in the driver; ``orig`` is the driver's error.

    ``permanent``: the database refused the statement on its merits (a constraint, bad
    data), so retrying the same request fails again. ``transaction_lost``: the
    transaction is gone (the connection broke, or SQLite rolled it all back, as it does
    on a full disk): nothing more can run in it, not even a rollback to a savepoint.
    """

    def __init__(self, orig: BaseException, *, permanent: bool, transaction_lost: bool) -> None:
        super().__init__(f"{type(orig).__name__}: {orig}")
        self.orig = orig
        self.permanent = permanent
        self.transaction_lost = transaction_lost


BEGIN_SAVEPOINT = Statement.of("SAVEPOINT hot_path")
RELEASE_SAVEPOINT = Statement.of("RELEASE SAVEPOINT hot_path")
ROLLBACK_TO_SAVEPOINT = Statement.of("ROLLBACK TO SAVEPOINT hot_path")


def savepoint(body: Script[T]) -> Script[T]:
    """Run ``body`` inside a SAVEPOINT: if a statement fails, undo ``body``'s writes
    (the rest of the transaction stays) and re-raise ``StatementFailed``."""
    yield BEGIN_SAVEPOINT()
    try:
        result = yield from body
    except StatementFailed as failed:
        if failed.transaction_lost:
            raise
        try:
            yield ROLLBACK_TO_SAVEPOINT()
            yield RELEASE_SAVEPOINT()
        except StatementFailed as undo:
            # report the first failure, but nothing more may run in this transaction
            raise StatementFailed(
                failed.orig, permanent=failed.permanent, transaction_lost=True
            ) from undo
        raise
    yield RELEASE_SAVEPOINT()
    return result


def drive(script: Script[T], execute: Callable[[Query], Any]) -> T:
    """Run a script with a synchronous ``execute`` that raises ``StatementFailed``."""
    result: Any = None
    error: StatementFailed | None = None
    try:
        while True:
            try:
                query = script.send(result) if error is None else script.throw(error)
            except StopIteration as stop:
                value: T = stop.value
                return value
            result, error = None, None
            try:
                result = execute(query)
            except StatementFailed as exc:
                error = exc
    finally:
        script.close()  # a script left at a yield by an error runs its own cleanup


async def drive_async(script: Script[T], execute: Callable[[Query], Awaitable[Any]]) -> T:
    """``drive`` for an asynchronous ``execute``."""
    result: Any = None
    error: StatementFailed | None = None
    try:
        while True:
            try:
                query = script.send(result) if error is None else script.throw(error)
            except StopIteration as stop:
                value: T = stop.value
                return value
            result, error = None, None
            try:
                result = await execute(query)
            except StatementFailed as exc:
                error = exc
    finally:
        script.close()


async def run_on_connection(conn: AsyncConnection, script: Script[T]) -> T:
    """Run a script inside a SQLAlchemy connection's current transaction."""
    postgres = conn.dialect.name == "postgresql"

    async def execute(query: Query) -> Any:
        sql, params = (
            (query.statement.numbered, query.numbered_params())
            if postgres
            else (query.statement.sql, query.sqlite_params())
        )
        try:
            result = await conn.exec_driver_sql(sql, params)
        except DBAPIError as exc:
            raise StatementFailed(
                exc.orig or exc,
                permanent=isinstance(exc, IntegrityError | DataError),
                transaction_lost=exc.connection_invalidated,
            ) from exc
        return rows_of(query.fetch, result)

    return await drive_async(script, execute)


def rows_of(mode: Fetch, cursor: Any) -> Any:
    """Rows as the driver gives them (tuples, or records that index and unpack alike)."""
    if mode is Fetch.ONE:
        return cursor.fetchone()
    if mode is Fetch.ALL:
        return cursor.fetchall()
    return None
