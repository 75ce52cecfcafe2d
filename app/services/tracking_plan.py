"""The tracking plan: a step's metadata checked against its declared fields. Pure, no I/O.

Applied to every completion before anything is written (``parse_complete_step``) and
again when the KPI event is built (``build_kpi_event``), so a replay under a changed
flow refuses metadata the event can no longer carry.

The page's validator (``web/onboarding/validator.js``) renders each step's form from
the same fields and produces the same messages; ``tests/e2e/test_validator_agreement.py``
holds the two to one table of inputs. Change a message in both places.
"""

from __future__ import annotations

import math
import re
from typing import Any

from app.errors import FieldError
from app.kpi import FieldType, OnboardingStep, StepField

# The HTML standard's email shape (input type=email), with at least one dot in the domain.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = re.compile(rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # category Cc, as JavaScript's \p{Cc}


def metadata_problems(step: OnboardingStep, metadata: dict[str, Any]) -> list[FieldError]:
    """One ``FieldError`` per problem, at ``["input", "metadata", <key>]``; empty when valid.

    Declared fields first, in the flow's order, then undeclared keys in the order sent.
    """
    errors: list[FieldError] = []
    for spec in step.fields:
        value = metadata.get(spec.name)
        problem = (
            _missing(spec) if _is_absent(value) and spec.required else _value_problem(spec, value)
        )
        if problem:
            errors.append(FieldError(("input", "metadata", spec.name), problem))
    if not step.extra_allowed:
        declared = {f.name for f in step.fields}
        allowed = ", ".join(sorted(declared)) or "none"
        for key in metadata:
            if key not in declared:
                errors.append(
                    FieldError(
                        ("input", "metadata", key),
                        f"'{key}' is not a field of step {step.step} ({step.key}); "
                        f"its fields are: {allowed}.",
                    )
                )
    return errors


def clean_metadata(step: OnboardingStep, metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata to record: valid ``metadata`` without its declared fields left blank.

    A declared field that is ``null`` or blank text counts as not given, so it is not
    stored either: an optional integer sent as ``"  "`` must not reach the event as text.
    Free-form keys (``extra = "allow"``) are kept as sent.
    """
    declared = {f.name for f in step.fields}
    return {k: v for k, v in metadata.items() if k not in declared or not _is_absent(v)}


def _is_absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _missing(spec: StepField) -> str:
    if spec.type is FieldType.CHOICE:
        return f"{spec.label}: choose one of the options."
    return f"{spec.label} is required."


def _value_problem(spec: StepField, value: Any) -> str | None:
    if _is_absent(value):
        return None  # optional and not given
    label = spec.label
    match spec.type:
        case FieldType.STRING | FieldType.EMAIL:
            if not isinstance(value, str):
                return f"{label} must be text."
            length = len(value)
            if spec.min_length is not None and length < spec.min_length:
                return f"{label} must be at least {spec.min_length} characters."
            if spec.max_length is not None and length > spec.max_length:
                return f"{label} must be at most {spec.max_length} characters."
            if CONTROL_CHARACTERS.search(value):
                return f"{label} must not contain control characters."
            if spec.type is FieldType.EMAIL and not EMAIL_PATTERN.fullmatch(value):
                return f"{label} must be an email address like name@example.com."
        case FieldType.INTEGER | FieldType.NUMBER:
            integer = spec.type is FieldType.INTEGER
            if not _is_number(value) or (integer and not float(value).is_integer()):
                return (
                    f"{label} must be a whole number." if integer else f"{label} must be a number."
                )
            if spec.minimum is not None and value < spec.minimum:
                return f"{label} must be at least {format_number(spec.minimum)}."
            if spec.maximum is not None and value > spec.maximum:
                return f"{label} must be at most {format_number(spec.maximum)}."
        case FieldType.BOOLEAN:
            if not isinstance(value, bool):
                return f"{label} must be true or false."
        case FieldType.CHOICE:
            values = [c.value for c in spec.choices or ()]
            if value not in values:
                return f"{label} must be one of: {', '.join(values)}."
    return None


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and is_finite_number(value)


def is_finite_number(value: Any) -> bool:
    """A JSON number that JavaScript reads as a finite one (``bool`` counts as finite).

    An integer past the float range (``10**400``) is ``Infinity`` to ``JSON.parse``, so
    it is not finite here either (and ``math.isfinite`` would raise on it).
    """
    if not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def format_number(value: float) -> str:
    """As JavaScript's ``String(n)`` prints the bound (whole numbers without '.0')."""
    if float(value).is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(float(value))
