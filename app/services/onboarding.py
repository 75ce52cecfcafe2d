"""Onboarding rules (seed resource db-h2s4): pure functions, no I/O.

The input rules here are the single definition that the GraphQL resolver applies
(and that the reference frontend mirrors): the contract's limits, then the step's
tracking plan (``app.services.tracking_plan``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from app.errors import FieldError, RequestValidationError, StepNotEligible, StepNotEligibleReason
from app.kpi import OnboardingFlow
from app.services.tracking_plan import clean_metadata, is_finite_number, metadata_problems

IDEMPOTENCY_KEY_PATTERN = re.compile(r"[A-Za-z0-9\-_:.]{16,255}")
SOURCE_PATTERN = re.compile(r"[a-z0-9\-_]{1,32}")
DEFAULT_SOURCE = "api"
MAX_METADATA_KEYS = 32
MAX_METADATA_BYTES = 4096
MAX_STEP = 10_000
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

JsonScalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class CompleteStepCommand:
    """A validated request to complete one step; the user comes from the token."""

    step: int
    idempotency_key: str
    source: str
    metadata: dict[str, JsonScalar]

    def fingerprint(self) -> str:
        """Hash of what the submission asks for; the same key must always ask the same."""
        canonical = json.dumps(
            {"step": self.step, "source": self.source, "metadata": self.metadata},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def parse_complete_step(
    flow: OnboardingFlow, *, step: int, idempotency_key: str, source: str | None, metadata: Any
) -> CompleteStepCommand:
    """Check every field and report all offending ones at once.

    The metadata is checked against the step's fields in ``flow`` (its tracking plan) once
    it passes the global limits; an unknown step has no plan here and is refused later,
    by the eligibility check, as ``UNKNOWN_STEP``.
    """
    errors: list[FieldError] = []

    def fail(field: str, message: str) -> None:
        errors.append(FieldError(("input", field), message))

    if not 1 <= step <= MAX_STEP:
        fail("step", f"must be a step number between 1 and {MAX_STEP}")
    if not IDEMPOTENCY_KEY_PATTERN.fullmatch(idempotency_key):
        fail(
            "idempotencyKey",
            "must be 16-255 characters of letters, digits, '-', '_', ':' or '.'",
        )
    resolved_source = DEFAULT_SOURCE if source is None else source
    if not SOURCE_PATTERN.fullmatch(resolved_source):
        fail("source", "must be 1-32 characters of lowercase letters, digits, '-' or '_'")
    resolved_metadata: dict[str, JsonScalar] = {}
    if metadata is not None:
        problem = _metadata_problem(metadata)
        if problem:
            fail("metadata", problem)
        else:
            resolved_metadata = metadata
    if not any(e.path == ("input", "metadata") for e in errors):
        flow_step = flow.get(step)
        if flow_step is not None:
            errors.extend(metadata_problems(flow_step, resolved_metadata))
            resolved_metadata = clean_metadata(flow_step, resolved_metadata)
    if errors:
        raise RequestValidationError(errors)
    return CompleteStepCommand(step, idempotency_key, resolved_source, resolved_metadata)


def _metadata_problem(metadata: Any) -> str | None:
    if not isinstance(metadata, dict):
        return "must be a JSON object"
    if len(metadata) > MAX_METADATA_KEYS:
        return f"must have at most {MAX_METADATA_KEYS} keys"
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            return "keys must be non-empty strings"
        if isinstance(value, int | float) and not is_finite_number(value):  # bool is finite
            return f"value of '{key}' must be a finite number"
        if value is not None and not isinstance(value, str | int | float | bool):
            return f"value of '{key}' must be a string, number, boolean or null"
        texts = (key, value) if isinstance(value, str) else (key,)
        if any(_LONE_SURROGATE.search(t) for t in texts):
            return f"value of '{key}' must be valid Unicode text"
        if any("\x00" in t for t in texts):  # PostgreSQL's jsonb cannot store U+0000
            return f"value of '{key}' must not contain NUL characters"
    size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        return f"must be at most {MAX_METADATA_BYTES} bytes as JSON (got {size})"
    return None


def check_eligibility(flow: OnboardingFlow, step: int, completed: list[int]) -> None:
    """Steps are completed in order, each once."""
    if flow.get(step) is None:
        raise StepNotEligible(step, StepNotEligibleReason.UNKNOWN_STEP)
    if step in completed:
        raise StepNotEligible(step, StepNotEligibleReason.ALREADY_COMPLETED)
    if any(earlier not in completed for earlier in range(1, step)):
        raise StepNotEligible(step, StepNotEligibleReason.PREVIOUS_STEP_INCOMPLETE)


@dataclass(frozen=True, slots=True)
class Progress:
    completed_steps: list[int]
    next_step: int | None
    total_steps: int

    @property
    def is_complete(self) -> bool:
        return self.next_step is None

    def to_json(self) -> dict[str, Any]:
        return {
            "completed_steps": self.completed_steps,
            "next_step": self.next_step,
            "total_steps": self.total_steps,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Progress:
        return cls(data["completed_steps"], data["next_step"], data["total_steps"])


def progress_of(flow: OnboardingFlow, completed: list[int]) -> Progress:
    done = sorted(set(completed))
    next_step = next((s.step for s in flow.steps if s.step not in done), None)
    return Progress(done, next_step, flow.total_steps)
