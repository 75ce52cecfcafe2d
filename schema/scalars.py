"""Scalars: DateTime values must say which instant they mean."""

from __future__ import annotations

from datetime import datetime

import strawberry


def _parse(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime must be an ISO 8601 string")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("DateTime needs a UTC offset, e.g. 2026-03-01T00:00:00Z")
    return moment


AwareDateTime = strawberry.scalar(
    name="DateTime",
    description="An instant: ISO 8601 date and time with a UTC offset, "
    "e.g. 2026-03-01T09:30:00Z or 2026-03-01T10:30:00+01:00.",
    serialize=lambda value: value.isoformat(),
    parse_value=_parse,
)
