"""The flows the suite runs on, and metadata that satisfies a step's tracking plan.

``DEFAULT_FLOW`` is the packaged default (``app/default_flow.toml``); ``TEAM_TRIAL`` is a
second flow of our own (``tests/flows/team_trial.toml``: 6 steps, every field type, a
step with ``extra = "allow"``). Modules whose tests hold for any flow opt in to running
every test on both by importing the shared fixture, which overrides ``flow``::

    from tests.flows import every_flow  # noqa: F401 - runs every test here on both flows
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.flow_file import DEFAULT_FLOW, load_flow
from app.kpi import FieldType, OnboardingFlow, OnboardingStep, StepField

FLOWS_DIR = Path(__file__).with_name("flows")
TEAM_TRIAL_FILE = FLOWS_DIR / "team_trial.toml"
TEAM_TRIAL = load_flow(TEAM_TRIAL_FILE)
FLOWS: dict[str, OnboardingFlow] = {"default": DEFAULT_FLOW, "team_trial": TEAM_TRIAL}
FLOW_NAMES = list(FLOWS)


@pytest.fixture(params=FLOW_NAMES, name="flow")
def every_flow(request: pytest.FixtureRequest) -> OnboardingFlow:
    """The ``flow`` fixture, once per flow of ``FLOWS`` (ids ``default``, ``team_trial``)."""
    return FLOWS[request.param]


def valid_value(spec: StepField, variant: int = 0) -> Any:
    """A value that satisfies every rule of ``spec``; another ``variant``, another value."""
    match spec.type:
        case FieldType.STRING:
            text = f"{spec.label} {variant}" if variant else f"{spec.label} value"
            low = spec.min_length or 0
            high = spec.max_length or len(text)
            return text.ljust(low, "x")[: max(high, low)]
        case FieldType.EMAIL:
            return f"ada{variant or ''}@example.com"
        case FieldType.INTEGER:
            return (int(spec.minimum) if spec.minimum is not None else 1) + variant
        case FieldType.NUMBER:
            return (spec.minimum if spec.minimum is not None else 1.5) + variant
        case FieldType.BOOLEAN:
            return variant % 2 == 0
        case FieldType.CHOICE:
            assert spec.choices
            return spec.choices[variant % len(spec.choices)].value
    raise AssertionError(spec.type)


def valid_metadata(flow: OnboardingFlow, step: int, variant: int = 0) -> dict[str, Any]:
    """Metadata for ``step`` with every declared field given a valid value.

    A step the flow does not have gets free-form metadata (``{}`` for variant 0): its
    request is refused as an unknown step anyway.
    """
    found = flow.get(step)
    if found is None:
        return {"variant": variant} if variant else {}
    return {f.name: valid_value(f, variant) for f in found.fields}


def kpi_steps(flow: OnboardingFlow) -> list[int]:
    """The steps that count toward a KPI, in order."""
    return [s.step for s in flow.steps if s.kpi_id is not None]


def plain_steps(flow: OnboardingFlow) -> list[int]:
    """The steps that count toward no KPI, in order."""
    return [s.step for s in flow.steps if s.kpi_id is None]


def step_kpi(flow: OnboardingFlow, step: int) -> str:
    """The KPI that ``step`` counts toward; a test that needs one fails if it has none."""
    found = flow.get(step)
    assert found is not None and found.kpi_id is not None, (flow.source, step)
    return found.kpi_id


FREE_FORM = OnboardingFlow(
    steps=tuple(OnboardingStep(n, f"step{n}", f"Step {n}", extra_allowed=True) for n in (1, 2, 3))
)
"""Three steps with no declared fields that keep any metadata: for the contract's own limits."""
