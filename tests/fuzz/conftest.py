"""Fixtures for the fuzz tests: the app on a fresh database (per engine), driven synchronously."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.auth import TokenCodec
from app.config import Settings
from tests.fuzz.harness import Harness, fuzz_settings


@pytest.fixture
def harness(settings: Settings, tokens: TokenCodec) -> Iterator[Harness]:
    with Harness(fuzz_settings(settings), tokens) as running:
        yield running
