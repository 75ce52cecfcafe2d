"""Reading and validating a flow file (TOML) into an ``app.kpi.OnboardingFlow``.

Two passes, so that every problem is reported at once, each with its place in the file:

1. pydantic checks the shape: known keys only, types, patterns (``FlowFileModel``);
2. the rules between entries: unique step keys and field names, declared KPIs, one step
   per KPI, bounds that fit their field's type (``_semantic_problems``).

A problem reads ``FILE: steps[2].fields[0].type: message``; indexes count from 0 in
file order, as TOML arrays of tables do (step numbers count from 1).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from app.kpi import (
    FieldChoice,
    FieldType,
    KpiDefinition,
    KpiKind,
    OnboardingFlow,
    OnboardingStep,
    StepField,
)
from app.services.onboarding import MAX_METADATA_KEYS
from app.services.tracking_plan import CONTROL_CHARACTERS

DEFAULT_FLOW_FILE = Path(__file__).with_name("default_flow.toml")
MAX_STEPS = 100
MAX_FIELDS_PER_STEP = MAX_METADATA_KEYS  # every field is a metadata key
MAX_SAFE_INTEGER = 2**53 - 1  # JavaScript's Number.MAX_SAFE_INTEGER
MAX_CHOICES = 100

KpiIdText = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$", max_length=128)
]
StepKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
FieldName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class KpiModel(_Strict):
    id: KpiIdText
    name: Text
    description: LongText
    kind: Literal["LEADING", "LAGGING"]


class ChoiceModel(_Strict):
    value: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    label: Text


class FieldModel(_Strict):
    name: FieldName
    label: Text
    type: Literal["string", "email", "integer", "number", "boolean", "choice"]
    required: bool = False
    min_length: Annotated[int, Field(ge=0, le=4096)] | None = None
    max_length: Annotated[int, Field(ge=1, le=4096)] | None = None
    minimum: float | None = Field(default=None, allow_inf_nan=False)
    maximum: float | None = Field(default=None, allow_inf_nan=False)
    choices: Annotated[list[ChoiceModel], Field(max_length=MAX_CHOICES)] | None = None


class StepModel(_Strict):
    key: StepKey
    title: Text
    description: LongText | None = None
    kpi: KpiIdText | None = None
    extra: Literal["forbid", "allow"] = "forbid"
    fields: Annotated[list[FieldModel], Field(max_length=MAX_FIELDS_PER_STEP)] = []


class FlowFileModel(_Strict):
    kpis: list[KpiModel] = []
    steps: Annotated[list[StepModel], Field(min_length=1, max_length=MAX_STEPS)]


class FlowFileError(Exception):
    """A flow file that cannot be served; ``problems`` holds one line per problem."""

    def __init__(self, path: str, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = [f"{path}: {p}" for p in problems]
        super().__init__("\n".join(self.problems))


def load_flow(path: Path | None = None) -> OnboardingFlow:
    """The flow in ``path`` (default: the packaged default file), or ``FlowFileError``."""
    path = path or DEFAULT_FLOW_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FlowFileError(str(path), [f"cannot read the file: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise FlowFileError(str(path), [f"not UTF-8 text: {exc.reason}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise FlowFileError(str(path), [f"invalid TOML: {exc}"]) from None
    return parse_flow(data, source=str(path))


def parse_flow(data: object, *, source: str) -> OnboardingFlow:
    try:
        model = FlowFileModel.model_validate(data)
    except ValidationError as exc:
        raise FlowFileError(
            source, [f"{_location(e['loc'])}: {_message(e)}" for e in exc.errors()]
        ) from None
    if problems := list(_semantic_problems(model)):
        raise FlowFileError(source, problems)
    return _to_flow(model, source=source)


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text or "(file)"


def _message(error: object) -> str:
    assert isinstance(error, dict)
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key is missing"
    if error["type"] == "string_pattern_mismatch":
        pattern = error["ctx"]["pattern"]
        return f"{error['input']!r} does not match {pattern}"
    return str(error["msg"])


def _semantic_problems(model: FlowFileModel) -> Iterator[str]:
    kpi_ids: dict[str, int] = {}
    for i, kpi in enumerate(model.kpis):
        if kpi.id in kpi_ids:
            yield f"kpis[{i}].id: KPI '{kpi.id}' is already declared at kpis[{kpi_ids[kpi.id]}]"
        else:
            kpi_ids[kpi.id] = i
    step_keys: dict[str, int] = {}
    kpi_users: dict[str, int] = {}
    for i, step in enumerate(model.steps):
        where = f"steps[{i}]"
        if step.key in step_keys:
            first = step_keys[step.key]
            yield f"{where}.key: step key '{step.key}' is already used by steps[{first}]"
        else:
            step_keys[step.key] = i
        if step.kpi is not None:
            if step.kpi not in kpi_ids:
                yield f"{where}.kpi: KPI '{step.kpi}' is not declared in [[kpis]]"
            elif step.kpi in kpi_users:
                yield (
                    f"{where}.kpi: KPI '{step.kpi}' is already counted by "
                    f"steps[{kpi_users[step.kpi]}] (each KPI is counted by one step)"
                )
            else:
                kpi_users[step.kpi] = i
        names: dict[str, int] = {}
        for j, spec in enumerate(step.fields):
            place = f"{where}.fields[{j}]"
            if spec.name in names:
                first = names[spec.name]
                yield f"{place}.name: field '{spec.name}' is already declared at fields[{first}]"
            else:
                names[spec.name] = j
            yield from _field_problems(spec, place)


def _field_problems(spec: FieldModel, place: str) -> Iterator[str]:
    textual = spec.type in ("string", "email")
    numeric = spec.type in ("integer", "number")
    for key in ("min_length", "max_length"):
        if getattr(spec, key) is not None and not textual:
            yield f"{place}.{key}: applies to string and email fields only, not {spec.type}"
    for key in ("minimum", "maximum"):
        if getattr(spec, key) is not None and not numeric:
            yield f"{place}.{key}: applies to integer and number fields only, not {spec.type}"
    if spec.choices is not None and spec.type != "choice":
        yield f"{place}.choices: applies to choice fields only, not {spec.type}"
    if spec.type == "choice":
        if not spec.choices:
            yield f"{place}.choices: a choice field needs at least one choice"
        else:
            seen: set[str] = set()
            for k, choice in enumerate(spec.choices):
                if choice.value in seen:
                    yield f"{place}.choices[{k}].value: '{choice.value}' is listed twice"
                elif choice.value != choice.value.strip() or CONTROL_CHARACTERS.search(
                    choice.value
                ):
                    # blank-edged text is trimmed by forms and counts as absent: unpickable
                    yield (
                        f"{place}.choices[{k}].value: {choice.value!r} must not start or end "
                        "with spaces or contain control characters"
                    )
                seen.add(choice.value)
    low, high = spec.min_length, spec.max_length
    if textual and low is not None and high is not None and low > high:
        yield f"{place}.min_length: {spec.min_length} is more than max_length {spec.max_length}"
    lowest, highest = spec.minimum, spec.maximum
    if numeric and lowest is not None and highest is not None and lowest > highest:
        yield f"{place}.minimum: {spec.minimum:g} is more than maximum {spec.maximum:g}"
    if spec.type == "integer":
        for key in ("minimum", "maximum"):
            value = getattr(spec, key)
            if value is not None and not float(value).is_integer():
                yield f"{place}.{key}: an integer field needs a whole-number bound, got {value}"
            elif value is not None and abs(value) > MAX_SAFE_INTEGER:
                yield (
                    f"{place}.{key}: an integer field's bound must be between "
                    f"-{MAX_SAFE_INTEGER} and {MAX_SAFE_INTEGER} (exact in JavaScript and JSON)"
                )


def _to_flow(model: FlowFileModel, *, source: str) -> OnboardingFlow:
    return OnboardingFlow(
        kpis=tuple(
            KpiDefinition(id=k.id, name=k.name, description=k.description, kind=KpiKind(k.kind))
            for k in model.kpis
        ),
        steps=tuple(
            OnboardingStep(
                step=number,
                key=s.key,
                title=s.title,
                kpi_id=s.kpi,
                description=s.description,
                extra_allowed=s.extra == "allow",
                fields=tuple(
                    StepField(
                        name=f.name,
                        label=f.label,
                        type=FieldType(f.type),
                        required=f.required,
                        min_length=f.min_length,
                        max_length=f.max_length,
                        minimum=f.minimum,
                        maximum=f.maximum,
                        choices=(
                            tuple(FieldChoice(c.value, c.label) for c in f.choices)
                            if f.choices is not None
                            else None
                        ),
                    )
                    for f in s.fields
                ),
            )
            for number, s in enumerate(model.steps, start=1)
        ),
        source=source,
    )


DEFAULT_FLOW = load_flow()
"""The packaged default flow, loaded once (tests and benchmarks use it directly)."""
