"""Completing an onboarding step (seed resource db-b7r2): the use case that owns the transaction.

One transaction per submission:

1. lock the user's progress row and claim the idempotency key (atomically);
   a known key answers with the stored result instead;
2. check eligibility, insert the completion, update progress, count it in the funnel
   rollup: any failure here rolls everything back, so no completion and no event;
3. inside a SAVEPOINT, build and insert the KPI event (and count it in its rollup
   slot); if that fails, roll back to the savepoint and write an analytics-failure
   record instead, so the completion still commits and the event can be replayed;
4. store the answer on the key and commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from app.dao import onboarding as dao
from app.dao.funnel_rollup import count_completion_in_funnel
from app.dao.onboarding import CompletionRow
from app.dao.sql import Script, StatementFailed, savepoint
from app.drivers import Driver
from app.errors import (
    AnalyticsEventBuildError,
    AnalyticsEventError,
    AnalyticsEventWriteError,
    IdempotencyConflict,
    IdempotencyConflictReason,
    PersistenceFailure,
    StepNotEligible,
    StepNotEligibleReason,
    UserFacingError,
)
from app.kpi import OnboardingFlow
from app.logging import get_logger
from app.metrics import Metrics
from app.services.analytics import KpiEventRecord, build_kpi_event, event_payload
from app.services.onboarding import CompleteStepCommand, Progress, check_eligibility, progress_of

OPERATION = "completeOnboardingStep"
log = get_logger(__name__)


class AnalyticsStatus(StrEnum):
    RECORDED = "RECORDED"
    FAILED = "FAILED"
    NOT_APPLICABLE = "NOT_APPLICABLE"


@dataclass(frozen=True, slots=True)
class CompletionOutcome:
    """The answer to a submission; stored on the idempotency key and replayed verbatim."""

    step: int
    completed_at: datetime
    progress: Progress
    analytics_status: AnalyticsStatus
    event: KpiEventRecord | None
    replayed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "completed_at": self.completed_at.isoformat(),
            "progress": self.progress.to_json(),
            "analytics_status": self.analytics_status.value,
            "event": self.event.to_json() if self.event else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, replayed: bool) -> CompletionOutcome:
        return cls(
            step=data["step"],
            completed_at=datetime.fromisoformat(data["completed_at"]),
            progress=Progress.from_json(data["progress"]),
            analytics_status=AnalyticsStatus(data["analytics_status"]),
            event=KpiEventRecord.from_json(data["event"]) if data["event"] else None,
            replayed=replayed,
        )


@dataclass(slots=True)
class _AnalyticsResult:
    status: AnalyticsStatus
    event: KpiEventRecord | None = None
    failure: AnalyticsEventError | None = None
    log_context: dict[str, Any] = field(default_factory=dict)


def utc_now() -> datetime:
    return datetime.now(UTC)


class OnboardingProcessor:
    """Completes onboarding steps: the seed's db-b7r2, owner of the transaction.

    ``complete_step`` answers with the outcome (fresh or replayed) or raises a
    ``UserFacingError``; any database failure becomes ``PersistenceFailure`` with nothing
    committed. Metrics for answers are counted by the caller; this class counts KPI
    events and analytics failures, once their transaction has committed.

    The transaction is a script (``app.dao.sql``): the driver runs it in one go, on a
    SQLite connection without leaving the event loop, or statement by statement on asyncpg.
    """

    def __init__(
        self,
        driver: Driver,
        *,
        flow: OnboardingFlow,
        metrics: Metrics,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._driver = driver
        self._flow = flow
        self._metrics = metrics
        self._clock = clock

    async def complete_step(self, user_id: str, command: CompleteStepCommand) -> CompletionOutcome:
        try:
            outcome, analytics = await self._driver.transaction(
                self._complete_in_transaction(user_id, command)
            )
        except UserFacingError as exc:
            log.info("completion.rejected", user_id=user_id, step=command.step, code=exc.code)
            raise
        except StatementFailed as exc:
            log.error("completion.persist_failed", user_id=user_id, step=command.step, exc_info=exc)
            raise PersistenceFailure(retryable=not exc.permanent) from exc
        self._after_commit(user_id, outcome, analytics)
        return outcome

    def _complete_in_transaction(
        self, user_id: str, command: CompleteStepCommand
    ) -> Script[tuple[CompletionOutcome, _AnalyticsResult | None]]:
        fingerprint = command.fingerprint()
        completed = yield from dao.lock_progress(user_id, now=self._clock())
        # Read the clock once the user's row is ours: one user's completions then get
        # increasing times, whatever order their requests arrived in.
        now = self._clock()
        claimed = yield from dao.claim_key(
            user_id=user_id,
            operation=OPERATION,
            key=command.idempotency_key,
            fingerprint=fingerprint,
            now=now,
        )
        if not claimed:
            stored = yield from dao.find_key(
                user_id=user_id, operation=OPERATION, key=command.idempotency_key
            )
            if stored is None:  # the claim just saw it, under the user's lock: cannot happen
                raise PersistenceFailure(retryable=True)
            return _replay(stored, fingerprint), None

        check_eligibility(self._flow, command.step, completed)
        completion = yield from dao.insert_completion(
            user_id=user_id,
            step=command.step,
            source=command.source,
            metadata=command.metadata,
            idempotency_key=command.idempotency_key,
            completed_at=now,
        )
        if completion is None:  # lost a race the progress lock did not see
            raise StepNotEligible(command.step, StepNotEligibleReason.ALREADY_COMPLETED)
        progress = progress_of(self._flow, [*completed, command.step])
        yield from dao.update_progress(user_id, steps=progress.completed_steps, now=now)
        # Funnel rollup: counts completions, not KPI events, so it goes with the
        # completion, outside the analytics SAVEPOINT. An event that fails is replayed
        # later without touching the funnel (already counted here, exactly once); a
        # failure here rolls the whole completion back, so the two never disagree.
        yield from count_completion_in_funnel(user_id=user_id, step=command.step, completed_at=now)

        analytics = yield from self._record_analytics(completion, now=now)
        outcome = CompletionOutcome(
            step=command.step,
            completed_at=now,
            progress=progress,
            analytics_status=analytics.status,
            event=analytics.event,
        )
        yield from dao.store_response(
            user_id=user_id,
            operation=OPERATION,
            key=command.idempotency_key,
            response=outcome.to_json(),
        )
        return outcome, analytics

    async def stored_answer(
        self, user_id: str, command: CompleteStepCommand
    ) -> CompletionOutcome | None:
        """The stored answer to exactly this submission, if one exists (read-only).

        Lets a retry get its original answer even when a new submission would be refused
        (for example by the rate limit): retrying never costs the client its answer.
        """
        try:
            stored = await self._driver.read(
                dao.find_key(user_id=user_id, operation=OPERATION, key=command.idempotency_key)
            )
        except StatementFailed as exc:
            raise PersistenceFailure(retryable=not exc.permanent) from exc
        if stored is None or stored.response is None or stored.fingerprint != command.fingerprint():
            return None
        return CompletionOutcome.from_json(stored.response, replayed=True)

    def _record_analytics(
        self, completion: CompletionRow, *, now: datetime
    ) -> Script[_AnalyticsResult]:
        step = self._flow.get(completion.step)
        assert step is not None  # eligibility checked it
        if step.kpi_id is None:
            return _AnalyticsResult(AnalyticsStatus.NOT_APPLICABLE)
        payload = event_payload(
            completion_id=completion.id,
            kpi_id=step.kpi_id,
            user_id=completion.user_id,
            step=completion.step,
            source=completion.source,
            metadata=completion.metadata,
            occurred_at=completion.completed_at,
        )
        failure: AnalyticsEventError
        try:
            event = build_kpi_event(payload, flow=self._flow)
        except AnalyticsEventBuildError as exc:
            failure = exc
        else:
            try:
                yield from savepoint(_write_event(event, recorded_at=now))
            except StatementFailed as exc:
                if exc.transaction_lost:
                    raise  # nothing can be committed any more, not even a failure record
                failure = AnalyticsEventWriteError(str(exc))
                failure.__cause__ = exc.orig
            else:
                return _AnalyticsResult(AnalyticsStatus.RECORDED, event=event)

        failure_id = yield from dao.insert_analytics_failure(
            completion_id=completion.id,
            stage=failure.stage.value,
            error_type=type(failure.__cause__ or failure).__name__,
            error_message=failure.message,
            payload=payload,
            now=now,
        )
        return _AnalyticsResult(
            AnalyticsStatus.FAILED,
            failure=failure,
            # ids only: the payload holds the user's metadata, which stays in the database
            log_context={
                "failure_id": failure_id,
                "completion_id": completion.id,
                "kpi_id": step.kpi_id,
            },
        )

    def _after_commit(
        self, user_id: str, outcome: CompletionOutcome, analytics: _AnalyticsResult | None
    ) -> None:
        """Count and log only what is durable: called once the transaction committed."""
        if outcome.replayed:
            log.info("completion.replayed", user_id=user_id, step=outcome.step)
            return
        log.info(
            "completion.recorded",
            user_id=user_id,
            step=outcome.step,
            analytics=outcome.analytics_status.value,
        )
        if outcome.event is not None:
            self._metrics.kpi_events.labels(kpi_id=outcome.event.kpi_id).inc()
        if analytics is not None and analytics.failure is not None:
            self._metrics.analytics_failures.labels(stage=analytics.failure.stage.value).inc()
            log.error(
                "analytics.event_failed",
                user_id=user_id,
                step=outcome.step,
                stage=analytics.failure.stage.value,
                error=analytics.failure.message,
                **analytics.log_context,
            )


def _write_event(event: KpiEventRecord, *, recorded_at: datetime) -> Script[None]:
    yield from dao.insert_kpi_event(event, recorded_at=recorded_at)
    yield from dao.bump_rollup(event)


def _replay(stored: dao.StoredKey, fingerprint: str) -> CompletionOutcome:
    if stored.fingerprint != fingerprint:
        raise IdempotencyConflict(IdempotencyConflictReason.KEY_REUSED_WITH_DIFFERENT_INPUT)
    if stored.response is None:
        raise IdempotencyConflict(IdempotencyConflictReason.REQUEST_IN_PROGRESS)
    return CompletionOutcome.from_json(stored.response, replayed=True)
