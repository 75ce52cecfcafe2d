"""The onboarding flow, its KPIs and its tracking plan (seed resource cfg-k3x7).

Nothing here hard-codes a step or a KPI: the flow is *loaded* from a TOML file
(``ONBOARDING_KPI_FLOW_FILE``, or ``app/default_flow.toml`` shipped in the package) by
``app.flow_file.load_flow``, validated, and passed to everyone who needs it: the
processor, the replay, the GraphQL schema, the analytics queries, the pages. This module
is the one shape they all read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class KpiKind(StrEnum):
    """Leading KPIs predict an outcome early; lagging KPIs confirm it afterwards."""

    LEADING = "LEADING"
    LAGGING = "LAGGING"


class FieldType(StrEnum):
    """The type of one metadata field of a step (its tracking plan)."""

    STRING = "string"
    EMAIL = "email"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    CHOICE = "choice"


@dataclass(frozen=True, slots=True)
class KpiDefinition:
    id: str
    name: str
    description: str
    kind: KpiKind


@dataclass(frozen=True, slots=True)
class FieldChoice:
    value: str
    label: str


@dataclass(frozen=True, slots=True)
class StepField:
    """One metadata key a step's event carries, and the rules its value obeys."""

    name: str
    label: str
    type: FieldType
    required: bool = False
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[FieldChoice, ...] | None = None


@dataclass(frozen=True, slots=True)
class OnboardingStep:
    """One step of the flow.

    ``extra_allowed``: metadata keys that are not among ``fields`` are kept (the step's
    ``extra = "allow"``) instead of refused.
    """

    step: int
    key: str
    title: str
    kpi_id: str | None = None
    description: str | None = None
    fields: tuple[StepField, ...] = ()
    extra_allowed: bool = False


@dataclass(frozen=True, slots=True)
class OnboardingFlow:
    """The ordered steps (numbered 1..n) and the KPIs they count toward.

    Built by ``app.flow_file`` from a validated file (or by tests). The checks here are
    the invariants the rest of the code relies on; a step's KPI that is not declared is
    left to the file's validation, so that a flow built in code with one surfaces as an
    analytics build failure (recorded, replayable), never as a lost completion.
    """

    steps: tuple[OnboardingStep, ...]
    kpis: tuple[KpiDefinition, ...] = ()
    source: str = "<built in code>"
    _kpis_by_id: dict[str, KpiDefinition] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        numbers = [s.step for s in self.steps]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"flow steps must be numbered 1..n in order, got {numbers}")
        by_id = {k.id: k for k in self.kpis}
        used = [s.kpi_id for s in self.steps if s.kpi_id is not None]
        if len(used) != len(set(used)):
            # One step per KPI means one event per (user, KPI): the analytics rollups rely
            # on it to report unique users per bucket exactly.
            raise ValueError(f"each KPI may be counted by one step only, got {used}")
        object.__setattr__(self, "_kpis_by_id", by_id)

    @property
    def total_steps(self) -> int:
        return len(self.steps)

    def steps_for(self, kpi_id: str) -> list[int]:
        return [s.step for s in self.steps if s.kpi_id == kpi_id]

    def get(self, step: int) -> OnboardingStep | None:
        if 1 <= step <= len(self.steps):
            return self.steps[step - 1]
        return None

    def kpi(self, kpi_id: str) -> KpiDefinition | None:
        return self._kpis_by_id.get(kpi_id)
