"""Register a domain enum with Strawberry, with a description for every value."""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

import strawberry

E = TypeVar("E", bound=type[Enum])


def graphql_enum(cls: E, *, description: str, values: dict[str, str], name: str | None = None) -> E:
    missing = {m.name for m in cls} ^ set(values)
    if missing:
        raise ValueError(f"{cls.__name__}: describe exactly its members, mismatch on {missing}")
    registered = strawberry.enum(cls, name=name, description=description)
    for value in registered.__strawberry_definition__.values:  # type: ignore[attr-defined]
        value.description = values[value.name]
    return registered
