"""The onboarding funnel (pure): who reached each step, in order, within the window."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.kpi import OnboardingFlow

MAX_CONVERSION_WINDOW_DAYS = 365


@dataclass(frozen=True, slots=True)
class FunnelStep:
    step: int
    users: int
    conversion_from_start: float | None
    conversion_from_previous: float | None
    median_seconds_from_previous: float | None


def funnel_from_counts(
    flow: OnboardingFlow, counts: Iterable[tuple[int, int, float | None]]
) -> list[FunnelStep]:
    """Every step of the flow from (step, users, median seconds from previous) rows."""
    by_step = {step: (users, median) for step, users, median in counts}
    result = []
    for number in range(1, flow.total_steps + 1):
        users, median = by_step.get(number, (0, None))
        before = by_step.get(number - 1, (0, None))[0] if number > 1 else users
        start = by_step.get(1, (0, None))[0]
        result.append(
            FunnelStep(
                step=number,
                users=users,
                conversion_from_start=users / start if start else None,
                conversion_from_previous=users / before if before else None,
                median_seconds_from_previous=median if number > 1 else None,
            )
        )
    return result


def funnel(
    flow: OnboardingFlow,
    completions: Iterable[tuple[str, int, datetime]],
    *,
    window: timedelta,
) -> list[FunnelStep]:
    """The reference definition of the funnel, from raw rows (tests hold the SQL to it).

    ``completions`` are (user, step, completed_at) of the cohort (users whose step 1 is
    in the range). A user reaches step k when steps 1..k were completed in order and
    step k no later than ``window`` after step 1."""
    by_user: dict[str, dict[int, datetime]] = defaultdict(dict)
    for user, step, completed_at in completions:
        by_user[user][step] = completed_at

    reached = [0] * (flow.total_steps + 1)
    gaps: list[list[float]] = [[] for _ in range(flow.total_steps + 1)]
    for steps in by_user.values():
        start = steps[1]
        previous = start
        for number in range(1, flow.total_steps + 1):
            at = steps.get(number)
            if at is None or at < previous or at - start > window:
                break
            reached[number] += 1
            if number > 1:
                gaps[number].append((at - previous).total_seconds())
            previous = at

    result = []
    for number in range(1, flow.total_steps + 1):
        users = reached[number]
        before = reached[number - 1] if number > 1 else users
        result.append(
            FunnelStep(
                step=number,
                users=users,
                conversion_from_start=users / reached[1] if reached[1] else None,
                conversion_from_previous=users / before if before else None,
                median_seconds_from_previous=statistics.median(gaps[number])
                if gaps[number]
                else None,
            )
        )
    return result
