"""Changing a flow without losing history (issue 12), on SQLite and PostgreSQL.

Every test starts the real app (``create_app``'s lifespan reconciles the flow with
``flow_history``), records completions over HTTP, then starts it again with a changed flow:
allowed changes are recorded, refused ones raise ``FlowHistoryConflict`` and leave the
database exactly as it was. One test drives ``onboarding-kpi migrate`` as a process.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth import TokenCodec
from app.config import Settings
from app.db import create_engine
from app.drivers import create_driver
from app.flow_file import DEFAULT_FLOW, DEFAULT_FLOW_FILE, load_flow
from app.flow_history import HINT, FlowHistoryConflict, reconcile_flow
from app.kpi import KpiDefinition, KpiKind, OnboardingFlow, OnboardingStep
from app.main import create_app
from app.metrics import Metrics
from app.processors.onboarding import OnboardingProcessor
from app.processors.replay import ReplayProcessor
from app.services.onboarding import CompleteStepCommand
from tests.api.test_analytics_replay import repair_event_writes
from tests.api.test_analytics_write_failure import break_event_writes
from tests.conftest import TEST_SECRET, Api, new_key, rows
from tests.flows import valid_metadata

PROGRESS = "{ myOnboardingProgress { completedSteps nextStep totalSteps isComplete } }"
REPO = Path(__file__).resolve().parents[2]
SOURCE = DEFAULT_FLOW.source
WORKSPACE_NAMED = KpiDefinition(
    "onboarding.workspace_named",
    "Workspace named",
    "A user named their workspace.",
    KpiKind.LEADING,
)


# -- flows ---------------------------------------------------------------------------------


def with_steps(
    *steps: OnboardingStep, kpis: tuple[KpiDefinition, ...] | None = None
) -> OnboardingFlow:
    """The default flow with these steps, renumbered 1..n in the order given."""
    numbered = tuple(replace(s, step=n) for n, s in enumerate(steps, start=1))
    return replace(DEFAULT_FLOW, steps=numbered, kpis=DEFAULT_FLOW.kpis if kpis is None else kpis)


PROFILE, WORKSPACE, INVITE, FIRST_PROJECT = DEFAULT_FLOW.steps
TOUR = OnboardingStep(5, "tour", "Take the tour", description="Five minutes, no more.")

APPENDED = with_steps(PROFILE, WORKSPACE, INVITE, FIRST_PROJECT, TOUR)
REWORDED = with_steps(
    PROFILE,
    replace(WORKSPACE, title="Name your team's space", description=None, fields=()),
    INVITE,
    FIRST_PROJECT,
)
KPI_ON_WORKSPACE = with_steps(
    PROFILE,
    replace(WORKSPACE, kpi_id=WORKSPACE_NAMED.id),
    INVITE,
    FIRST_PROJECT,
    kpis=(*DEFAULT_FLOW.kpis, WORKSPACE_NAMED),
)
WORKSPACE_REKEYED = with_steps(PROFILE, replace(WORKSPACE, key="team_space"), INVITE, FIRST_PROJECT)
LAST_STEP_REMOVED = with_steps(PROFILE, WORKSPACE, INVITE)
STEPS_2_AND_3_SWAPPED = with_steps(PROFILE, INVITE, WORKSPACE, FIRST_PROJECT)
INVITE_KPI_MOVED_TO_2 = with_steps(
    PROFILE, replace(WORKSPACE, kpi_id=INVITE.kpi_id), replace(INVITE, kpi_id=None), FIRST_PROJECT
)
INVITE_KPI_DETACHED = with_steps(PROFILE, WORKSPACE, replace(INVITE, kpi_id=None), FIRST_PROJECT)


# -- helpers -------------------------------------------------------------------------------


@asynccontextmanager
async def started(settings: Settings, flow: OnboardingFlow) -> AsyncIterator[Api]:
    """The real app, started (its lifespan reconciles ``flow``), with a GraphQL client."""
    application = create_app(settings, flow=flow)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(client, TokenCodec(settings, TEST_SECRET), flow)


async def complete(settings: Settings, flow: OnboardingFlow, plan: dict[str, int]) -> None:
    """Serve ``flow`` and have each user complete steps 1..n over HTTP."""
    async with started(settings, flow) as api:
        for user, last in plan.items():
            for step in range(1, last + 1):
                result = await api.complete(step, user=user)
                assert result["__typename"] == "CompleteOnboardingStepSuccess", result


async def refusal(settings: Settings, flow: OnboardingFlow) -> FlowHistoryConflict:
    with pytest.raises(FlowHistoryConflict) as info:
        async with started(settings, flow):
            pass
    return info.value


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine of our own on the test database, to look at what was stored."""
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


