"""A busy mix of users, retries, conflicts and analytics failures keeps the invariants."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy.ext.asyncio import AsyncEngine

from app.kpi import OnboardingFlow
from tests.api.test_analytics_write_failure import break_event_writes
from tests.conftest import Api, new_key
from tests.invariants import assert_core_invariants


async def test_mixed_traffic_keeps_every_invariant(
    api: Api, engine: AsyncEngine, flow: OnboardingFlow
) -> None:
    rng = random.Random(7)
    users = [f"mix-{i}" for i in range(8)]

    async def journey(user: str) -> None:
        for step in range(1, flow.total_steps + 1):
            key = new_key()
            attempts = [api.complete(step, user=user, key=key) for _ in range(rng.randint(1, 3))]
            attempts.append(api.complete(step, user=user))  # a rival submission, new key
            await asyncio.gather(*attempts)

    await asyncio.gather(*(journey(u) for u in users[:4]))
    await break_event_writes(engine)  # from here on every KPI event write fails
    await asyncio.gather(*(journey(u) for u in users[4:]))

    await assert_core_invariants(engine, flow)
