"""Flow files: a bad one stops every command, naming the file and the place of each problem.

``check-flow`` runs the same validation alone. One case per kind of bad file the issue
lists, and the rules between entries; a subprocess run proves the real command line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import EXIT_BAD_FLOW, main
from app.flow_file import DEFAULT_FLOW_FILE, load_flow
from tests.flows import TEAM_TRIAL_FILE

ROOT = Path(__file__).resolve().parents[2]

KPIS = """
[[kpis]]
id = "trial.started"
name = "Trial started"
description = "A trial began."
kind = "LEADING"
"""


def step(key: str, body: str = "", kpi: str | None = None) -> str:
    kpi_line = f'kpi = "{kpi}"\n' if kpi else ""
    return f'\n[[steps]]\nkey = "{key}"\ntitle = "Step {key}"\n{kpi_line}{body}'


def field(name: str, kind: str, extra: str = "") -> str:
    return (
        f'\n  [[steps.fields]]\n  name = "{name}"\n  label = "{name}"\n  type = "{kind}"\n{extra}'
    )


BAD_FILES = [
    pytest.param(
        'colour = "blue"\n' + KPIS + step("a"), ["colour: unknown key"], id="unknown-root-key"
    ),
    pytest.param(
        KPIS + step("a", 'icon = "x"\n'), ["steps[0].icon: unknown key"], id="unknown-step-key"
    ),
    pytest.param(
        KPIS + step("a") + step("b") + step("a"),
        ["steps[2].key: step key 'a' is already used by steps[0]"],
        id="duplicate-step-key",
    ),
    pytest.param(
        KPIS + step("a", kpi="trial.started") + step("b", kpi="trial.started"),
        [
            "steps[1].kpi: KPI 'trial.started' is already counted by steps[0] "
            "(each KPI is counted by one step)"
        ],
        id="kpi-used-twice",
    ),
    pytest.param(
        KPIS + step("a", kpi="trial.finished"),
        ["steps[0].kpi: KPI 'trial.finished' is not declared in [[kpis]]"],
        id="undeclared-kpi",
    ),
    pytest.param(
        KPIS + step("a", field("ok", "boolean", "  max_length = 3\n")),
        ["steps[0].fields[0].max_length: applies to string and email fields only, not boolean"],
        id="max-length-on-boolean",
    ),
    pytest.param(
        KPIS + step("a", field("plan", "choice")),
        ["steps[0].fields[0].choices: a choice field needs at least one choice"],
        id="choice-without-choices",
    ),
    pytest.param(
        KPIS + step("a", field("x", "text")),
        [
            "steps[0].fields[0].type: Input should be 'string', 'email', 'integer', 'number', "
            "'boolean' or 'choice'"
        ],
        id="unknown-field-type",
    ),
    pytest.param(
        KPIS + step("a", field("n", "integer", "  minimum = 5\n  maximum = 1\n")),
        ["steps[0].fields[0].minimum: 5 is more than maximum 1"],
        id="bounds-reversed",
    ),
    pytest.param(
        KPIS + step("a", field("n", "string") + field("n", "email")),
        ["steps[0].fields[1].name: field 'n' is already declared at fields[0]"],
        id="duplicate-field",
    ),
    pytest.param(
        KPIS + step("Bad Key"),
        ["steps[0].key: 'Bad Key' does not match ^[a-z][a-z0-9_]{0,63}$"],
        id="step-key-pattern",
    ),
    pytest.param(
        KPIS + KPIS + step("a"),
        ["kpis[1].id: KPI 'trial.started' is already declared at kpis[0]"],
        id="duplicate-kpi",
    ),
    pytest.param(
        KPIS + step("a", field("ok", "boolean", "  min_length = 1\n")),
        ["steps[0].fields[0].min_length: applies to string and email fields only, not boolean"],
        id="min-length-on-boolean",
    ),
    pytest.param(
        KPIS + step("a", field("s", "string", "  minimum = 1\n")),
        ["steps[0].fields[0].minimum: applies to integer and number fields only, not string"],
        id="minimum-on-string",
    ),
    pytest.param(
        KPIS + step("a", field("n", "integer", '  choices = [{ value = "a", label = "A" }]\n')),
        [
            "steps[0].fields[0].choices: applies to choice fields only, not integer",
        ],
        id="choices-on-integer",
    ),
    pytest.param(
        KPIS
        + step(
            "a",
            field(
                "p",
                "choice",
                '  choices = [{ value = "a", label = "A" }, { value = "a", label = "B" }]\n',
            ),
        ),
        ["steps[0].fields[0].choices[1].value: 'a' is listed twice"],
        id="duplicate-choice",
    ),
    pytest.param(
        KPIS + step("a", field("p", "choice", '  choices = [{ value = " a", label = "A" }]\n')),
        [
            "steps[0].fields[0].choices[0].value: ' a' must not start or end with spaces "
            "or contain control characters"
        ],
        id="choice-value-with-spaces",
    ),
    pytest.param(
        KPIS + step("a", field("s", "string", "  min_length = 9\n  max_length = 3\n")),
        ["steps[0].fields[0].min_length: 9 is more than max_length 3"],
        id="lengths-reversed",
    ),
    pytest.param(
        KPIS + step("a", field("n", "integer", "  minimum = 0.5\n")),
        ["steps[0].fields[0].minimum: an integer field needs a whole-number bound, got 0.5"],
        id="fractional-integer-bound",
    ),
    pytest.param(
        KPIS + step("a", field("n", "integer", "  maximum = 9007199254740992\n")),
        [
            "steps[0].fields[0].maximum: an integer field's bound must be between "
            "-9007199254740991 and 9007199254740991 (exact in JavaScript and JSON)"
        ],
        id="integer-bound-past-safe-range",
    ),
    pytest.param(
        KPIS + step("a", field("n", "number", "  maximum = nan\n")),
        ["steps[0].fields[0].maximum: Input should be a finite number"],
        id="nan-bound",
    ),
    pytest.param(KPIS, ["steps: required key is missing"], id="no-steps"),
    pytest.param(
        KPIS.replace('kind = "LEADING"', 'kind = "LEADING"\nkind = "LAGGING"') + step("a"),
        None,  # tomllib's own message, with line and column
        id="invalid-toml",
    ),
]


@pytest.mark.parametrize(("text", "problems"), BAD_FILES)
def test_check_flow_names_each_problem_and_its_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, problems: list[str] | None
) -> None:
    path = tmp_path / "flow.toml"
    path.write_text(text)

    assert main(["check-flow", str(path)]) == EXIT_BAD_FLOW

    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    if problems is None:
        [line] = lines
        assert line.startswith(f"{path}: invalid TOML: ") and "line" in line
    else:
        assert lines == [f"{path}: {p}" for p in problems]


def test_every_problem_of_a_file_is_reported_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "flow.toml"
    path.write_text(KPIS + step("a", kpi="nope.kpi") + step("a", field("p", "choice")))

    assert main(["check-flow", str(path)]) == EXIT_BAD_FLOW

    assert capsys.readouterr().err.splitlines() == [
        f"{path}: steps[0].kpi: KPI 'nope.kpi' is not declared in [[kpis]]",
        f"{path}: steps[1].key: step key 'a' is already used by steps[0]",
        f"{path}: steps[1].fields[0].choices: a choice field needs at least one choice",
    ]


@pytest.mark.parametrize("path", [DEFAULT_FLOW_FILE, TEAM_TRIAL_FILE], ids=["default", "test"])
def test_check_flow_prints_ok_for_a_good_file(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-flow", str(path)]) == 0

    assert capsys.readouterr().out.splitlines()[0] == "ok"


def test_a_file_that_is_not_utf8_is_a_problem_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "flow.toml"
    path.write_bytes((KPIS + step("caf\xe9")).encode("latin-1"))

    assert main(["check-flow", str(path)]) == EXIT_BAD_FLOW

    assert capsys.readouterr().err.startswith(f"{path}: not UTF-8 text: ")


def test_a_missing_file_is_a_problem_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.toml"

    assert main(["check-flow", str(missing)]) == EXIT_BAD_FLOW

    assert capsys.readouterr().err.startswith(f"{missing}: cannot read the file: ")


@pytest.mark.parametrize(
    "command",
    [
        ["migrate"],
        ["serve", "--port", "1"],
        ["replay-failures"],
        ["token", "--user", "u"],
        ["export-schema"],
    ],
    ids=lambda c: c[0],
)
def test_every_command_refuses_to_start_on_a_bad_flow_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    # given a configured flow file with a KPI counted by two steps, and a fresh database
    path = tmp_path / "flow.toml"
    path.write_text(KPIS + step("a", kpi="trial.started") + step("b", kpi="trial.started"))
    database = tmp_path / "db.sqlite3"
    monkeypatch.setenv("ONBOARDING_KPI_FLOW_FILE", str(path))
    monkeypatch.setenv("ONBOARDING_KPI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ONBOARDING_KPI_DATABASE_URL", f"sqlite+aiosqlite:///{database}")

    assert main(command) == EXIT_BAD_FLOW

    # then the problem is named, and nothing was started or created
    err = capsys.readouterr().err
    assert f"{path}: steps[1].kpi: KPI 'trial.started' is already counted by steps[0]" in err
    assert "refusing to start" in err
    assert not database.exists()


def test_the_real_command_line_exits_non_zero_on_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "flow.toml"
    path.write_text(KPIS + step("a", field("ok", "boolean", "  max_length = 3\n")))

    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "app.cli", "check-flow", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == EXIT_BAD_FLOW
    assert done.stderr.strip() == (
        f"{path}: steps[0].fields[0].max_length: "
        "applies to string and email fields only, not boolean"
    )


def test_the_packaged_default_flow_is_the_four_steps_and_three_kpis() -> None:
    flow = load_flow()

    assert [s.key for s in flow.steps] == ["profile", "workspace", "invite", "first_project"]
    assert [k.id for k in flow.kpis] == [
        "onboarding.step_1_completed",
        "onboarding.teammate_invited",
        "onboarding.completed",
    ]
    assert [s.kpi_id for s in flow.steps] == [
        "onboarding.step_1_completed",
        None,
        "onboarding.teammate_invited",
        "onboarding.completed",
    ]
