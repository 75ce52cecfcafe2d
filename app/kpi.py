"""Canonical KPI identifiers and the onboarding flow (seed resource cfg-k3x7).

Everything that decides *which* KPI a step counts toward lives here, so that the
processor, the GraphQL schema and the analytics queries all read one definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class KpiId(StrEnum):
    """Dotted, stable identifiers of the KPIs this service records events for."""

    ONBOARDING_STEP_1_COMPLETED = "onboarding.step_1_completed"
    ONBOARDING_TEAMMATE_INVITED = "onboarding.teammate_invited"
    ONBOARDING_COMPLETED = "onboarding.completed"


class KpiKind(StrEnum):
    """Leading KPIs predict an outcome early; lagging KPIs confirm it afterwards."""

    LEADING = "LEADING"
    LAGGING = "LAGGING"


@dataclass(frozen=True, slots=True)
class KpiDefinition:
    id: KpiId
    name: str
    description: str
    kind: KpiKind


KPI_DEFINITIONS: dict[KpiId, KpiDefinition] = {
    d.id: d
    for d in (
        KpiDefinition(
            KpiId.ONBOARDING_STEP_1_COMPLETED,
            "Onboarding step 1 completed",
            "A new user finished the first onboarding step (their profile).",
            KpiKind.LEADING,
        ),
        KpiDefinition(
            KpiId.ONBOARDING_TEAMMATE_INVITED,
            "Teammate invited during onboarding",
            "A new user invited a teammate while onboarding.",
            KpiKind.LEADING,
        ),
        KpiDefinition(
            KpiId.ONBOARDING_COMPLETED,
            "Onboarding completed",
            "A user finished every onboarding step.",
            KpiKind.LAGGING,
        ),
    )
}


@dataclass(frozen=True, slots=True)
class OnboardingStep:
    """One step of the flow.

    ``kpi_id`` is a plain string, not a ``KpiId``: the flow is configuration, and a
    misconfigured id must surface as an analytics build failure (recorded and
    replayable) rather than as a crash that loses the user's completion.
    """

    step: int
    key: str
    title: str
    kpi_id: str | None = None


@dataclass(frozen=True, slots=True)
class OnboardingFlow:
    """The ordered steps; step numbers are 1-based and contiguous."""

    steps: tuple[OnboardingStep, ...]

    def __post_init__(self) -> None:
        numbers = [s.step for s in self.steps]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"flow steps must be numbered 1..n in order, got {numbers}")
        kpis = [s.kpi_id for s in self.steps if s.kpi_id is not None]
        if len(kpis) != len(set(kpis)):
            # One step per KPI means one event per (user, KPI): the analytics rollups rely
            # on it to report unique users per bucket exactly.
            raise ValueError(f"each KPI may be counted by one step only, got {kpis}")

    @property
    def total_steps(self) -> int:
        return len(self.steps)

    def steps_for(self, kpi_id: str) -> list[int]:
        return [s.step for s in self.steps if s.kpi_id == kpi_id]

    def get(self, step: int) -> OnboardingStep | None:
        if 1 <= step <= len(self.steps):
            return self.steps[step - 1]
        return None


DEFAULT_FLOW = OnboardingFlow(
    steps=(
        OnboardingStep(1, "profile", "Create your profile", KpiId.ONBOARDING_STEP_1_COMPLETED),
        OnboardingStep(2, "workspace", "Name your workspace"),
        OnboardingStep(3, "invite", "Invite a teammate", KpiId.ONBOARDING_TEAMMATE_INVITED),
        OnboardingStep(4, "first_project", "Create your first project", KpiId.ONBOARDING_COMPLETED),
    )
)
