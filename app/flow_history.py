"""Changing a flow without losing history: reconcile the served flow with the recorded one.

Completions and KPI events store a step *number*. A flow file that gives a recorded number
another meaning would silently rewrite history, so before serving, the flow is compared
with ``flow_history`` (what each number has meant so far) and:

- allowed: appending steps; new titles, descriptions, labels and fields (none is stored);
  new KPIs, and a KPI attached to a step that had none (``kpi_since`` says from when);
  anything at all for a step with no completions, and for a KPI with no events;
- refused, for a step with completions: renumbering, removing or re-keying it; for a KPI
  with events, or whose step has unresolved analytics failures (replay would build their
  events under the new flow): moving it to another step or detaching it.

A refusal is a ``FlowHistoryConflict`` with one line per problem, and nothing is written.
Otherwise the new flow is recorded in one transaction, under a lock, so two processes
starting at once cannot both write; when nothing changed, nothing is written (and, on the
common restart, no lock is taken).

The first start after migration 0004 has no history to compare with (no key was stored
before it); it still refuses what the data alone can tell: completions at step numbers
past the new flow's end, and KPI events recorded at another step than the flow's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from app.dao.flow_history import FlowHistoryDao, RecordedStep
from app.kpi import OnboardingFlow
from app.processors.onboarding import utc_now
from app.unit_of_work import UnitOfWork

HINT = (
    "keep every step that has completions at its number and key, and every KPI that has "
    "events on its step (append new steps at the end), or serve the flow the data was "
    "recorded under"
)


class FlowHistoryConflict(RuntimeError):
    """The flow would change what recorded completions or events mean; ``problems`` holds
    one line per step or KPI."""

    def __init__(self, problems: Sequence[str], *, source: str) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(
            f"refusing to start: the flow in {source} changes what recorded history means "
            "(nothing was changed):\n" + "\n".join(self.problems) + f"\n{HINT}"
        )


@dataclass(frozen=True, slots=True)
class StepChange:
    """Step number ``step`` was ``old_key`` and becomes ``new_key``.

    ``old_key`` None: the number has completions from before the history was kept;
    ``new_key`` None: the flow no longer has the step.
    """

    step: int
    old_key: str | None
    new_key: str | None


@dataclass(frozen=True, slots=True)
class KpiMove:
    """KPI ``kpi_id`` was counted at ``old_step`` and now at ``new_step`` (None: no step)."""

    kpi_id: str
    old_step: int
    new_step: int | None


@dataclass(frozen=True, slots=True)
class FlowDiff:
    """What the flow changes: the changes that need checking, and the rows to write."""

    step_changes: tuple[StepChange, ...]
    kpi_moves: tuple[KpiMove, ...]
    rows: tuple[RecordedStep, ...]  # to insert or replace
    removed: tuple[int, ...]  # step numbers to delete
    added: int  # how many of ``rows`` are new step numbers

    @property
    def writes_nothing(self) -> bool:
        return not self.rows and not self.removed


@dataclass(frozen=True, slots=True)
class FlowRecorded:
    """What reconciling wrote (all zero: the flow was already recorded as it is)."""

    source: str
    added: int = 0
    changed: int = 0
    removed: int = 0

    @property
    def wrote_anything(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def __str__(self) -> str:
        if not self.wrote_anything:
            return f"flow history: unchanged ({self.source})"
        return (
            f"flow history: recorded {self.source}: {self.added} steps added, "
            f"{self.changed} changed, {self.removed} removed"
        )


def diff_flow(recorded: Sequence[RecordedStep], flow: OnboardingFlow, *, now: datetime) -> FlowDiff:
    """Compare the recorded steps with ``flow`` (pure; counts are looked up afterwards)."""
    by_step = {r.step: r for r in recorded}
    changes: list[StepChange] = []
    rows: list[RecordedStep] = []
    added = 0
    for step in flow.steps:
        old = by_step.get(step.step)
        if old is None:
            added += 1
            rows.append(_fresh(step.step, step.key, step.kpi_id, now=now))
        elif old.key != step.key:
            changes.append(StepChange(step.step, old.key, step.key))
            rows.append(_fresh(step.step, step.key, step.kpi_id, now=now))
        elif old.kpi_id != step.kpi_id:
            since = now if step.kpi_id is not None else None
            rows.append(
                RecordedStep(
                    step=old.step,
                    key=old.key,
                    kpi_id=step.kpi_id,
                    kpi_since=since,
                    recorded_at=old.recorded_at,
                    updated_at=now,
                )
            )
    removed = tuple(r.step for r in recorded if flow.get(r.step) is None)
    changes.extend(StepChange(n, by_step[n].key, None) for n in removed)
    new_kpi_steps = {s.kpi_id: s.step for s in flow.steps if s.kpi_id is not None}
    moves = tuple(
        KpiMove(r.kpi_id, r.step, new_kpi_steps.get(r.kpi_id))
        for r in recorded
        if r.kpi_id is not None and new_kpi_steps.get(r.kpi_id) != r.step
    )
    return FlowDiff(tuple(changes), moves, tuple(rows), removed, added)


def unrecorded_changes(
    flow: OnboardingFlow,
    *,
    completions_past_end: Mapping[int, int],
    event_steps: Mapping[tuple[str, int], int],
) -> tuple[list[StepChange], list[KpiMove]]:
    """With no history yet: the changes the data alone shows (see the module docstring)."""
    kpi_steps = {s.kpi_id: s.step for s in flow.steps if s.kpi_id is not None}
    changes = [StepChange(n, None, None) for n in sorted(completions_past_end)]
    moves = [
        KpiMove(kpi_id, step, kpi_steps.get(kpi_id))
        for kpi_id, step in sorted(event_steps)
        if kpi_steps.get(kpi_id) != step
    ]
    return changes, moves


def conflicts(
    step_changes: Sequence[StepChange],
    kpi_moves: Sequence[KpiMove],
    *,
    completions: Mapping[int, int],
    events: Mapping[tuple[str, int], int],
    failures: Mapping[int, int] | None = None,
) -> list[str]:
    """One line per change that would touch recorded completions or events."""
    lines: list[str] = []
    for change in step_changes:
        if n := completions.get(change.step, 0):
            old = f"'{change.old_key}'" if change.old_key else "(key not recorded)"
            new = f"'{change.new_key}'" if change.new_key else "removed"
            under = f"as '{change.old_key}'" if change.old_key else f"at step {change.step}"
            lines.append(
                f"step {change.step}: {old} -> {new}: refused, "
                f"{_count(n, 'completion')} recorded {under}"
            )
    for move in kpi_moves:
        recorded = []
        if n := events.get((move.kpi_id, move.old_step), 0):
            recorded.append(f"{_count(n, 'event')} recorded at step {move.old_step}")
        if n := (failures or {}).get(move.old_step, 0):
            recorded.append(
                f"{_count(n, 'completion')} left waiting for an event at step "
                f"{move.old_step} (unresolved analytics failures: replay them first)"
            )
        if recorded:
            new = f"step {move.new_step}" if move.new_step is not None else "no step"
            lines.append(
                f"KPI '{move.kpi_id}': step {move.old_step} -> {new}: refused, "
                + " and ".join(recorded)
            )
    return lines


async def reconcile_flow(
    engine: AsyncEngine, *, flow: OnboardingFlow, clock: Callable[[], datetime] = utc_now
) -> FlowRecorded:
    """Check ``flow`` against the history and record it; ``FlowHistoryConflict`` if refused.

    Runs once the schema is at head (``onboarding-kpi migrate``/``serve``, and the app's
    lifespan).
    """
    async with engine.connect() as conn:  # the common restart: no lock, no write
        recorded = await FlowHistoryDao(conn).recorded_steps()
    if recorded and diff_flow(recorded, flow, now=clock()).writes_nothing:
        return FlowRecorded(flow.source)
    async with UnitOfWork(engine) as uow:
        dao = FlowHistoryDao(uow.connection)
        await dao.lock()
        recorded = await dao.recorded_steps()  # again: another process may have written
        diff = diff_flow(recorded, flow, now=clock())
        if recorded:
            changes, moves = list(diff.step_changes), list(diff.kpi_moves)
            completions = await dao.completions_at({c.step for c in changes})
            events = await dao.events_of({m.kpi_id for m in moves})
            failures = await dao.unresolved_failures_at({m.old_step for m in moves})
        else:
            completions = await dao.completions_after(flow.total_steps)
            events = await dao.all_event_steps()
            changes, moves = unrecorded_changes(
                flow, completions_past_end=completions, event_steps=events
            )
            failures = {}  # with no history, no step is known to have had a KPI
        problems = conflicts(
            changes, moves, completions=completions, events=events, failures=failures
        )
        if problems:
            raise FlowHistoryConflict(problems, source=flow.source)  # the exit rolls back
        if diff.writes_nothing:
            return FlowRecorded(flow.source)
        await dao.record(rows=diff.rows, removed=diff.removed)
        await uow.commit()
    return FlowRecorded(
        flow.source,
        added=diff.added,
        changed=len(diff.rows) - diff.added,
        removed=len(diff.removed),
    )


def _fresh(step: int, key: str, kpi_id: str | None, *, now: datetime) -> RecordedStep:
    """A row for a step number that starts a new meaning now."""
    return RecordedStep(
        step=step,
        key=key,
        kpi_id=kpi_id,
        kpi_since=now if kpi_id is not None else None,
        recorded_at=now,
        updated_at=now,
    )


def _count(n: int, noun: str) -> str:
    return f"1 {noun} was" if n == 1 else f"{n} {noun}s were"
