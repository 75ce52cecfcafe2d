"""Bad configuration makes every command refuse to start, naming the variable and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import EXIT_BAD_CONFIG, main

COMMANDS = [["migrate"], ["serve", "--port", "1"], ["replay-failures"], ["token", "--user", "u"]]


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("SQLITE_SYNCHRONOUS", "off", "Input should be 'full' or 'normal' (got 'off')"),
        ("DB_POOL_SIZE", "0", "Input should be greater than or equal to 1 (got '0')"),
        (
            "DB_POOL_SIZE",
            "many",
            "Input should be a valid integer, unable to parse string as an integer (got 'many')",
        ),
        ("ENV", "staging", "Input should be 'development' or 'production' (got 'staging')"),
    ],
    ids=["synchronous-off", "pool-zero", "pool-text", "env"],
)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_bad_setting_refuses_every_command_and_names_the_variable(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    problem: str,
    command: list[str],
) -> None:
    database = tmp_path / "db.sqlite3"
    monkeypatch.setenv("ONBOARDING_KPI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ONBOARDING_KPI_DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    monkeypatch.setenv(f"ONBOARDING_KPI_{variable}", value)

    assert main(command) == EXIT_BAD_CONFIG

    # then one line names the variable and what is wrong, and nothing was created
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"onboarding-kpi: ONBOARDING_KPI_{variable}: {problem}",
        "onboarding-kpi: refusing to start: fix the configuration",
    ]
    assert not database.exists()


def test_every_problem_gets_its_own_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ONBOARDING_KPI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ONBOARDING_KPI_SQLITE_SYNCHRONOUS", "extra")
    monkeypatch.setenv("ONBOARDING_KPI_DB_BUSY_TIMEOUT_MS", "-1")

    assert main(["migrate"]) == EXIT_BAD_CONFIG

    err = capsys.readouterr().err
    assert "ONBOARDING_KPI_SQLITE_SYNCHRONOUS: Input should be 'full' or 'normal'" in err
    assert "ONBOARDING_KPI_DB_BUSY_TIMEOUT_MS: Input should be greater than or equal to 0" in err


def test_a_weak_production_secret_is_refused_without_echoing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ONBOARDING_KPI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ONBOARDING_KPI_ENV", "production")
    monkeypatch.setenv("ONBOARDING_KPI_JWT_SECRET", "changeme")

    assert main(["serve", "--port", "1"]) == EXIT_BAD_CONFIG

    err = capsys.readouterr().err
    assert "refusing to start: fix the configuration" in err
    assert "JWT_SECRET" in err
    assert "changeme" not in err
