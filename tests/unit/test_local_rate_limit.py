"""The per-process rate limiter: a fixed one-minute window per user."""

from __future__ import annotations

import pytest

from app.errors import RateLimited
from app.ratelimit import LocalRateLimiter


async def test_the_limit_applies_per_user_and_resets_with_the_window() -> None:
    now = [120.0]
    limiter = LocalRateLimiter(2, clock=lambda: now[0])
    await limiter.check("a")
    await limiter.check("a")
    await limiter.check("b")  # another user has their own count
    with pytest.raises(RateLimited) as refused:
        await limiter.check("a")
    assert refused.value.retry_after_seconds == 60

    now[0] = 179.5  # same window: still refused, the wait shrinks
    with pytest.raises(RateLimited) as refused:
        await limiter.check("a")
    assert refused.value.retry_after_seconds == 1

    now[0] = 180.0  # the next window starts from zero
    await limiter.check("a")
    await limiter.check("a")
    with pytest.raises(RateLimited):
        await limiter.check("a")


async def test_a_finished_window_is_forgotten_whole() -> None:
    now = [0.0]
    limiter = LocalRateLimiter(1, clock=lambda: now[0])
    for user in range(1000):
        await limiter.check(f"u{user}")
    now[0] = 60.0
    await limiter.check("late")
    assert limiter._counts == {"late": 1}
