"""Time buckets for KPI series (pure): boundaries in any IANA zone, DST included.

Buckets are aligned to the interval in the requested zone (local midnight for DAY,
Monday midnight for WEEK, the local hour for HOUR) and clipped to the half-open
range [start, end). Day and week buckets follow the wall clock, so a day across a
daylight-saving change lasts 23 or 25 hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.errors import InvalidQuery

MAX_SERIES_BUCKETS = 5000


class TimeInterval(StrEnum):
    HOUR = "HOUR"
    DAY = "DAY"
    WEEK = "WEEK"


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime  # in the requested zone
    end: datetime
    clipped_start: datetime  # UTC, within [range start, range end)
    clipped_end: datetime


def parse_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidQuery(f"'{name}' is not an IANA time zone") from None


def _floor(moment: datetime, interval: TimeInterval) -> datetime:
    """Start of the bucket holding ``moment`` (an aware datetime in the target zone)."""
    if interval is TimeInterval.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
    if interval is TimeInterval.WEEK:
        day -= timedelta(days=day.weekday())
    return _normalise(day)


def _normalise(wall: datetime) -> datetime:
    """Resolve a wall-clock time in its zone (a midnight skipped by DST moves forward)."""
    return wall.astimezone(UTC).astimezone(wall.tzinfo)


def _next(start: datetime, interval: TimeInterval) -> datetime:
    if interval is TimeInterval.HOUR:  # absolute hours: DST never makes one ambiguous
        return (start.astimezone(UTC) + timedelta(hours=1)).astimezone(start.tzinfo)
    days = 7 if interval is TimeInterval.WEEK else 1
    wall = start.replace(tzinfo=None) + timedelta(days=days)
    return _normalise(wall.replace(tzinfo=start.tzinfo))


def buckets(start: datetime, end: datetime, interval: TimeInterval, zone: ZoneInfo) -> list[Bucket]:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidQuery("from and to must carry a time zone offset")
    if end <= start:
        raise InvalidQuery("to must be later than from")
    result: list[Bucket] = []
    bucket_start = _floor(start.astimezone(zone), interval)
    while bucket_start < end:
        bucket_end = _next(bucket_start, interval)
        result.append(
            Bucket(
                start=bucket_start,
                end=bucket_end,
                clipped_start=max(bucket_start, start).astimezone(UTC),
                clipped_end=min(bucket_end, end).astimezone(UTC),
            )
        )
        if len(result) > MAX_SERIES_BUCKETS:
            raise InvalidQuery(
                f"the range holds more than {MAX_SERIES_BUCKETS} {interval.value} buckets; "
                "use a shorter range or a longer interval"
            )
        bucket_start = bucket_end
    return result
