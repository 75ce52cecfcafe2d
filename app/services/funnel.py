"""The onboarding funnel (pure): who reached each step, in order, within the window."""

from __future__ import annotations

import bisect
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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


# -- the cohort rollup (funnel_cohort_rollups) ----------------------------------------------
#
# One row counts the users whose step 1 lies in a cohort block [cohort_start, + span_hours)
# and who reached ``step`` (steps 1..step in order) ``days_to_reach`` days after step 1
# (rounded up, so "within W days" is exactly ``days_to_reach <= W``), with the time from
# the previous step in ``gap_bucket``. Every completion counts once in a block of each
# span: a range [from, to) is then a few blocks per span (at most 3 on each side, as the
# spans grow 4x) plus the partial hours at its ends, which are read from step_completions.

US = timedelta(microseconds=1)
DAY_US = 86_400_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Block sizes, smallest first; each divides the next, all aligned to the epoch.
SPAN_HOURS = (1, 4, 16, 64, 256, 1024, 4096)
#: Step-1 rows (one per block, hit by every new user) are spread over shards, as the KPI
#: event rollup's slots are, so concurrent sign-ups on PostgreSQL wait less on one row.
STEP_1_SHARDS = 8


def _gap_bucket_edges() -> tuple[int, ...]:
    """Lower bounds in microseconds of the gap buckets 1, 2, ...; integer arithmetic only,
    so that every machine and the migration's backfill agree on them.

    Each bucket [e, next) holds integers up to next - 1 <= 1.02 e: below 50 µs one value
    per bucket, then 2 % wide. Covers gaps up to the longest window (365 days)."""
    edges, edge = [], 1
    while edge <= (MAX_CONVERSION_WINDOW_DAYS + 1) * DAY_US:
        edges.append(edge)
        edge += max(1, edge // 50)
    return tuple(edges)


GAP_BUCKET_EDGES = _gap_bucket_edges()
#: Bound on the relative error of a median read from the rollup: the estimate of a bucket
#: is the geometric mean of its smallest and largest value, sqrt(1.02) - 1 < 0.995 %.
MEDIAN_RELATIVE_ERROR = 0.01


def gap_bucket(gap_us: int) -> int:
    """0 for no time at all, else the bucket b >= 1 whose range holds ``gap_us``."""
    return 0 if gap_us <= 0 else bisect.bisect_right(GAP_BUCKET_EDGES, gap_us)


def gap_bucket_seconds(bucket: int) -> float:
    """The estimate of every gap in ``bucket``, in seconds (within MEDIAN_RELATIVE_ERROR)."""
    if bucket <= 0:
        return 0.0
    low = GAP_BUCKET_EDGES[bucket - 1]
    high = GAP_BUCKET_EDGES[bucket] - 1 if bucket < len(GAP_BUCKET_EDGES) else low
    return math.sqrt(low * high) / 1_000_000


def cohort_block(moment: datetime, span_hours: int) -> datetime:
    """Start of the ``span_hours`` block that holds ``moment`` (blocks aligned to the epoch)."""
    span_us = span_hours * 3_600_000_000
    offset = (moment - EPOCH) // US
    return EPOCH + (offset - offset % span_us) * US


@dataclass(frozen=True, slots=True)
class FunnelReach:
    """How a user reached a step: what the funnel needs of one completion."""

    step: int
    started_at: datetime  # the user's step 1
    days_to_reach: int
    gap_bucket: int


@dataclass(frozen=True, slots=True)
class FunnelRollupKey:
    """One funnel_cohort_rollups row to add 1 to."""

    span_hours: int
    cohort_start: datetime
    step: int
    days_to_reach: int
    gap_bucket: int
    shard: int


def funnel_reach(
    earlier: Mapping[int, datetime], step: int, completed_at: datetime
) -> FunnelReach | None:
    """How completing ``step`` at ``completed_at`` reaches the funnel, given the user's
    earlier completions (step -> time; later or equal steps are ignored).

    None when it never counts: an earlier step is missing, the steps are out of time
    order (the reference stops at the first one), or it lies beyond the longest window.
    """
    chain: list[datetime] = []
    for number in range(1, step):
        at = earlier.get(number)
        if at is None or (chain and at < chain[-1]):
            return None
        chain.append(at)
    if chain and completed_at < chain[-1]:
        return None
    started_at = chain[0] if chain else completed_at
    days = -(-((completed_at - started_at) // US) // DAY_US)  # ceiling, exact
    if days > MAX_CONVERSION_WINDOW_DAYS:
        return None
    gap = gap_bucket((completed_at - chain[-1]) // US) if chain else 0
    return FunnelReach(step, started_at, days, gap)


def funnel_rollup_keys(
    earlier: Mapping[int, datetime], step: int, completed_at: datetime
) -> list[FunnelRollupKey] | None:
    """The rollup rows that completing ``step`` at ``completed_at`` adds 1 to (one per
    span, smallest span first: writers lock them in this order), or None.

    This is the whole write-side rule: the processor passes the user's completions read
    in the same transaction, and the migration's backfill replays every completion
    through it, so the rollup always equals this function summed over step_completions.
    """
    reach = funnel_reach(earlier, step, completed_at)
    if reach is None:
        return None
    shard = reach.started_at.microsecond % STEP_1_SHARDS if step == 1 else 0
    return [
        FunnelRollupKey(
            span_hours=span,
            cohort_start=cohort_block(reach.started_at, span),
            step=step,
            days_to_reach=reach.days_to_reach,
            gap_bucket=reach.gap_bucket,
            shard=shard,
        )
        for span in SPAN_HOURS
    ]


def user_reaches(steps: Mapping[int, datetime]) -> list[FunnelReach]:
    """Every FunnelReach of one user's completions (what the rollup holds for the user)."""
    found = []
    for step, at in sorted(steps.items()):
        reach = funnel_reach(steps, step, at)
        if reach is not None:
            found.append(reach)
    return found


def cohort_plan(
    start: datetime, end: datetime
) -> tuple[list[tuple[int, datetime, datetime]], list[tuple[datetime, datetime]]]:
    """Cover [start, end) with whole rollup blocks and raw edges.

    Returns (blocks, raw): ``blocks`` are (span_hours, first block start, end) with every
    block of that span starting in [first, end) inside the range, largest spans first;
    ``raw`` the (at most two) partial hours at the ends, to count from step_completions.
    """
    hour = SPAN_HOURS[0]
    low = cohort_block(start, hour)
    if low < start:
        low += timedelta(hours=hour)
    high = cohort_block(end, hour)
    if high <= low:
        return [], [(start, end)]
    raw = [(a, b) for a, b in ((start, low), (high, end)) if a < b]
    blocks: list[tuple[int, datetime, datetime]] = []
    pending = [(low, high, len(SPAN_HOURS) - 1)]
    while pending:
        a, b, level = pending.pop()
        if a >= b:
            continue
        span = SPAN_HOURS[level]
        first = cohort_block(a, span)
        if first < a:
            first += timedelta(hours=span)
        last = cohort_block(b, span)
        if first < last:
            blocks.append((span, first, last))
        else:
            first = last = b  # nothing whole at this span: all of [a, b) goes lower
        if level > 0:
            pending.append((a, first, level - 1))
            pending.append((last, b, level - 1))
    return blocks, raw


def funnel_from_histogram(
    flow: OnboardingFlow, histogram: Mapping[tuple[int, int], int]
) -> list[FunnelStep]:
    """The funnel from users per (step, gap bucket): exact counts, medians from buckets."""
    counts = []
    for number in range(1, flow.total_steps + 1):
        buckets = sorted((b, n) for (s, b), n in histogram.items() if s == number and n > 0)
        users = sum(n for _, n in buckets)
        median = None
        if number > 1 and users:
            low_rank, high_rank = (users + 1) // 2, (users + 2) // 2  # 1-based middle ranks
            median = (_value_at(buckets, low_rank) + _value_at(buckets, high_rank)) / 2
        counts.append((number, users, median))
    return funnel_from_counts(flow, counts)


def _value_at(buckets: list[tuple[int, int]], rank: int) -> float:
    seen = 0
    for bucket, users in buckets:
        seen += users
        if seen >= rank:
            return gap_bucket_seconds(bucket)
    raise ValueError("rank beyond the histogram")
