"""Read side of onboarding: progress lookups, no transaction bookkeeping."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from app.dao.onboarding import OnboardingDao
from app.kpi import OnboardingFlow
from app.services.onboarding import Progress, progress_of


class OnboardingQueries:
    def __init__(self, engine: AsyncEngine, *, flow: OnboardingFlow) -> None:
        self._engine = engine
        self._flow = flow

    async def progress(self, user_id: str) -> Progress:
        async with self._engine.connect() as conn:
            completed = await OnboardingDao(conn).read_progress(user_id)
        return progress_of(self._flow, completed)
