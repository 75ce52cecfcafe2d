"""The command line: token minting agrees with the server; export-schema writes the SDL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth import TokenCodec, resolve_secret
from app.cli import main
from app.config import Settings
from app.graphql import export_sdl
from app.migrate import current_revision, head_revision


def test_token_command_mints_a_token_the_server_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a development setup with no secret configured
    monkeypatch.setenv("ONBOARDING_KPI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ONBOARDING_KPI_JWT_SECRET", raising=False)

    assert main(["token", "--user", "alice", "--role", "analyst", "--role", "admin"]) == 0

    token = capsys.readouterr().out.strip()
    settings = Settings()
    principal = TokenCodec(settings, resolve_secret(settings)).authenticate(f"Bearer {token}")
    assert principal.user_id == "alice"
    assert principal.roles == {"analyst", "admin"}


def test_export_schema_writes_the_sdl(tmp_path: Path) -> None:
    out = tmp_path / "schema.graphql"

    assert main(["export-schema", "--output", str(out)]) == 0

    assert out.read_text() == export_sdl()
    assert "completeOnboardingStep(" in out.read_text()


def test_serve_refuses_a_database_behind_head_and_migrate_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given an explicitly configured, never migrated database
    url = f"sqlite+aiosqlite:///{tmp_path / 'explicit.sqlite3'}"
    monkeypatch.setenv("ONBOARDING_KPI_DATABASE_URL", url)
    monkeypatch.setenv("ONBOARDING_KPI_DATA_DIR", str(tmp_path))

    # serve refuses before starting, naming the command that fixes it
    assert main(["serve", "--port", "1"]) == 1
    assert "onboarding-kpi migrate" in capsys.readouterr().err

    # migrate brings it to head
    assert main(["migrate"]) == 0

    async def revision() -> str | None:
        engine = create_async_engine(url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    assert asyncio.run(revision()) == head_revision()
