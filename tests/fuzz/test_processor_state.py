"""Stateful property test of the completion processor (issue 6, "Fuzzing", second part).

A hypothesis state machine sends any sequence of submissions through the real processor on a
real database: new submissions for a few users and any step (fresh keys), exact retries (same
key, same input), conflicting reuses (same key, other input), a key reused by another user,
retries of rejected attempts, bursts of concurrent identical retries and of rival
submissions, analytics write failures switched on and off (a trigger that refuses
``kpi_events`` rows), and replays of the failures. A plain Python model predicts every
answer, and after every step the database must agree with the model and keep the storage
invariants:

- one completion per (user, step);
- per completion whose step counts toward a KPI, exactly one of (KPI event, unresolved
  failure record), none for other steps; a resolved failure points at its completion's event;
- no event without its completion (same user and step);
- no idempotency key, progress row or event for a rejected submission;
- a retry returns the stored answer: same completion time, analytics status, event and
  progress, ``replayed: true``;
- the outcome is the model's: success (with RECORDED / FAILED / NOT_APPLICABLE),
  UNKNOWN_STEP, ALREADY_COMPLETED, PREVIOUS_STEP_INCOMPLETE or
  KEY_REUSED_WITH_DIFFERENT_INPUT.

All runs of a test share one database; each run works on its own users (``runN-...``), so
per-run checks look only at them while the invariants are checked over the whole database.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, note
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.errors import (
    IdempotencyConflict,
    IdempotencyConflictReason,
    StepNotEligible,
    StepNotEligibleReason,
    UserFacingError,
)
from app.kpi import OnboardingFlow
from app.processors.onboarding import AnalyticsStatus, CompletionOutcome, OnboardingProcessor
from app.processors.replay import ReplayProcessor
from app.services.onboarding import parse_complete_step
from tests.api.test_analytics_write_failure import break_event_writes
from tests.conftest import rows
from tests.flows import DEFAULT_FLOW, valid_metadata
from tests.fuzz.harness import Harness

USERS_PER_RUN = 3
SOURCES = ("api", "web", "ios")
METADATA_VARIANTS = 4  # valid_metadata(flow, step, variant): 4 different valid submissions

HEAL_EVENT_WRITES = {
    "sqlite": ["DROP TRIGGER refuse_kpi_events"],
    "postgresql": [
        "DROP TRIGGER refuse_kpi_events ON kpi_events",
        "DROP FUNCTION refuse_kpi_events()",
    ],
}


async def heal_event_writes(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for statement in HEAL_EVENT_WRITES[engine.dialect.name]:
            await conn.execute(text(statement))


@dataclass(frozen=True)
class Submission:
    """What a request asks for; the same key must always ask the same."""

    step: int
    source: str
    metadata: int  # a valid_metadata variant, so submissions are hashable and print short

    def command(self, key: str) -> Any:
        return parse_complete_step(
            DEFAULT_FLOW,
            step=self.step,
            idempotency_key=key,
            source=self.source,
            metadata=self.metadata_sent(),
        )

    def metadata_sent(self) -> dict[str, Any]:
        return valid_metadata(DEFAULT_FLOW, self.step, self.metadata)


@dataclass(frozen=True)
class Stored:
    """A recorded submission and the answer stored on its key."""

    user: str
    key: str
    submission: Submission
    outcome: CompletionOutcome


# What the model expects of one request.
@dataclass(frozen=True)
class New:
    status: AnalyticsStatus


@dataclass(frozen=True)
class Replay:
    stored: Stored


@dataclass(frozen=True)
class Conflict:
    pass


@dataclass(frozen=True)
class NotEligible:
    reason: StepNotEligibleReason


Expected = New | Replay | Conflict | NotEligible


@dataclass
class Model:
    flow: OnboardingFlow
    writes_broken: bool = False
    keys: dict[tuple[str, str], Stored] = field(default_factory=dict)
    completions: dict[tuple[str, int], Stored] = field(default_factory=dict)
    #: Analytics state per KPI completion: RECORDED, FAILED, or RESOLVED (replayed later).
    analytics: dict[tuple[str, int], str] = field(default_factory=dict)

    def expect(self, user: str, key: str, submission: Submission) -> Expected:
        stored = self.keys.get((user, key))
        if stored is not None:
            return Replay(stored) if stored.submission == submission else Conflict()
        done = {step for (u, step) in self.completions if u == user}
        if self.flow.get(submission.step) is None:
            return NotEligible(StepNotEligibleReason.UNKNOWN_STEP)
        if submission.step in done:
            return NotEligible(StepNotEligibleReason.ALREADY_COMPLETED)
        if any(earlier not in done for earlier in range(1, submission.step)):
            return NotEligible(StepNotEligibleReason.PREVIOUS_STEP_INCOMPLETE)
        step = self.flow.get(submission.step)
        assert step is not None
        if step.kpi_id is None:
            return New(AnalyticsStatus.NOT_APPLICABLE)
        return New(AnalyticsStatus.FAILED if self.writes_broken else AnalyticsStatus.RECORDED)

    def record(self, stored: Stored) -> None:
        self.keys[(stored.user, stored.key)] = stored
        self.completions[(stored.user, stored.submission.step)] = stored
        status = stored.outcome.analytics_status
        if status is not AnalyticsStatus.NOT_APPLICABLE:
            self.analytics[(stored.user, stored.submission.step)] = status.value

    def last_completed_at(self, user: str) -> datetime | None:
        times = [s.outcome.completed_at for (u, _), s in self.completions.items() if u == user]
        return max(times, default=None)


def check(
    model: Model, user: str, key: str, submission: Submission, result: Any, expected: Expected
) -> Stored | None:
    """Compare one answer with the model's expectation; return what to record, if new."""
    note(f"{user} {key} {submission} -> {result!r} (expected {expected!r})")
    if isinstance(expected, NotEligible):
        assert isinstance(result, StepNotEligible), result
        assert result.reason is expected.reason and result.step == submission.step
        return None
    if isinstance(expected, Conflict):
        assert isinstance(result, IdempotencyConflict), result
        assert result.reason is IdempotencyConflictReason.KEY_REUSED_WITH_DIFFERENT_INPUT
        return None
    assert isinstance(result, CompletionOutcome), result
    if isinstance(expected, Replay):
        # The stored answer, verbatim: same time, analytics status, event and progress.
        assert result.replayed is True
        assert result.to_json() == expected.stored.outcome.to_json()
        return None
    assert result.replayed is False
    assert result.step == submission.step
    assert result.analytics_status is expected.status
    previous = model.last_completed_at(user)
    assert previous is None or result.completed_at >= previous, (previous, result.completed_at)
    done = sorted({step for (u, step) in model.completions if u == user} | {submission.step})
    assert result.progress.completed_steps == done
    if expected.status is AnalyticsStatus.RECORDED:
        event = result.event
        assert event is not None
        assert (event.user_id, event.step, event.source) == (
            user,
            submission.step,
            submission.source,
        )
        assert event.kpi_id == model.flow.steps[submission.step - 1].kpi_id
        assert event.occurred_at == result.completed_at
        assert event.metadata == submission.metadata_sent()
    else:
        assert result.event is None
    return Stored(user, key, submission, result)


