"""Building the leading-KPI analytics event (seed step 4): pure, no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.errors import AnalyticsEventBuildError
from app.kpi import OnboardingFlow
from app.services.tracking_plan import metadata_problems


@dataclass(frozen=True, slots=True)
class KpiEventRecord:
    """An analytics event ready to persist; ``occurred_at`` is the completion's time."""

    id: str
    completion_id: int
    kpi_id: str
    user_id: str
    step: int
    source: str
    metadata: dict[str, Any]
    occurred_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "completion_id": self.completion_id,
            "kpi_id": self.kpi_id,
            "user_id": self.user_id,
            "step": self.step,
            "source": self.source,
            "metadata": self.metadata,
            "occurred_at": self.occurred_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KpiEventRecord:
        return cls(
            id=data["id"],
            completion_id=data["completion_id"],
            kpi_id=data["kpi_id"],
            user_id=data["user_id"],
            step=data["step"],
            source=data["source"],
            metadata=data["metadata"],
            occurred_at=datetime.fromisoformat(data["occurred_at"]),
        )


ROLLUP_SLOT = timedelta(minutes=15)
ROLLUP_SHARDS = 8


def rollup_slot(moment: datetime) -> datetime:
    """The 15-minute UTC slot holding ``moment`` (slots are aligned to the epoch)."""
    moment = moment.astimezone(UTC)
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


def rollup_shard(event_id: str) -> int:
    return int(event_id.replace("-", "")[:8], 16) % ROLLUP_SHARDS


def event_payload(
    *,
    completion_id: int,
    kpi_id: str | None,
    user_id: str,
    step: int,
    source: str,
    metadata: dict[str, Any],
    occurred_at: datetime,
) -> dict[str, Any]:
    """Everything needed to build the event again later; stored on a failure record."""
    return {
        "completion_id": completion_id,
        "kpi_id": kpi_id,
        "user_id": user_id,
        "step": step,
        "source": source,
        "metadata": metadata,
        "occurred_at": occurred_at.isoformat(),
    }


def build_kpi_event(
    payload: dict[str, Any], *, flow: OnboardingFlow, event_id: str | None = None
) -> KpiEventRecord:
    """Validate a payload into an event; raise ``AnalyticsEventBuildError`` if it can't be.

    The KPI must be one the flow declares, and the metadata must still satisfy the step's
    tracking plan: a replay under a flow that changed since the completion finds out here,
    and the failure stays recorded until the flow (or the data) is fixed.
    """
    kpi_id = payload.get("kpi_id")
    if not kpi_id:
        raise AnalyticsEventBuildError("the step has no KPI identifier")
    if flow.kpi(kpi_id) is None:
        raise AnalyticsEventBuildError(f"'{kpi_id}' is not a KPI declared by the flow")
    if not payload.get("user_id"):
        raise AnalyticsEventBuildError("the event has no user identifier")
    occurred_at = datetime.fromisoformat(payload["occurred_at"])
    if occurred_at.tzinfo is None:
        raise AnalyticsEventBuildError("the event timestamp has no time zone")
    step = flow.get(payload["step"])
    if step is None:
        raise AnalyticsEventBuildError(f"step {payload['step']} is not in the flow")
    metadata = dict(payload["metadata"])
    if problems := metadata_problems(step, metadata):
        details = "; ".join(f"{e.path[-1]}: {e.message}" for e in problems)
        raise AnalyticsEventBuildError(
            f"the metadata does not satisfy the tracking plan of step {step.step} "
            f"({step.key}): {details}"
        )
    return KpiEventRecord(
        id=event_id or str(uuid.uuid4()),
        completion_id=payload["completion_id"],
        kpi_id=kpi_id,
        user_id=payload["user_id"],
        step=payload["step"],
        source=payload["source"],
        metadata=metadata,
        occurred_at=occurred_at,
    )
