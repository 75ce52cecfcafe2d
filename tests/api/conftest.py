"""Fixtures for the API tests: recording completions at chosen times, analyst requests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

from app.drivers import Driver
from app.kpi import OnboardingFlow
from app.metrics import Metrics
from app.processors.onboarding import OnboardingProcessor
from app.services.onboarding import CompleteStepCommand
from tests.conftest import Api, new_key
from tests.flows import valid_metadata

Record = Callable[..., Awaitable[None]]


@pytest.fixture
def record(driver: Driver, flow: OnboardingFlow) -> Record:
    """Complete a step through the real processor, at a chosen server time."""

    async def complete(user: str, step: int, at: datetime, source: str = "web") -> None:
        processor = OnboardingProcessor(driver, flow=flow, metrics=Metrics(), clock=lambda: at)
        command = CompleteStepCommand(step, new_key(), source, valid_metadata(flow, step))
        await processor.complete_step(user, command)

    return complete


def analyst(api: Api) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.tokens.mint('ana', roles=['analyst'])}"}


async def query(api: Api, document: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = await api.execute(document, variables, headers=analyst(api))
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data
