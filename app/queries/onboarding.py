"""Read side of onboarding: progress lookups, no transaction bookkeeping."""

from __future__ import annotations

from app.dao.onboarding import read_progress
from app.drivers import Driver
from app.kpi import OnboardingFlow
from app.services.onboarding import Progress, progress_of


class OnboardingQueries:
    def __init__(self, driver: Driver, *, flow: OnboardingFlow) -> None:
        self._driver = driver
        self._flow = flow

    async def progress(self, user_id: str) -> Progress:
        # A database failure here is unexpected for a query: the client gets the masked
        # INTERNAL_SERVER_ERROR with the request id; the log gets the driver's error.
        completed = await self._driver.read(read_progress(user_id))
        return progress_of(self._flow, completed)
