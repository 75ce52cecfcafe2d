"""Building the KPI analytics event (app/services/analytics.py): pure, no I/O."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from app.errors import AnalyticsEventBuildError, AnalyticsEventError, AnalyticsFailureStage
from app.kpi import KpiId
from app.services.analytics import KpiEventRecord, build_kpi_event, event_payload

OCCURRED_AT = datetime(2026, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)


def payload(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "completion_id": 7,
        "kpi_id": KpiId.ONBOARDING_STEP_1_COMPLETED,
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


@pytest.mark.parametrize(
    "kpi_id",
    [
        pytest.param(KpiId.ONBOARDING_STEP_1_COMPLETED, id="enum-member"),
        pytest.param("onboarding.step_1_completed", id="plain-string"),
    ],
)
def test_build_event_from_canonical_kpi_id(kpi_id: str) -> None:
    data = payload(kpi_id=kpi_id)

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
    assert type(event.kpi_id) is str  # the canonical value, not the enum member


@pytest.mark.parametrize("kpi_id", list(KpiId), ids=[k.name for k in KpiId])
def test_every_canonical_kpi_id_builds(kpi_id: KpiId) -> None:
    assert build_kpi_event(payload(kpi_id=kpi_id.value)).kpi_id == kpi_id.value


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

    assert error.message == f"'{kpi_id}' is not a canonical KPI identifier"


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
