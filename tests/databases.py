"""Fresh, migrated databases for tests: a copied SQLite file, or a PostgreSQL clone.

PostgreSQL runs whenever ``ONBOARDING_KPI_TEST_POSTGRES_URL`` is set (``.ci/run`` sets it);
each test gets its own database created from a migrated template, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import normalise_url
from app.migrate import upgrade

POSTGRES_URL_ENV = "ONBOARDING_KPI_TEST_POSTGRES_URL"
T = TypeVar("T")


def postgres_admin_url() -> str | None:
    return os.environ.get(POSTGRES_URL_ENV) or None


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even if an event loop is running here
    (session fixtures may first be requested from inside an async test)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def migrate(url: str) -> None:
    engine = create_async_engine(normalise_url(url))
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


class SqliteDatabases:
    def __init__(self, root: Path) -> None:
        self._template = root / "template.sqlite3"
        run_blocking(migrate(f"sqlite+aiosqlite:///{self._template}"))

    def create(self, folder: Path) -> str:
        path = folder / "test.sqlite3"
        shutil.copyfile(self._template, path)
        return f"sqlite+aiosqlite:///{path}"


class PostgresDatabases:
    def __init__(self, admin_url: str) -> None:
        self._admin = make_url(admin_url)
        self._template = f"okpi_template_{os.getpid()}"
        run_blocking(self._create_template())

    def _dsn(self, database: str) -> str:
        return self._admin.set(drivername="postgresql", database=database).render_as_string(
            hide_password=False
        )

    def url(self, database: str) -> str:
        return self._admin.set(drivername="postgresql+asyncpg", database=database).render_as_string(
            hide_password=False
        )

    async def _admin_execute(self, *statements: str) -> None:
        conn = await asyncpg.connect(self._dsn(self._admin.database or "postgres"), timeout=10)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    async def _create_template(self) -> None:
        await self._admin_execute(
            f'DROP DATABASE IF EXISTS "{self._template}" WITH (FORCE)',
            f'CREATE DATABASE "{self._template}"',
        )
        await migrate(self.url(self._template))

    async def create(self) -> str:
        name = f"okpi_test_{uuid.uuid4().hex[:12]}"
        await self._admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
        return name

    async def drop(self, name: str) -> None:
        await self._admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def set_connections_allowed(self, name: str, *, allowed: bool) -> None:
        """Simulate the database going away (and coming back) for one test database."""
        statements = [f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}']
        if not allowed:
            statements.append(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
        await self._admin_execute(*statements)

    def close(self) -> None:
        run_blocking(
            self._admin_execute(f'DROP DATABASE IF EXISTS "{self._template}" WITH (FORCE)')
        )
