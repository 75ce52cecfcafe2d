"""Schema migrations (Alembic), for SQLite and PostgreSQL alike.

The server never calls ``create_all``: it upgrades with ``onboarding-kpi migrate``
(or ``serve --migrate``) and refuses to serve a database behind head.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class DatabaseBehindHead(RuntimeError):
    def __init__(self, current: str | None, head: str) -> None:
        super().__init__(
            f"The database schema is at revision {current or '(empty)'} but this version of "
            f"onboarding-kpi needs {head}. Run `onboarding-kpi migrate` "
            "(or start with `onboarding-kpi serve --migrate`)."
        )
        self.current = current
        self.head = head


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), revision))


async def ensure_at_head(engine: AsyncEngine) -> None:
    current, head = await current_revision(engine), head_revision()
    if current != head:
        raise DatabaseBehindHead(current, head)