async def attempt(
    processor: OnboardingProcessor, user: str, key: str, submission: Submission
) -> CompletionOutcome | UserFacingError:
    try:
        return await processor.complete_step(user, submission.command(key))
    except (StepNotEligible, IdempotencyConflict) as exc:
        return exc  # anything else (PersistenceFailure, a crash) fails the test


async def assert_invariants(engine: AsyncEngine, flow: OnboardingFlow, prefix: str = "") -> None:
    """``tests.invariants.assert_core_invariants`` for the users whose id starts with
    ``prefix``, generalised to replayed failures: a resolved failure stays as history next to
    the event that resolved it, so a KPI completion has exactly one of (event, *unresolved*
    failure), and every resolved failure names its completion's event.

    Scoped to one run's users so that a run's verdict never depends on earlier runs (which
    would make hypothesis's replays of a failing run inconsistent).
    """
    like = {"prefix": f"{prefix}%"}
    duplicates = await rows(
        engine,
        "SELECT user_id, step FROM step_completions WHERE user_id LIKE :prefix "
        "GROUP BY user_id, step HAVING count(*) > 1",
        **like,
    )
    assert duplicates == []
    per_completion = await rows(
        engine,
        "SELECT c.id, c.user_id, c.step, "
        "(SELECT count(*) FROM kpi_events e WHERE e.completion_id = c.id) AS events, "
        "(SELECT count(*) FROM analytics_failures f WHERE f.completion_id = c.id "
        " AND f.resolved_at IS NULL) AS failures "
        "FROM step_completions c WHERE c.user_id LIKE :prefix",
        **like,
    )
    for row in per_completion:
        step = flow.get(row["step"])
        assert step is not None, row
        assert row["events"] + row["failures"] == (1 if step.kpi_id else 0), row
    resolved = await rows(
        engine,
        "SELECT f.id, f.resolved_event_id, e.id AS event_id FROM analytics_failures f "
        "JOIN step_completions c ON c.id = f.completion_id "
        "LEFT JOIN kpi_events e ON e.completion_id = f.completion_id "
        "WHERE f.resolved_at IS NOT NULL AND c.user_id LIKE :prefix",
        **like,
    )
    for row in resolved:
        assert row["event_id"] is not None, row
        assert str(row["resolved_event_id"]) == str(row["event_id"]), row
    orphans = await rows(
        engine,
        "SELECT e.id FROM kpi_events e LEFT JOIN step_completions c ON c.id = e.completion_id "
        "WHERE e.user_id LIKE :prefix "
        "AND (c.id IS NULL OR c.user_id != e.user_id OR c.step != e.step)",
        **like,
    )
    assert orphans == []


