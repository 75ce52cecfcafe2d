"""Pure onboarding rules (app/services/onboarding.py): input, fingerprint, eligibility, progress."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.errors import (
    ErrorCode,
    FieldError,
    RequestValidationError,
    StepNotEligible,
    StepNotEligibleReason,
)
from app.flow_file import DEFAULT_FLOW
from app.kpi import OnboardingFlow, OnboardingStep
from app.services.onboarding import (
    CompleteStepCommand,
    Progress,
    check_eligibility,
    parse_complete_step,
    progress_of,
)
from tests.flows import FREE_FORM

VALID_KEY = "6f1c2a9e-2b1d-4a8e-9c55-0d9e4b7a1c33"

KEY_MESSAGE = "must be 16-255 characters of letters, digits, '-', '_', ':' or '.'"
SOURCE_MESSAGE = "must be 1-32 characters of lowercase letters, digits, '-' or '_'"
STEP_MESSAGE = "must be a step number between 1 and 10000"
NOT_AN_OBJECT = "must be a JSON object"


def parse(**overrides: Any) -> CompleteStepCommand:
    fields: dict[str, Any] = {
        "step": 1,
        "idempotency_key": VALID_KEY,
        "source": "web",
        "metadata": None,
    }
    fields.update(overrides)
    return parse_complete_step(FREE_FORM, **fields)


def field_errors_of(**overrides: Any) -> list[FieldError]:
    with pytest.raises(RequestValidationError) as excinfo:
        parse(**overrides)
    assert excinfo.value.code is ErrorCode.VALIDATION_FAILED
    return excinfo.value.field_errors


def metadata_of_json_size(size: int) -> dict[str, Any]:
    """A one-key object whose compact JSON encoding is exactly ``size`` bytes."""
    overhead = len(b'{"k":""}')
    metadata = {"k": "x" * (size - overhead)}
    assert len(json.dumps(metadata, separators=(",", ":")).encode()) == size
    return metadata


# --- a valid submission -----------------------------------------------------------------------


def test_valid_input_becomes_a_command() -> None:
    command = parse(step=3, source="ios-app_2", metadata={"plan": "pro", "seats": 3})

    assert command == CompleteStepCommand(
        step=3,
        idempotency_key=VALID_KEY,
        source="ios-app_2",
        metadata={"plan": "pro", "seats": 3},
    )


# --- idempotencyKey ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("a" * 16, id="16-chars-min"),
        pytest.param("a" * 255, id="255-chars-max"),
        pytest.param(VALID_KEY, id="uuid"),
        pytest.param("AZaz09-_:.AZaz09", id="every-allowed-char"),
        pytest.param("order:2024.01.01_ab-CD", id="mixed"),
    ],
)
def test_idempotency_key_accepted(key: str) -> None:
    assert parse(idempotency_key=key).idempotency_key == key


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("a" * 15, id="15-chars"),
        pytest.param("a" * 256, id="256-chars"),
        pytest.param("", id="empty"),
        pytest.param("a" * 8 + " " + "a" * 8, id="space"),
        pytest.param("a" * 16 + "/", id="slash"),
        pytest.param("a" * 16 + "+", id="plus"),
        pytest.param("a" * 16 + "=", id="equals"),
        pytest.param("é" * 16, id="non-ascii-letter"),
        pytest.param("٣" * 16, id="non-ascii-digit"),
        pytest.param("a" * 16 + "\n", id="trailing-newline"),
    ],
)
def test_idempotency_key_rejected(key: str) -> None:
    assert field_errors_of(idempotency_key=key) == [
        FieldError(("input", "idempotencyKey"), KEY_MESSAGE)
    ]


# --- source -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(None, "api", id="none-defaults-to-api"),
        pytest.param("web", "web", id="web"),
        pytest.param("a", "a", id="1-char-min"),
        pytest.param("a" * 32, "a" * 32, id="32-chars-max"),
        pytest.param("ios-app_2", "ios-app_2", id="digits-dash-underscore"),
    ],
)
def test_source_accepted(source: str | None, expected: str) -> None:
    assert parse(source=source).source == expected


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("", id="empty"),
        pytest.param("Web", id="uppercase"),
        pytest.param("a" * 33, id="33-chars"),
        pytest.param("web app", id="space"),
        pytest.param("web.app", id="dot"),
        pytest.param("wéb", id="non-ascii"),
        pytest.param("web\n", id="trailing-newline"),
    ],
)
def test_source_rejected(source: str) -> None:
    assert field_errors_of(source=source) == [FieldError(("input", "source"), SOURCE_MESSAGE)]


# --- step -------------------------------------------------------------------------------------


@pytest.mark.parametrize("step", [1, 2, 10_000], ids=["1", "2", "max-10000"])
def test_step_accepted(step: int) -> None:
    assert parse(step=step).step == step


@pytest.mark.parametrize("step", [0, -1, 10_001], ids=["0", "negative", "above-max"])
def test_step_rejected(step: int) -> None:
    assert field_errors_of(step=step) == [FieldError(("input", "step"), STEP_MESSAGE)]


# --- metadata ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        pytest.param(None, {}, id="none-becomes-empty"),
        pytest.param({}, {}, id="empty-object"),
        pytest.param(
            {"s": "x", "i": 1, "f": 1.5, "b": True, "n": None},
            {"s": "x", "i": 1, "f": 1.5, "b": True, "n": None},
            id="every-scalar-type",
        ),
        pytest.param(
            {f"k{i}": i for i in range(32)},
            {f"k{i}": i for i in range(32)},
            id="exactly-32-keys",
        ),
        pytest.param(metadata_of_json_size(4096), metadata_of_json_size(4096), id="4096-bytes"),
    ],
)
def test_metadata_accepted(metadata: Any, expected: dict[str, Any]) -> None:
    assert parse(metadata=metadata).metadata == expected


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        pytest.param([], NOT_AN_OBJECT, id="empty-list"),
        pytest.param([{"a": 1}], NOT_AN_OBJECT, id="list"),
        pytest.param("plan=pro", NOT_AN_OBJECT, id="string"),
        pytest.param('{"plan": "pro"}', NOT_AN_OBJECT, id="json-encoded-string"),
        pytest.param(3, NOT_AN_OBJECT, id="number"),
        pytest.param(
            {"plan": {"tier": "pro"}},
            "value of 'plan' must be a string, number, boolean or null",
            id="nested-object",
        ),
        pytest.param(
            {"ok": 1, "tags": ["a", "b"]},
            "value of 'tags' must be a string, number, boolean or null",
            id="nested-array",
        ),
        pytest.param({f"k{i}": i for i in range(33)}, "must have at most 32 keys", id="33-keys"),
        pytest.param({"": 1}, "keys must be non-empty strings", id="empty-key"),
        pytest.param(
            metadata_of_json_size(4097),
            "must be at most 4096 bytes as JSON (got 4097)",
            id="4097-bytes",
        ),
        pytest.param(
            # 2045 characters, but 4090 bytes of UTF-8: the limit is on bytes
            {"k": "é" * 2045},
            "must be at most 4096 bytes as JSON (got 4098)",
            id="multibyte-over-4096-bytes",
        ),
        pytest.param({"ratio": float("nan")}, "value of 'ratio' must be a finite number", id="nan"),
        pytest.param({"ratio": float("inf")}, "value of 'ratio' must be a finite number", id="inf"),
        pytest.param(
            {"ratio": float("-inf")}, "value of 'ratio' must be a finite number", id="-inf"
        ),
    ],
)
def test_metadata_rejected(metadata: Any, message: str) -> None:
    assert field_errors_of(metadata=metadata) == [FieldError(("input", "metadata"), message)]


# --- several fields at once -------------------------------------------------------------------


def test_every_offending_field_is_reported_together() -> None:
    # given a submission where every field is wrong
    with pytest.raises(RequestValidationError) as excinfo:
        parse(step=0, idempotency_key="too-short", source="Web", metadata=["not", "an", "object"])

    # then each field is reported once, with its GraphQL path
    error = excinfo.value
    assert error.field_errors == [
        FieldError(("input", "step"), STEP_MESSAGE),
        FieldError(("input", "idempotencyKey"), KEY_MESSAGE),
        FieldError(("input", "source"), SOURCE_MESSAGE),
        FieldError(("input", "metadata"), NOT_AN_OBJECT),
    ]
    assert error.message == (
        "The request is invalid: input.step, input.idempotencyKey, input.source, input.metadata."
    )


def test_two_offending_fields_leave_the_valid_ones_out() -> None:
    errors = field_errors_of(idempotency_key="a" * 256, metadata={"x": float("nan")})

    assert [e.path for e in errors] == [("input", "idempotencyKey"), ("input", "metadata")]


# --- fingerprint ------------------------------------------------------------------------------


def command(**overrides: Any) -> CompleteStepCommand:
    fields: dict[str, Any] = {
        "step": 1,
        "idempotency_key": VALID_KEY,
        "source": "web",
        "metadata": {"plan": "pro", "seats": 3},
    }
    fields.update(overrides)
    return CompleteStepCommand(**fields)


def test_fingerprint_is_a_sha256_hex_digest() -> None:
    fingerprint = command().fingerprint()

    assert len(fingerprint) == 64
    assert int(fingerprint, 16) >= 0


def test_fingerprint_is_stable_across_metadata_key_order() -> None:
    a = command(metadata={"plan": "pro", "seats": 3, "team": None})
    b = command(metadata={"team": None, "seats": 3, "plan": "pro"})

    assert list(a.metadata) != list(b.metadata)
    assert a.fingerprint() == b.fingerprint()


def test_fingerprint_does_not_depend_on_the_idempotency_key() -> None:
    # the fingerprint is stored on (and compared under) one key, so the key is not part of it
    assert command(idempotency_key="k" * 16).fingerprint() == command().fingerprint()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"step": 2}, id="step"),
        pytest.param({"source": "ios"}, id="source"),
        pytest.param({"metadata": {"plan": "team", "seats": 3}}, id="metadata-value"),
        pytest.param({"metadata": {"plan": "pro", "seats": "3"}}, id="metadata-value-type"),
        pytest.param({"metadata": {"plan": "pro", "seats": True}}, id="metadata-bool-vs-int"),
        pytest.param({"metadata": {"plan": "pro"}}, id="metadata-key-removed"),
        pytest.param({"metadata": {"plan": "pro", "seats": 3, "x": None}}, id="metadata-key-added"),
        pytest.param({"metadata": {}}, id="metadata-empty"),
    ],
)
def test_fingerprint_differs_when_a_field_changes(change: dict[str, Any]) -> None:
    assert command(**change).fingerprint() != command().fingerprint()


# --- eligibility ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "completed"),
    [
        pytest.param(0, [], id="step-0"),
        pytest.param(-1, [], id="negative"),
        pytest.param(5, [1, 2, 3, 4], id="step-5-after-all-four"),
        pytest.param(5, [], id="step-5"),
        pytest.param(99, [1], id="step-99"),
    ],
)
def test_step_outside_the_flow_is_unknown(step: int, completed: list[int]) -> None:
    with pytest.raises(StepNotEligible) as excinfo:
        check_eligibility(DEFAULT_FLOW, step, completed)

    assert excinfo.value.reason is StepNotEligibleReason.UNKNOWN_STEP
    assert excinfo.value.step == step
    assert excinfo.value.code is ErrorCode.STEP_NOT_ELIGIBLE
    assert excinfo.value.message == f"Step {step} is not part of the onboarding flow."


@pytest.mark.parametrize(
    ("step", "completed"),
    [
        pytest.param(2, [], id="2-with-nothing-done"),
        pytest.param(3, [1], id="3-after-1"),
        pytest.param(3, [2], id="3-without-1"),
        pytest.param(4, [1, 3], id="4-with-gap"),
    ],
)
def test_step_before_its_predecessors_is_not_eligible(step: int, completed: list[int]) -> None:
    with pytest.raises(StepNotEligible) as excinfo:
        check_eligibility(DEFAULT_FLOW, step, completed)

    assert excinfo.value.reason is StepNotEligibleReason.PREVIOUS_STEP_INCOMPLETE
    assert excinfo.value.step == step
    assert excinfo.value.message == (
        f"Step {step} cannot be completed before the steps that come before it."
    )


@pytest.mark.parametrize(
    ("step", "completed"),
    [
        pytest.param(1, [1], id="1-again"),
        pytest.param(2, [1, 2], id="2-again"),
        pytest.param(1, [1, 2, 3], id="1-after-3"),
        pytest.param(4, [4, 3, 2, 1], id="4-again-unordered"),
    ],
)
def test_completed_step_cannot_be_completed_again(step: int, completed: list[int]) -> None:
    with pytest.raises(StepNotEligible) as excinfo:
        check_eligibility(DEFAULT_FLOW, step, completed)

    assert excinfo.value.reason is StepNotEligibleReason.ALREADY_COMPLETED
    assert excinfo.value.step == step
    assert excinfo.value.message == f"Step {step} is already completed."


@pytest.mark.parametrize(
    ("step", "completed"),
    [
        pytest.param(1, [], id="first-step"),
        pytest.param(2, [1], id="second-step"),
        pytest.param(4, [3, 1, 2], id="last-step-unordered-history"),
        pytest.param(3, [2, 1, 1], id="duplicate-history"),
    ],
)
def test_next_step_in_order_is_eligible(step: int, completed: list[int]) -> None:
    assert check_eligibility(DEFAULT_FLOW, step, completed) is None


def test_eligibility_follows_the_given_flow() -> None:
    two_steps = OnboardingFlow(steps=(OnboardingStep(1, "a", "A"), OnboardingStep(2, "b", "B")))

    check_eligibility(two_steps, 2, [1])
    with pytest.raises(StepNotEligible) as excinfo:
        check_eligibility(two_steps, 3, [1, 2])
    assert excinfo.value.reason is StepNotEligibleReason.UNKNOWN_STEP


# --- progress ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completed", "expected"),
    [
        pytest.param([], Progress([], 1, 4), id="nothing-done"),
        pytest.param([1], Progress([1], 2, 4), id="after-step-1"),
        pytest.param([1, 2, 3], Progress([1, 2, 3], 4, 4), id="one-left"),
        pytest.param([1, 2, 3, 4], Progress([1, 2, 3, 4], None, 4), id="complete"),
        pytest.param([3, 1, 2], Progress([1, 2, 3], 4, 4), id="unordered"),
        pytest.param([2, 1, 2, 1], Progress([1, 2], 3, 4), id="duplicates"),
        pytest.param([4, 2, 3, 1, 4], Progress([1, 2, 3, 4], None, 4), id="complete-unordered"),
        pytest.param([2], Progress([2], 1, 4), id="gap-points-at-first-missing"),
    ],
)
def test_progress_of(completed: list[int], expected: Progress) -> None:
    progress = progress_of(DEFAULT_FLOW, completed)

    assert progress == expected
    assert progress.is_complete is (expected.next_step is None)


def test_progress_does_not_modify_its_input() -> None:
    completed = [3, 1, 2, 1]

    progress_of(DEFAULT_FLOW, completed)

    assert completed == [3, 1, 2, 1]


def test_progress_json_round_trip() -> None:
    progress = progress_of(DEFAULT_FLOW, [2, 1])

    data = json.loads(json.dumps(progress.to_json()))

    assert data == {"completed_steps": [1, 2], "next_step": 3, "total_steps": 4}
    assert Progress.from_json(data) == progress


# --- the flow ---------------------------------------------------------------------------------


def steps(*numbers: int) -> tuple[OnboardingStep, ...]:
    return tuple(OnboardingStep(n, f"step{n}", f"Step {n}") for n in numbers)


@pytest.mark.parametrize(
    "numbers",
    [
        pytest.param((1, 3), id="gap"),
        pytest.param((2, 3), id="starts-at-2"),
        pytest.param((0, 1), id="starts-at-0"),
        pytest.param((1, 1), id="duplicate"),
        pytest.param((2, 1), id="out-of-order"),
    ],
)
def test_flow_rejects_non_contiguous_numbering(numbers: tuple[int, ...]) -> None:
    with pytest.raises(ValueError) as excinfo:  # noqa: PT011 (message asserted below)
        OnboardingFlow(steps=steps(*numbers))

    assert str(excinfo.value) == f"flow steps must be numbered 1..n in order, got {list(numbers)}"


def test_flow_accepts_contiguous_numbering() -> None:
    flow = OnboardingFlow(steps=steps(1, 2, 3))

    assert flow.total_steps == 3
    assert [flow.get(n) for n in (1, 2, 3)] == list(steps(1, 2, 3))
    assert flow.get(0) is None
    assert flow.get(4) is None