async def history(engine: AsyncEngine) -> list[dict[str, Any]]:
    return await rows(engine, "SELECT * FROM flow_history ORDER BY step")


async def snapshot(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    """Every row a refused start must leave alone."""
    return {
        "flow_history": await history(engine),
        "step_completions": await rows(engine, "SELECT * FROM step_completions ORDER BY id"),
        "kpi_events": await rows(engine, "SELECT * FROM kpi_events ORDER BY id"),
        "onboarding_progress": await rows(
            engine, "SELECT * FROM onboarding_progress ORDER BY user_id"
        ),
    }


def keys_and_kpis(recorded: list[dict[str, Any]]) -> list[tuple[int, str, str | None]]:
    return [(r["step"], r["key"], r["kpi_id"]) for r in recorded]


def as_utc(value: Any) -> datetime:
    """SQLite hands raw text to ``text()`` queries; PostgreSQL an aware datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


DEFAULT_KEYS = [
    (1, "profile", "onboarding.step_1_completed"),
    (2, "workspace", None),
    (3, "invite", "onboarding.teammate_invited"),
    (4, "first_project", "onboarding.completed"),
]


# -- what the database remembers -------------------------------------------------------------


async def test_the_first_start_records_the_flow(settings: Settings, engine: AsyncEngine) -> None:
    # given a freshly migrated database with no history
    assert await history(engine) == []
    before = datetime.now(UTC)

    # when the app starts
    async with started(settings, DEFAULT_FLOW):
        pass

    # then every step's number, key and KPI is recorded, each KPI attached from now on
    recorded = await history(engine)
    assert keys_and_kpis(recorded) == DEFAULT_KEYS
    for row in recorded:
        assert as_utc(row["recorded_at"]) >= before
        assert row["updated_at"] == row["recorded_at"]
        assert row["kpi_since"] == (row["recorded_at"] if row["kpi_id"] else None)


async def test_a_restart_with_the_same_flow_writes_nothing(
    settings: Settings, engine: AsyncEngine
) -> None:
    # given a recorded flow with completions
    await complete(settings, DEFAULT_FLOW, {"ada": 4})
    before = await snapshot(engine)

    # when the app, then the use case itself, start again with the same flow
    async with started(settings, DEFAULT_FLOW):
        pass
    report = await reconcile_flow(engine, flow=DEFAULT_FLOW)

    # then nothing was written
    assert not report.wrote_anything
    assert str(report) == f"flow history: unchanged ({SOURCE})"
    assert await snapshot(engine) == before


async def test_two_processes_starting_at_once_record_the_flow_once(settings: Settings) -> None:
    # given two engines (two processes' worth of connections) on a database with no history
    engines = [create_engine(settings), create_engine(settings)]
    try:
        # (in WAL mode already, as any database the app has opened is: two connections
        # switching a fresh file to WAL at once can fail: a race in app.db's connect hook)
        async with engines[0].connect():
            pass

        # when both reconcile the same flow at the same time
        reports = await asyncio.gather(*(reconcile_flow(e, flow=DEFAULT_FLOW) for e in engines))

        # then one recorded it and the other, waiting on the lock, found nothing to write
        assert sorted(r.added for r in reports) == [0, 4]
        assert keys_and_kpis(await history(engines[0])) == DEFAULT_KEYS
    finally:
        for e in engines:
            await e.dispose()


# -- allowed changes -----------------------------------------------------------------------


async def test_appending_a_step_is_allowed_and_users_who_had_finished_get_it_next(
    settings: Settings, engine: AsyncEngine
) -> None:
    # given a user who finished the four-step flow
    await complete(settings, DEFAULT_FLOW, {"ada": 4})
    before = await history(engine)

    # when the app starts with a fifth step appended
    async with started(settings, APPENDED) as api:
        body = await api.execute(PROGRESS, headers=api.auth("ada"))

        # then the user has the new step to do
        assert body["data"]["myOnboardingProgress"] == {
            "completedSteps": [1, 2, 3, 4],
            "nextStep": 5,
            "totalSteps": 5,
            "isComplete": False,
        }
        assert (await api.complete(5, user="ada"))["__typename"] == "CompleteOnboardingStepSuccess"

    # and the history gained the step, the recorded ones untouched
    after = await history(engine)
    assert after[:4] == before
    assert keys_and_kpis(after[4:]) == [(5, "tour", None)]


async def test_new_titles_descriptions_and_fields_are_allowed_and_write_nothing(
    settings: Settings, engine: AsyncEngine
) -> None:
    # given completions of step 2
    await complete(settings, DEFAULT_FLOW, {"ada": 2, "bob": 2})
    before = await snapshot(engine)

    # when the app starts with step 2 retitled and its fields and description gone
    async with started(settings, REWORDED) as api:
        flow = await api.execute("{ onboardingFlow { steps { step title } } }")

    # then it serves the new wording, and nothing stored changed (none of it is stored)
    assert flow["data"]["onboardingFlow"]["steps"][1] == {
        "step": 2,
        "title": REWORDED.steps[1].title,
    }
    assert await snapshot(engine) == before


async def test_attaching_a_kpi_to_a_step_without_one_is_allowed_from_now_on(
    settings: Settings, engine: AsyncEngine
) -> None:
    # given completions of step 2, which counts toward no KPI
    await complete(settings, DEFAULT_FLOW, {"ada": 2})
    [old] = [r for r in await history(engine) if r["step"] == 2]
    attached_after = datetime.now(UTC)

    # when the app starts with a new KPI on step 2
    async with started(settings, KPI_ON_WORKSPACE) as api:
        await api.complete(1, user="bob")
        result = await api.complete(2, user="bob")

    # then the history says since when step 2 counts toward it; its meaning is unchanged
    [new] = [r for r in await history(engine) if r["step"] == 2]
    assert (new["key"], new["kpi_id"]) == ("workspace", WORKSPACE_NAMED.id)
    assert new["recorded_at"] == old["recorded_at"]
    assert as_utc(new["kpi_since"]) >= attached_after
    assert new["updated_at"] == new["kpi_since"]
    # and new completions of step 2 are counted
    assert result["analytics"]["event"]["kpiId"] == WORKSPACE_NAMED.id


# -- refused changes -----------------------------------------------------------------------


async def test_rekeying_a_step_with_completions_is_refused_and_changes_nothing(
    settings: Settings, engine: AsyncEngine
) -> None:
    # given two users who completed step 2 ("workspace")
    await complete(settings, DEFAULT_FLOW, {"ada": 2, "bob": 3})
    before = await snapshot(engine)

    # when the app starts with step 2 re-keyed
    conflict = await refusal(settings, WORKSPACE_REKEYED)

    # then it refuses, naming the step, both keys and the completions
    assert conflict.problems == [
        "step 2: 'workspace' -> 'team_space': refused, 2 completions were recorded as 'workspace'"
    ]
    assert str(conflict).startswith(f"refusing to start: the flow in {SOURCE} changes")
    # and the database is exactly as it was
    assert await snapshot(engine) == before


async def test_removing_a_step_with_completions_is_refused(
    settings: Settings, engine: AsyncEngine
) -> None:
    # given a user who finished all four steps (step 4 counts toward onboarding.completed)
    await complete(settings, DEFAULT_FLOW, {"ada": 4})
    before = await snapshot(engine)

    # when the app starts without step 4
    conflict = await refusal(settings, LAST_STEP_REMOVED)

    # then both the step and its KPI's events are named
    assert conflict.problems == [
        "step 4: 'first_project' -> removed: refused, 1 completion was recorded as 'first_project'",
        "KPI 'onboarding.completed': step 4 -> no step: refused, 1 event was recorded at step 4",
    ]
    assert await snapshot(engine) == before


async def test_renumbering_steps_with_completions_is_refused(
    settings: Settings, engine: AsyncEngine
) -> None:
    # given completions of steps 2 and 3
    await complete(settings, DEFAULT_FLOW, {"ada": 3, "bob": 3, "cy": 2})
    before = await snapshot(engine)

    # when the app starts with steps 2 and 3 swapped
    conflict = await refusal(settings, STEPS_2_AND_3_SWAPPED)

    # then each number that would change meaning is named, and the KPI that would move
    assert conflict.problems == [
        "step 2: 'workspace' -> 'invite': refused, 3 completions were recorded as 'workspace'",
        "step 3: 'invite' -> 'workspace': refused, 2 completions were recorded as 'invite'",
        "KPI 'onboarding.teammate_invited': step 3 -> step 2: refused, "
        "2 events were recorded at step 3",
    ]
    assert await snapshot(engine) == before


@pytest.mark.parametrize(
    ("flow", "problem"),
    [
        pytest.param(
            INVITE_KPI_MOVED_TO_2,
            "KPI 'onboarding.teammate_invited': step 3 -> step 2: refused, "
            "1 event was recorded at step 3",
            id="moved",
        ),
        pytest.param(
            INVITE_KPI_DETACHED,
            "KPI 'onboarding.teammate_invited': step 3 -> no step: refused, "
            "1 event was recorded at step 3",
            id="detached",
        ),
    ],
)
async def test_moving_or_detaching_a_kpi_with_events_is_refused(
    settings: Settings, engine: AsyncEngine, flow: OnboardingFlow, problem: str
) -> None:
    # given one event of onboarding.teammate_invited (step 3)
    await complete(settings, DEFAULT_FLOW, {"ada": 3})
    before = await snapshot(engine)

    # when the app starts with the KPI on another step, or on none
    conflict = await refusal(settings, flow)

    # then it refuses, naming the KPI, its old and new step and its events
    assert conflict.problems == [problem]
    assert await snapshot(engine) == before


@pytest.mark.parametrize(
    ("flow", "new"),
    [pytest.param(INVITE_KPI_MOVED_TO_2, "step 2", id="moved"), (INVITE_KPI_DETACHED, "no step")],
)
async def test_moving_a_kpi_whose_step_waits_for_replay_is_refused_until_it_is_replayed(
    settings: Settings, engine: AsyncEngine, flow: OnboardingFlow, new: str
) -> None:
    # given a completion of step 3 whose onboarding.teammate_invited event could not be
    # written: replay would build it with whatever KPI step 3 has by then
    await break_event_writes(engine)
    await complete(settings, DEFAULT_FLOW, {"ada": 3})
    await repair_event_writes(engine)
    before = await snapshot(engine)
    assert before["kpi_events"] == []

    # when the app starts with the KPI moved or detached, it refuses and changes nothing
    conflict = await refusal(settings, flow)
    assert conflict.problems == [
        f"KPI 'onboarding.teammate_invited': step 3 -> {new}: refused, 1 completion was left "
        "waiting for an event at step 3 (unresolved analytics failures: replay them first)"
    ]
    assert await snapshot(engine) == before

    # and once the failures are replayed, the event exists and the same start is refused
    # for it, as for any KPI with events
    report = await ReplayProcessor(engine, flow=DEFAULT_FLOW, metrics=Metrics()).replay(limit=10)
    assert report.resolved == 2  # steps 1 and 3
    conflict = await refusal(settings, flow)
    assert conflict.problems == [
        f"KPI 'onboarding.teammate_invited': step 3 -> {new}: refused, "
        "1 event was recorded at step 3"
    ]


# -- the same changes where nothing was recorded -----------------------------------------------


@pytest.mark.parametrize(
    ("flow", "expected"),
    [
        pytest.param(
            WORKSPACE_REKEYED,
            [*DEFAULT_KEYS[:1], (2, "team_space", None), *DEFAULT_KEYS[2:]],
            id="re-keyed",
        ),
        pytest.param(LAST_STEP_REMOVED, DEFAULT_KEYS[:3], id="removed"),
        pytest.param(
            STEPS_2_AND_3_SWAPPED,
            [
                DEFAULT_KEYS[0],
                (2, "invite", "onboarding.teammate_invited"),
                (3, "workspace", None),
                DEFAULT_KEYS[3],
            ],
            id="renumbered",
        ),
        pytest.param(
            INVITE_KPI_MOVED_TO_2,
            [
                DEFAULT_KEYS[0],
                (2, "workspace", "onboarding.teammate_invited"),
                (3, "invite", None),
                DEFAULT_KEYS[3],
            ],
            id="kpi-moved",
        ),
    ],
)
async def test_any_change_is_allowed_for_steps_without_completions(
    settings: Settings,
    engine: AsyncEngine,
    flow: OnboardingFlow,
    expected: list[tuple[int, str, str | None]],
) -> None:
    # given completions of step 1 only
    await complete(settings, DEFAULT_FLOW, {"ada": 1, "bob": 1})
    [step_1] = [r for r in await history(engine) if r["step"] == 1]

    # when the app starts with a change to steps 2 and later
    async with started(settings, flow) as api:
        body = await api.execute(PROGRESS, headers=api.auth("ada"))

    # then it serves the new flow and records it; step 1 keeps its row as it was
    assert body["data"]["myOnboardingProgress"]["nextStep"] == 2
    recorded = await history(engine)
    assert keys_and_kpis(recorded) == expected
    assert recorded[0] == step_1


async def test_the_first_start_refuses_what_the_data_alone_shows(
    settings: Settings, engine: AsyncEngine
) -> None:
    # given a user who finished the four steps before the history was kept (the processor
    # writes completions and events; only a start records the flow)
    driver = create_driver(engine.url, busy_timeout_ms=5000, pool_size=1)
    try:
        processor = OnboardingProcessor(driver, flow=DEFAULT_FLOW, metrics=Metrics())
        for step in range(1, 5):
            command = CompleteStepCommand(
                step, new_key(), "web", valid_metadata(DEFAULT_FLOW, step)
            )
            await processor.complete_step("ada", command)
    finally:
        await driver.close()
    before = await snapshot(engine)
    assert before["flow_history"] == []

    # when the first start serves a flow without step 4
    conflict = await refusal(settings, LAST_STEP_REMOVED)

    # then it refuses: the completions and the event of step 4 would lose their step
    assert conflict.problems == [
        "step 4: (key not recorded) -> removed: refused, 1 completion was recorded at step 4",
        "KPI 'onboarding.completed': step 4 -> no step: refused, 1 event was recorded at step 4",
    ]
    assert await snapshot(engine) == before
    # and the flow the data was recorded under is accepted and recorded
    async with started(settings, DEFAULT_FLOW):
        pass
    assert keys_and_kpis(await history(engine)) == DEFAULT_KEYS


# -- the command line ----------------------------------------------------------------------


def run_cli(settings: Settings, flow_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ONBOARDING_KPI_DATABASE_URL": settings.resolved_database_url,
        "ONBOARDING_KPI_DATA_DIR": str(settings.data_dir),
        "ONBOARDING_KPI_FLOW_FILE": str(flow_file),
        "ONBOARDING_KPI_JWT_SECRET": TEST_SECRET,
    }
    return subprocess.run(  # noqa: S603 - our own command
        [str(REPO / ".venv" / "bin" / "onboarding-kpi"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )


def edited_default_flow(tmp_path: Path, edit: Callable[[str], str]) -> Path:
    """A copy of the packaged flow file with ``edit`` applied to its text."""
    path = tmp_path / "flow.toml"
    path.write_text(edit(DEFAULT_FLOW_FILE.read_text()))
    load_flow(path)  # a valid file: the refusal below is about history, not the file
    return path


async def test_migrate_refuses_rekeyed_steps_with_exit_code_1_and_one_line_per_problem(
    settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    # given completions of steps 1-3 recorded under the default flow
    await complete(settings, DEFAULT_FLOW, {"ada": 3, "bob": 2})
    before = await snapshot(engine)
    rekeyed = edited_default_flow(
        tmp_path,
        lambda t: t.replace('key = "invite"', 'key = "teammate"').replace(
            'key = "workspace"', 'key = "space"'
        ),
    )

    # when `onboarding-kpi migrate` runs with steps 2 and 3 re-keyed
    done = await asyncio.to_thread(run_cli, settings, rekeyed, "migrate")

    # then it exits 1 and names each step, its old and new key and its completions
    assert done.returncode == 1, done
    assert done.stderr.splitlines() == [
        "onboarding-kpi: database schema is at head",
        f"onboarding-kpi: refusing to start: the flow in {rekeyed} changes what recorded "
        "history means (nothing was changed):",
        "step 2: 'workspace' -> 'space': refused, 2 completions were recorded as 'workspace'",
        "step 3: 'invite' -> 'teammate': refused, 1 completion was recorded as 'invite'",
        HINT,
    ]
    assert await snapshot(engine) == before

    # and with the flow the data was recorded under, it succeeds and writes nothing
    same = await asyncio.to_thread(run_cli, settings, DEFAULT_FLOW_FILE, "migrate")
    assert same.returncode == 0, same
    assert same.stdout.splitlines()[-1] == f"onboarding-kpi: flow history: unchanged ({SOURCE})"
    assert await snapshot(engine) == before


async def test_serve_refuses_a_rekeyed_step_with_exit_code_1_before_listening(
    settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    # given a completion of step 2 recorded under the default flow
    await complete(settings, DEFAULT_FLOW, {"ada": 2})
    before = await snapshot(engine)
    rekeyed = edited_default_flow(
        tmp_path, lambda t: t.replace('key = "workspace"', 'key = "space"')
    )

    # when `onboarding-kpi serve` starts with step 2 re-keyed
    done = await asyncio.to_thread(run_cli, settings, rekeyed, "serve", "--port", "1")

    # then it exits 1 with the problem, and never starts uvicorn
    assert done.returncode == 1, done
    assert done.stderr.splitlines() == [
        f"onboarding-kpi: refusing to start: the flow in {rekeyed} changes what recorded "
        "history means (nothing was changed):",
        "step 2: 'workspace' -> 'space': refused, 1 completion was recorded as 'workspace'",
        HINT,
    ]
    assert await snapshot(engine) == before
