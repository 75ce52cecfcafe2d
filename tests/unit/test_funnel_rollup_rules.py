"""The funnel rollup's pure rules: gap buckets, cohort blocks, which completions count."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

from app.services.funnel import (
    GAP_BUCKET_EDGES,
    MEDIAN_RELATIVE_ERROR,
    SPAN_HOURS,
    cohort_block,
    cohort_plan,
    funnel_reach,
    funnel_rollup_keys,
    gap_bucket,
    gap_bucket_seconds,
)

T = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
US = timedelta(microseconds=1)


def test_every_gap_is_estimated_within_the_documented_bound() -> None:
    rng = random.Random(1)
    gaps = [*range(1, 2000), *(rng.randrange(1, GAP_BUCKET_EDGES[-1]) for _ in range(20000))]
    for edge in GAP_BUCKET_EDGES[:-1]:
        gaps += [edge - 1, edge, edge + 1]
    for gap_us in filter(None, gaps):
        estimate = gap_bucket_seconds(gap_bucket(gap_us)) * 1_000_000
        assert abs(estimate - gap_us) <= gap_us * MEDIAN_RELATIVE_ERROR, gap_us
    assert gap_bucket(0) == 0
    assert gap_bucket_seconds(0) == 0.0


def test_a_range_is_covered_by_blocks_and_raw_edges_exactly_once() -> None:
    rng = random.Random(2)
    for _ in range(300):
        start = T + timedelta(microseconds=rng.randrange(-(10**13), 10**13))
        end = start + timedelta(microseconds=rng.randrange(1, 10**14))
        blocks, raw = cohort_plan(start, end)
        pieces = list(raw)
        for span, first, last in blocks:
            assert cohort_block(first, span) == first and cohort_block(last, span) == last
            pieces.append((first, last))
        pieces.sort()
        assert pieces[0][0] == start and pieces[-1][1] == end
        for (_, b), (c, _) in itertools.pairwise(pieces):
            assert b == c  # contiguous, no overlap
        assert all(b - a < timedelta(hours=1) for a, b in raw)


def test_which_completions_count_and_where() -> None:
    day = timedelta(days=1)
    assert funnel_reach({}, 1, T).days_to_reach == 0  # type: ignore[union-attr]
    assert funnel_reach({1: T}, 2, T + 3 * day).days_to_reach == 3  # type: ignore[union-attr]
    assert funnel_reach({1: T}, 2, T + 3 * day + US).days_to_reach == 4  # type: ignore[union-attr]
    assert funnel_reach({1: T}, 2, T - US) is None  # out of time order
    assert funnel_reach({1: T, 2: T - US}, 3, T + day) is None  # an earlier step was
    assert funnel_reach({1: T}, 3, T + day) is None  # step 2 missing
    assert funnel_reach({1: T}, 2, T + 366 * day) is None  # beyond any window
    assert funnel_reach({1: T, 2: T}, 2, T + day) is not None  # later steps are ignored

    keys = funnel_rollup_keys({1: T, 2: T + day}, 3, T + 2 * day)
    assert keys is not None
    assert [k.span_hours for k in keys] == list(SPAN_HOURS)
    assert {(k.step, k.days_to_reach, k.shard) for k in keys} == {(3, 2, 0)}
    assert all(k.cohort_start <= T < k.cohort_start + timedelta(hours=k.span_hours) for k in keys)


def test_one_completions_keys_differ_only_in_span_and_block() -> None:
    """app.dao.funnel_rollup binds step, days, gap and shard once per completion."""
    start = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)
    for earlier, step, at in (
        ({}, 1, start),
        ({1: start}, 2, start + timedelta(days=2, minutes=5)),
    ):
        keys = funnel_rollup_keys(earlier, step, at)
        assert keys is not None
        assert len({(k.step, k.days_to_reach, k.gap_bucket, k.shard) for k in keys}) == 1
        assert [k.span_hours for k in keys] == list(SPAN_HOURS)
