"""Unit of work: one connection, one transaction; leaving without ``commit()`` rolls back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from app.db import SQLITE_WRITE


class UnitOfWork:
    """``async with UnitOfWork(engine) as uow: ...; await uow.commit()``."""

    def __init__(self, engine: AsyncEngine, *, write: bool = True) -> None:
        self._engine = engine
        self._write = write
        self._conn: AsyncConnection | None = None
        self._tx: AsyncTransaction | None = None

    async def __aenter__(self) -> UnitOfWork:
        conn = await self._engine.connect()
        try:
            if self._write:
                conn = await conn.execution_options(**{SQLITE_WRITE: True})
            self._tx = await conn.begin()
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None and self._tx is not None
        try:
            if self._tx.is_active:
                await self._tx.rollback()
        finally:
            await self._conn.close()

    @property
    def connection(self) -> AsyncConnection:
        assert self._conn is not None
        return self._conn

    async def commit(self) -> None:
        assert self._tx is not None
        await self._tx.commit()

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Roll back to the savepoint, and re-raise, if the block fails."""
        assert self._conn is not None
        async with self._conn.begin_nested():
            yield
