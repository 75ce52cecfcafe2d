"""Per-user rate limits on completeOnboardingStep, shared by every worker through Redis.

A fixed one-minute window per user: ``INCR`` and ``EXPIRE`` in one round trip, atomic
in Redis, so N workers on any number of hosts enforce one budget. Without a Redis URL
the window lives in the process (right for one worker; with several, each has its own).
If Redis cannot be reached the limiter lets requests through and logs it: a broken
limiter must not stop users completing onboarding.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from app.errors import RateLimited
from app.logging import get_logger

WINDOW_SECONDS = 60
log = get_logger(__name__)


class RateLimiter(Protocol):
    async def check(self, user_id: str) -> None:
        """Count one call; raise ``RateLimited`` if the user is over budget."""

    async def close(self) -> None: ...


def _window(now: float) -> tuple[int, int]:
    """(window number, whole seconds until it ends, at least 1)."""
    window = int(now // WINDOW_SECONDS)
    return window, max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))


class NoRateLimit:
    async def check(self, user_id: str) -> None:
        return None

    async def close(self) -> None:
        return None


class LocalRateLimiter:
    def __init__(self, limit: int, *, clock: Callable[[], float] = time.time) -> None:
        self._limit = limit
        self._clock = clock
        self._window = -1
        self._counts: dict[str, int] = {}  # requests per user in the current window

    async def check(self, user_id: str) -> None:
        window, retry_after = _window(self._clock())
        if window != self._window:
            # Only the current window counts: forget the finished one whole (O(1); sweeping
            # a dict of every user of the minute would stall the event loop).
            self._window, self._counts = window, {}
        count = self._counts.get(user_id, 0) + 1
        self._counts[user_id] = count
        if count > self._limit:
            raise RateLimited(retry_after_seconds=retry_after)

    async def close(self) -> None:
        return None


class RedisRateLimiter:
    def __init__(self, url: str, limit: int, *, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._limit = limit
        self._clock = clock

    async def check(self, user_id: str) -> None:
        window, retry_after = _window(self._clock())
        key = f"onboarding-kpi:rate:complete:{user_id}:{window}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, WINDOW_SECONDS + 5)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("rate_limit.unavailable", error=repr(exc))
            return
        if int(count) > self._limit:
            raise RateLimited(retry_after_seconds=retry_after)

    async def close(self) -> None:
        await self._redis.aclose()


def create_rate_limiter(*, limit: int, redis_url: str | None) -> RateLimiter:
    if limit <= 0:
        return NoRateLimit()
    if redis_url:
        return RedisRateLimiter(redis_url, limit)
    return LocalRateLimiter(limit)
