"""Replaying analytics failures: rebuild the missing KPI events from their completions.

The completion is the source of truth. Each failure is replayed in its own transaction,
holding a lock on its row (PostgreSQL skips rows another replayer holds), and the event
insert does nothing if the event already exists, so replays are idempotent and safe to
run from several places at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.dao.analytics import AnalyticsDao
from app.dao.onboarding import bump_rollup
from app.dao.sql import StatementFailed, run_on_connection
from app.errors import AnalyticsEventBuildError, AnalyticsFailureStage, InvalidQuery
from app.kpi import OnboardingFlow
from app.logging import get_logger
from app.metrics import Metrics
from app.processors.onboarding import utc_now
from app.services.analytics import build_kpi_event, event_payload
from app.unit_of_work import UnitOfWork

MAX_REPLAY_BATCH = 1000
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ReplayReport:
    resolved: int
    still_failing: int
    remaining: int


class ReplayProcessor:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        flow: OnboardingFlow,
        metrics: Metrics,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self._flow = flow
        self._metrics = metrics
        self._clock = clock

    async def replay(self, *, limit: int = 100) -> ReplayReport:
        if not 1 <= limit <= MAX_REPLAY_BATCH:
            raise InvalidQuery(f"limit must be between 1 and {MAX_REPLAY_BATCH}")
        async with self._engine.connect() as conn:
            ids = await AnalyticsDao(conn).unresolved_failure_ids(limit)
        resolved = still_failing = 0
        for failure_id in ids:
            outcome = await self._replay_one(failure_id)
            resolved += outcome is True
            still_failing += outcome is False
        async with self._engine.connect() as conn:
            remaining = await AnalyticsDao(conn).count_failures(unresolved_only=True)
        log.info(
            "analytics.replayed",
            resolved=resolved,
            still_failing=still_failing,
            remaining=remaining,
        )
        return ReplayReport(resolved, still_failing, remaining)

    async def _replay_one(self, failure_id: int) -> bool | None:
        """True: resolved; False: failed again (recorded); None: someone else has it."""
        now = self._clock()
        async with UnitOfWork(self._engine) as uow:
            dao = AnalyticsDao(uow.connection)
            failure = await dao.lock_unresolved_failure(failure_id)
            if failure is None:
                return None
            completion = await dao.completion(failure.completion_id)
            step = self._flow.get(completion.step)
            payload = event_payload(
                completion_id=completion.id,
                kpi_id=step.kpi_id if step else None,
                user_id=completion.user_id,
                step=completion.step,
                source=completion.source,
                metadata=completion.metadata,
                occurred_at=completion.completed_at,
            )
            stage, error = AnalyticsFailureStage.BUILD, ""
            try:
                event = build_kpi_event(payload, flow=self._flow)
                stage = AnalyticsFailureStage.WRITE
                async with uow.savepoint():
                    event_id = await dao.insert_event_if_absent(event, recorded_at=now)
                    if event_id == event.id:
                        await run_on_connection(uow.connection, bump_rollup(event))
            except (AnalyticsEventBuildError, DBAPIError, StatementFailed) as exc:
                error = exc.message if isinstance(exc, AnalyticsEventBuildError) else _cause(exc)
                await dao.record_failed_attempt(
                    failure_id,
                    stage=stage.value,
                    error_type=type(exc).__name__,
                    error_message=error,
                )
                await uow.commit()
                log.error(
                    "analytics.replay_failed", failure_id=failure_id, stage=stage.value, error=error
                )
                return False
            await dao.resolve_failure(failure_id, event_id=event_id, now=now)
            await uow.commit()
        if event_id == event.id:
            self._metrics.kpi_events.labels(kpi_id=event.kpi_id).inc()
        log.info("analytics.failure_resolved", failure_id=failure_id, event_id=event_id)
        return True


def _cause(exc: DBAPIError | StatementFailed) -> str:
    """The driver's own message: what the database said, without SQLAlchemy's wrapping."""
    return str(exc.orig)