async def stored_state(engine: AsyncEngine, prefix: str) -> dict[str, Any]:
    """This run's rows, in the model's terms."""
    like = {"prefix": f"{prefix}%"}
    completions = await rows(
        engine, "SELECT user_id, step FROM step_completions WHERE user_id LIKE :prefix", **like
    )
    events = await rows(
        engine, "SELECT user_id, step FROM kpi_events WHERE user_id LIKE :prefix", **like
    )
    failures = await rows(
        engine,
        "SELECT c.user_id, c.step, f.resolved_at IS NOT NULL AS resolved "
        "FROM analytics_failures f JOIN step_completions c ON c.id = f.completion_id "
        "WHERE c.user_id LIKE :prefix",
        **like,
    )
    keys = await rows(
        engine, "SELECT user_id, key FROM idempotency_keys WHERE user_id LIKE :prefix", **like
    )
    progress = await rows(
        engine,
        "SELECT user_id, completed_steps FROM onboarding_progress WHERE user_id LIKE :prefix",
        **like,
    )
    return {
        "completions": {(r["user_id"], r["step"]) for r in completions},
        "events": {(r["user_id"], r["step"]) for r in events},
        "failures": {(r["user_id"], r["step"]): bool(r["resolved"]) for r in failures},
        "keys": {(r["user_id"], r["key"]) for r in keys},
        "progress": {r["user_id"]: sorted(_json(r["completed_steps"])) for r in progress},
    }


