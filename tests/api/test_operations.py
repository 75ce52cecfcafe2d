"""Health, readiness, metrics, request ids and GraphiQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import structlog
from starlette.applications import Starlette

from app.config import Settings
from app.main import create_app
from tests.conftest import TEST_SECRET, Api, settle_failed_sqlite_connects
from tests.flows import valid_metadata


async def test_livez_and_readyz(http: httpx.AsyncClient) -> None:
    assert (await http.get("/livez")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"


async def _client_for(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    # a "database file" that is a directory cannot be opened
    (tmp_path / "not-a-file.sqlite3").mkdir()
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'not-a-file.sqlite3'}",
        jwt_secret=TEST_SECRET,
    )
    app = create_app(settings)
    try:
        async for client in _client_for(app):
            response = await client.get("/readyz")
            assert response.status_code == 503
            assert response.json() == {"status": "unavailable", "database": "unreachable"}
            assert (await client.get("/livez")).status_code == 200
    finally:
        await app.state.engine.dispose()
        await settle_failed_sqlite_connects()


async def test_metrics_count_outcomes(api: Api, http: httpx.AsyncClient) -> None:
    await api.complete(1)
    await api.complete(3)  # not eligible yet

    text = (await http.get("/metrics")).text

    assert 'onboarding_completions_total{outcome="success"} 1.0' in text
    assert 'onboarding_completions_total{outcome="STEP_NOT_ELIGIBLE"} 1.0' in text
    assert 'kpi_events_recorded_total{kpi_id="onboarding.step_1_completed"} 1.0' in text
    assert 'http_request_duration_seconds_count{method="POST",route="/graphql"} 2.0' in text


async def test_request_id_is_echoed_and_logged(api: Api, http: httpx.AsyncClient) -> None:
    with structlog.testing.capture_logs([structlog.contextvars.merge_contextvars]) as logs:
        response = await http.post(
            "/graphql",
            json={
                "query": "mutation($i: CompleteOnboardingStepInput!) "
                "{ completeOnboardingStep(input: $i) { __typename } }",
                "variables": {
                    "i": {
                        "step": 1,
                        "idempotencyKey": "request-id-test-0001",
                        "metadata": valid_metadata(api.flow, 1),
                    }
                },
            },
            headers={**api.auth("alice"), "X-Request-ID": "req-abc-123"},
        )

    assert response.headers["x-request-id"] == "req-abc-123"
    recorded = [e for e in logs if e["event"] == "completion.recorded"]
    assert recorded and recorded[0]["request_id"] == "req-abc-123"
    generated = (await http.get("/livez")).headers["x-request-id"]
    assert len(generated) == 32


async def test_graphiql_is_served_to_browsers(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert "graphiql" in response.text.lower()
