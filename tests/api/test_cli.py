"""The command line: token minting agrees with the server; export-schema writes the SDL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth import TokenCodec, resolve_secret
from app.cli import main
from app.config import Settings
from app.drivers import create_driver
from app.flow_file import DEFAULT_FLOW
from app.graphql import export_sdl
from app.metrics import Metrics
from app.migrate import current_revision, head_revision
from app.processors.onboarding import OnboardingProcessor
from app.services.onboarding import CompleteStepCommand
from tests.api.test_analytics_write_failure import break_event_writes
from tests.conftest import new_key
from tests.flows import valid_metadata


def step_1_command() -> CompleteStepCommand:
    return CompleteStepCommand(1, new_key(), "web", valid_metadata(DEFAULT_FLOW, 1))


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


def test_replay_failures_command_resolves_recorded_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'replay.sqlite3'}"
    monkeypatch.setenv("ONBOARDING_KPI_DATABASE_URL", url)
    monkeypatch.setenv("ONBOARDING_KPI_DATA_DIR", str(tmp_path))
    assert main(["migrate"]) == 0

    async def record_a_failed_event() -> None:
        engine = create_async_engine(url)
        driver = create_driver(engine.url, busy_timeout_ms=5000, pool_size=1)
        try:
            await break_event_writes(engine)
            processor = OnboardingProcessor(driver, flow=DEFAULT_FLOW, metrics=Metrics())
            await processor.complete_step(
                "cli-user",
                step_1_command(),
            )
            async with engine.begin() as conn:
                await conn.execute(text("DROP TRIGGER refuse_kpi_events"))
        finally:
            await driver.close()
            await engine.dispose()

    asyncio.run(record_a_failed_event())
    capsys.readouterr()

    assert main(["replay-failures", "--limit", "10"]) == 0
    assert capsys.readouterr().out.strip() == "resolved=1 still_failing=0 remaining=0"
    assert main(["replay-failures"]) == 0
    assert capsys.readouterr().out.strip() == "resolved=0 still_failing=0 remaining=0"


def test_the_served_app_freezes_its_startup_objects_out_of_the_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from app.main import create_served_app

    monkeypatch.setenv("ONBOARDING_KPI_DATABASE_URL", f"sqlite:///{tmp_path / 'gc.sqlite3'}")
    monkeypatch.setenv("ONBOARDING_KPI_DATA_DIR", str(tmp_path))
    gc.unfreeze()
    try:
        create_served_app()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
