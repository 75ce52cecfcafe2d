"""Building the KPI analytics event (app/services/analytics.py): pure, no I/O."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from app.errors import AnalyticsEventBuildError, AnalyticsEventError, AnalyticsFailureStage
from app.flow_file import DEFAULT_FLOW, parse_flow
from app.services.analytics import KpiEventRecord, event_payload
from app.services.analytics import build_kpi_event as build_with_flow
from tests.flows import valid_metadata

OCCURRED_AT = datetime(2026, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)
# The default flow's KPIs, and a step 1 that keeps free-form metadata next to its field.
FLOW = parse_flow(
    {
        "kpis": [
            {"id": k.id, "name": k.name, "description": k.description, "kind": k.kind.value}
            for k in DEFAULT_FLOW.kpis
        ],
        "steps": [
            {
                "key": "profile",
                "title": "Profile",
                "kpi": "onboarding.step_1_completed",
                "extra": "allow",
                "fields": [{"name": "plan", "label": "Plan", "type": "string"}],
            },
            {"key": "strict", "title": "Strict", "kpi": "onboarding.completed"},
        ],
    },
    source="test",
)


def build_kpi_event(data: dict[str, Any], *, event_id: str | None = None) -> KpiEventRecord:
    return build_with_flow(data, flow=FLOW, event_id=event_id)


def payload(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "completion_id": 7,
        "kpi_id": "onboarding.step_1_completed",
        "user_id": "alice",
        "step": 1,
        "source": "web",
        "metadata": {"plan": "pro", "seats": 3},
        "occurred_at": OCCURRED_AT,
    }
    fields.update(overrides)
    return event_payload(**fields)


def build_error(data: dict[str, Any]) -> AnalyticsEventBuildError:
    with pytest.raises(AnalyticsEventBuildError) as excinfo:
        build_kpi_event(data)
    error = excinfo.value
    assert isinstance(error, AnalyticsEventError)
    assert error.stage is AnalyticsFailureStage.BUILD
    return error


# --- the payload ------------------------------------------------------------------------------


def test_event_payload_is_json_ready() -> None:
    data = payload()

    assert data == {
        "completion_id": 7,
        "kpi_id": "onboarding.step_1_completed",
        "user_id": "alice",
        "step": 1,
        "source": "web",
        "metadata": {"plan": "pro", "seats": 3},
        "occurred_at": "2026-03-14T15:09:26.535897+00:00",
    }
    # it is stored on a failure record, so it must survive JSON unchanged
    assert json.loads(json.dumps(data)) == data


def test_event_payload_keeps_a_missing_kpi_id() -> None:
    assert payload(kpi_id=None)["kpi_id"] is None


# --- building the event -----------------------------------------------------------------------


def test_build_event_from_a_kpi_of_the_flow() -> None:
    data = payload(kpi_id="onboarding.step_1_completed")

    event = build_kpi_event(data, event_id="evt-1")

    assert event == KpiEventRecord(
        id="evt-1",
        completion_id=7,
        kpi_id="onboarding.step_1_completed",
        user_id="alice",
        step=1,
        source="web",
        metadata={"plan": "pro", "seats": 3},
        occurred_at=OCCURRED_AT,
    )


@pytest.mark.parametrize("step", [s for s in DEFAULT_FLOW.steps if s.kpi_id], ids=lambda s: s.key)
def test_every_kpi_step_of_the_default_flow_builds(step: Any) -> None:
    data = payload(
        kpi_id=step.kpi_id, step=step.step, metadata=valid_metadata(DEFAULT_FLOW, step.step)
    )

    assert build_with_flow(data, flow=DEFAULT_FLOW).kpi_id == step.kpi_id


def test_build_event_generates_a_uuid4_id_per_event() -> None:
    data = payload()

    first, second = build_kpi_event(data), build_kpi_event(data)

    assert uuid.UUID(first.id).version == 4
    assert uuid.UUID(second.id).version == 4
    assert first.id != second.id


def test_build_event_copies_the_metadata() -> None:
    data = payload()

    event = build_kpi_event(data)
    data["metadata"]["plan"] = "changed"

    assert event.metadata == {"plan": "pro", "seats": 3}


def test_build_event_keeps_a_non_utc_offset() -> None:
    plus_two = OCCURRED_AT.astimezone(timezone(timedelta(hours=2)))

    event = build_kpi_event(payload(occurred_at=plus_two))

    assert event.occurred_at == OCCURRED_AT
    assert event.occurred_at.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize(
    "kpi_id",
    [
        pytest.param("onboarding.step_one_completed", id="unknown"),
        pytest.param("ONBOARDING.COMPLETED", id="wrong-case"),
        pytest.param("ONBOARDING_COMPLETED", id="enum-name-not-value"),
        pytest.param(" onboarding.completed", id="leading-space"),
    ],
)
def test_unknown_kpi_id_is_a_build_error(kpi_id: str) -> None:
    error = build_error(payload(kpi_id=kpi_id))

    assert error.message == f"'{kpi_id}' is not a KPI declared by the flow"


def test_metadata_outside_the_tracking_plan_is_a_build_error() -> None:
    # step 2 declares no fields and keeps no extra keys: a replay under such a flow
    # cannot build the event, and the failure stays recorded
    error = build_error(payload(kpi_id="onboarding.completed", step=2))

    assert error.message.startswith(
        "the metadata does not satisfy the tracking plan of step 2 (strict): plan: "
    )


def test_a_step_missing_from_the_flow_is_a_build_error() -> None:
    assert build_error(payload(step=9)).message == "step 9 is not in the flow"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(payload(kpi_id=None), id="none"),
        pytest.param(payload(kpi_id=""), id="empty"),
        pytest.param({k: v for k, v in payload().items() if k != "kpi_id"}, id="absent"),
    ],
)
def test_missing_kpi_id_is_a_build_error(data: dict[str, Any]) -> None:
    assert build_error(data).message == "the step has no KPI identifier"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(payload(user_id=""), id="empty"),
        pytest.param(payload(user_id=None), id="none"),
        pytest.param({k: v for k, v in payload().items() if k != "user_id"}, id="absent"),
    ],
)
def test_missing_user_id_is_a_build_error(data: dict[str, Any]) -> None:
    assert build_error(data).message == "the event has no user identifier"


def test_naive_timestamp_is_a_build_error() -> None:
    naive = OCCURRED_AT.replace(tzinfo=None)

    error = build_error(payload(occurred_at=naive))

    assert error.message == "the event timestamp has no time zone"


# --- the stored form --------------------------------------------------------------------------


def test_event_json_round_trip() -> None:
    # given a built event
    event = build_kpi_event(payload(metadata={"plan": "pro", "ratio": 0.5, "trial": None}))

    # when it goes through JSON (it is stored on the idempotency key and replayed)
    data = json.loads(json.dumps(event.to_json()))

    # then it comes back equal, timestamp and offset included
    assert data == {
        "id": event.id,
        "completion_id": 7,
        "kpi_id": "onboarding.step_1_completed",
        "user_id": "alice",
        "step": 1,
        "source": "web",
        "metadata": {"plan": "pro", "ratio": 0.5, "trial": None},
        "occurred_at": "2026-03-14T15:09:26.535897+00:00",
    }
    restored = KpiEventRecord.from_json(data)
    assert restored == event
    assert restored.occurred_at.utcoffset() == timedelta(0)


def test_payload_of_a_failure_rebuilds_the_same_event() -> None:
    # a failure record stores the payload; replaying it must give the event it stood for
    data = json.loads(json.dumps(payload()))

    rebuilt = build_kpi_event(data, event_id="evt-1")

    assert rebuilt == build_kpi_event(payload(), event_id="evt-1")