def _json(value: Any) -> Any:
    """A JSON column read with raw SQL: text on SQLite, decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value


def expected_state(model: Model) -> dict[str, Any]:
    events = {k for k, status in model.analytics.items() if status in {"RECORDED", "RESOLVED"}}
    failures = {
        k: status == "RESOLVED"
        for k, status in model.analytics.items()
        if status in {"FAILED", "RESOLVED"}
    }
    progress: dict[str, list[int]] = {}
    for user, step in model.completions:
        progress.setdefault(user, []).append(step)
    return {
        "completions": set(model.completions),
        "events": events,
        "failures": failures,
        "keys": set(model.keys),
        "progress": {user: sorted(steps) for user, steps in progress.items()},
    }


def machine_for(harness: Harness) -> type[RuleBasedStateMachine]:
    runs = itertools.count()
    assert harness.app is not None
    processor: OnboardingProcessor = harness.app.state.services.processor
    replayer: ReplayProcessor = harness.app.state.services.replay
    flow = harness.flow
    submissions = st.builds(
        Submission,
        step=st.integers(1, flow.total_steps + 2),  # two unknown steps too
        source=st.sampled_from(SOURCES),
        metadata=st.integers(0, METADATA_VARIANTS - 1),
    )

    class ProcessorMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.prefix = f"run{next(runs)}-"
            self.users = [f"{self.prefix}user{i}" for i in range(USERS_PER_RUN)]
            self.model = Model(flow)
            self.keys = itertools.count()
            #: Attempts that were rejected: their keys were not stored, so they may be
            #: retried and then evaluated afresh.
            self.rejected: list[tuple[str, str, Submission]] = []

        def new_key(self) -> str:
            return f"{self.prefix}key-{next(self.keys):06d}-padding"

        def send(self, user: str, key: str, submission: Submission) -> None:
            expected = self.model.expect(user, key, submission)
            result = harness.run(attempt(processor, user, key, submission))
            stored = check(self.model, user, key, submission, result, expected)
            if stored is not None:
                self.model.record(stored)
            elif isinstance(expected, NotEligible | Conflict):
                self.rejected.append((user, key, submission))

        @rule(user=st.integers(0, USERS_PER_RUN - 1), submission=submissions)
        def submit(self, user: int, submission: Submission) -> None:
            self.send(self.users[user], self.new_key(), submission)

        @rule(user=st.integers(0, USERS_PER_RUN - 1), data=st.data())
        def submit_next_step(self, user: int, data: st.DataObject) -> None:
            """The user's next step: the path that records, so that runs get far."""
            name = self.users[user]
            done = {step for (u, step) in self.model.completions if u == name}
            step = next((s.step for s in flow.steps if s.step not in done), flow.total_steps)
            source = data.draw(st.sampled_from(SOURCES))
            self.send(name, self.new_key(), Submission(step, source, 0))

        @precondition(lambda self: self.model.keys)
        @rule(data=st.data())
        def retry(self, data: st.DataObject) -> None:
            stored = data.draw(st.sampled_from(sorted(self.model.keys.values(), key=_order)))
            self.send(stored.user, stored.key, stored.submission)

        @precondition(lambda self: self.model.keys)
        @rule(data=st.data(), submission=submissions)
        def reuse_key_for_other_input(self, data: st.DataObject, submission: Submission) -> None:
            stored = data.draw(st.sampled_from(sorted(self.model.keys.values(), key=_order)))
            if submission != stored.submission:  # (an equal one is the retry rule's job)
                self.send(stored.user, stored.key, submission)

        @precondition(lambda self: self.model.keys)
        @rule(data=st.data(), user=st.integers(0, USERS_PER_RUN - 1), submission=submissions)
        def reuse_key_as_other_user(
            self, data: st.DataObject, user: int, submission: Submission
        ) -> None:
            stored = data.draw(st.sampled_from(sorted(self.model.keys.values(), key=_order)))
            self.send(self.users[user], stored.key, submission)

        @precondition(lambda self: self.rejected)
        @rule(data=st.data())
        def retry_rejected(self, data: st.DataObject) -> None:
            user, key, submission = data.draw(st.sampled_from(self.rejected))
            self.send(user, key, submission)

        @rule(
            user=st.integers(0, USERS_PER_RUN - 1),
            submission=submissions,
            copies=st.integers(2, 4),
        )
        def concurrent_retries(self, user: int, submission: Submission, copies: int) -> None:
            """The same submission sent several times at once: recorded once, and every
            other copy gets the stored answer (or all get the same rejection)."""
            name, key = self.users[user], self.new_key()
            expected = self.model.expect(name, key, submission)
            results = harness.run(
                _gather(*(attempt(processor, name, key, submission) for _ in range(copies)))
            )
            note(f"concurrent x{copies}: {name} {key} {submission} -> {results!r}")
            if not isinstance(expected, New):
                for result in results:
                    check(self.model, name, key, submission, result, expected)
                self.rejected.append((name, key, submission))
                return
            firsts = [r for r in results if isinstance(r, CompletionOutcome) and not r.replayed]
            assert len(firsts) == 1, results
            stored = check(self.model, name, key, submission, firsts[0], expected)
            assert stored is not None
            for result in results:
                if result is not firsts[0]:
                    check(self.model, name, key, submission, result, Replay(stored))
            self.model.record(stored)

        @rule(user=st.integers(0, USERS_PER_RUN - 1), data=st.data(), rivals=st.integers(2, 3))
        def rival_submissions(self, user: int, data: st.DataObject, rivals: int) -> None:
            """Several submissions of the user's next step at once, each with its own key:
            exactly one records it, the others are told it is already completed."""
            name = self.users[user]
            done = {step for (u, step) in self.model.completions if u == name}
            step = next((s.step for s in flow.steps if s.step not in done), None)
            if step is None:  # onboarding complete: nothing to race for
                return
            sent = [
                (self.new_key(), Submission(step, data.draw(st.sampled_from(SOURCES)), 0))
                for _ in range(rivals)
            ]
            expected = self.model.expect(name, sent[0][0], sent[0][1])
            results = harness.run(
                _gather(*(attempt(processor, name, key, sub) for key, sub in sent))
            )
            note(f"rivals: {name} {sent} -> {results!r}")
            winners = [i for i, r in enumerate(results) if isinstance(r, CompletionOutcome)]
            assert len(winners) == 1, results
            key, submission = sent[winners[0]]
            stored = check(self.model, name, key, submission, results[winners[0]], expected)
            assert stored is not None
            for i, result in enumerate(results):
                if i != winners[0]:
                    check(
                        self.model,
                        name,
                        sent[i][0],
                        sent[i][1],
                        result,
                        NotEligible(StepNotEligibleReason.ALREADY_COMPLETED),
                    )
                    self.rejected.append((name, *sent[i]))
            self.model.record(stored)

        @precondition(lambda self: not self.model.writes_broken)
        @rule()
        def break_analytics_writes(self) -> None:
            harness.run(break_event_writes(harness.engine))
            self.model.writes_broken = True

        @precondition(lambda self: self.model.writes_broken)
        @rule()
        def heal_analytics_writes(self) -> None:
            harness.run(heal_event_writes(harness.engine))
            self.model.writes_broken = False

        @rule()
        def replay_failures(self) -> None:
            report = harness.run(replayer.replay(limit=1000))
            ours = [k for k, status in self.model.analytics.items() if status == "FAILED"]
            note(f"replay -> {report} ({len(ours)} of ours unresolved)")
            if self.model.writes_broken:
                assert report.resolved == 0
                assert report.remaining >= len(ours)
            else:
                assert report.resolved >= len(ours)
                assert report.still_failing == 0 and report.remaining == 0
                for k in ours:
                    self.model.analytics[k] = "RESOLVED"

        @invariant()
        def database_agrees_with_the_model(self) -> None:
            harness.run(assert_invariants(harness.engine, flow, self.prefix))
            assert harness.run(stored_state(harness.engine, self.prefix)) == expected_state(
                self.model
            )

        def teardown(self) -> None:
            if self.model.writes_broken:
                harness.run(heal_event_writes(harness.engine))

    return ProcessorMachine


def _order(stored: Stored) -> tuple[str, str]:
    return stored.user, stored.key


async def _gather(*attempts: Any) -> list[CompletionOutcome | UserFacingError]:
    return list(await asyncio.gather(*attempts))


def test_processor_keeps_its_invariants(harness: Harness) -> None:
    run_state_machine_as_test(
        machine_for(harness),
        settings=hypothesis_settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            derandomize=True,
            database=None,
            # Every step is a real database transaction (and an invariant check over the
            # whole database): slower than hypothesis expects of pure generation.
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    # And over the whole database, every run together.
    harness.run(assert_invariants(harness.engine, harness.flow))
