"""Two worker processes on one PostgreSQL: idempotency and the one-event rule hold across them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth import TokenCodec
from app.config import Settings
from app.db import normalise_url
from app.flow_file import DEFAULT_FLOW
from tests.conftest import COMPLETE_STEP, TEST_SECRET, rows
from tests.databases import PostgresDatabases
from tests.flows import valid_metadata
from tests.invariants import assert_core_invariants
from tests.server import running_server

USERS = 40


@pytest.fixture
def database_url(postgres_databases: PostgresDatabases, postgres_database: str) -> str:
    return postgres_databases.url(postgres_database)


def _worker_processes(pid: int) -> list[str]:
    """uvicorn's spawned workers (its supervisor also keeps a resource tracker child)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    cmdlines = [Path(f"/proc/{child}/cmdline").read_bytes().decode() for child in children]
    return [c for c in cmdlines if "spawn_main" in c and "resource_tracker" not in c]


STEP_1 = valid_metadata(DEFAULT_FLOW, 1)


def _requests(tokens: TokenCodec) -> list[tuple[str, str, dict[str, Any]]]:
    """Per user: an exact retry storm, a conflicting reuse, a rival key, and step 2."""
    plan = []
    for i in range(USERS):
        user = f"mp-user-{i}"
        key_a, key_b, key_c = (str(uuid.uuid4()) for _ in range(3))
        plan += [(user, key_a, {"step": 1, "source": "web", "metadata": STEP_1})] * 3
        plan.append((user, key_a, {"step": 1, "source": "ios", "metadata": STEP_1}))
        plan.append((user, key_b, {"step": 1, "source": "web", "metadata": STEP_1}))
        plan.append((user, key_c, {"step": 2, "metadata": valid_metadata(DEFAULT_FLOW, 2)}))
    return plan


async def test_two_workers_record_each_completion_and_event_once(
    database_url: str, tmp_path: Path
) -> None:
    tokens = TokenCodec(Settings(jwt_secret=TEST_SECRET), TEST_SECRET)
    plan = _requests(tokens)
    assert len(plan) >= 200
    env = {
        "ONBOARDING_KPI_DATABASE_URL": database_url,
        "ONBOARDING_KPI_JWT_SECRET": TEST_SECRET,
        "ONBOARDING_KPI_DATA_DIR": str(tmp_path),
        "ONBOARDING_KPI_LOG_LEVEL": "WARNING",
    }
    with running_server(env=env, log_dir=tmp_path, workers=2) as server:
        assert len(_worker_processes(server.process.pid)) == 2
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=60) as http:

            async def send(user: str, key: str, fields: dict[str, Any]) -> dict[str, Any]:
                response = await http.post(
                    "/graphql",
                    json={
                        "query": COMPLETE_STEP,
                        "variables": {"input": {"idempotencyKey": key, **fields}},
                    },
                    headers={"Authorization": f"Bearer {tokens.mint(user)}"},
                )
                assert response.status_code == 200, response.text
                body = response.json()
                assert "errors" not in body, body
                result: dict[str, Any] = body["data"]["completeOnboardingStep"]
                return result

            results = await asyncio.gather(*(send(*request) for request in plan))

    # every answer is a success or an expected typed refusal; never a persistence error
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for (user, key, _), result in zip(plan, results, strict=True):
        assert result["__typename"] in {
            "CompleteOnboardingStepSuccess",
            "IdempotencyConflictError",
            "StepNotEligibleError",
        }, result
        by_key[(user, key)].append(result)
    for answers in by_key.values():  # one key, one answer (fresh or replayed)
        successes = [a for a in answers if a["__typename"] == "CompleteOnboardingStepSuccess"]
        assert sum(not a["replayed"] for a in successes) <= 1
        # compared as canonical JSON: PostgreSQL's jsonb keeps object keys in its own order
        answers_seen = {
            (a["completion"]["completedAt"], json.dumps(a["analytics"], sort_keys=True))
            for a in successes
        }
        assert len(answers_seen) <= 1

    engine = create_async_engine(normalise_url(database_url))
    try:
        await assert_core_invariants(engine, DEFAULT_FLOW)
        step_1 = await rows(engine, "SELECT user_id FROM step_completions WHERE step = 1")
        assert len(step_1) == USERS
        events = {
            str(r["id"]): r for r in await rows(engine, "SELECT id, user_id, step FROM kpi_events")
        }
        assert len(events) == USERS
        for (user, _, fields), result in zip(plan, results, strict=True):
            if result["__typename"] == "CompleteOnboardingStepSuccess" and fields["step"] == 1:
                event = events[result["analytics"]["event"]["id"]]
                assert (event["user_id"], event["step"]) == (user, 1)
    finally:
        await engine.dispose()
