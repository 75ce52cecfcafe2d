"""Top-level errors carry Apollo-style codes; unexpected ones are masked and logged once."""

from __future__ import annotations

from pathlib import Path

import httpx
import structlog

from app.config import Settings
from app.main import create_app
from tests.conftest import TEST_SECRET, Api, settle_failed_sqlite_connects


async def test_parse_validation_and_variable_errors_are_coded(api: Api) -> None:
    parse = await api.execute("{ onboardingFlow { ")
    validation = await api.execute("{ noSuchField }")
    variables = await api.execute(
        "mutation($i: CompleteOnboardingStepInput!) { completeOnboardingStep(input: $i) "
        "{ __typename } }",
        {"i": {"step": "one", "idempotencyKey": "k" * 20}},
    )

    assert parse["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert validation["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert variables["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_unexpected_errors_are_masked_with_the_request_id(tmp_path: Path) -> None:
    # given a server whose database cannot be opened (a directory where the file should be)
    (tmp_path / "db.sqlite3").mkdir()
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}",
        jwt_secret=TEST_SECRET,
    )
    app = create_app(settings)
    token = app.state.services.tokens.mint("alice")
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            with structlog.testing.capture_logs() as logs:
                response = await client.post(
                    "/graphql",
                    json={"query": "{ myOnboardingProgress { completedSteps } }"},
                    headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-mask-1"},
                )
    finally:
        await app.state.engine.dispose()
        await settle_failed_sqlite_connects()

    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-mask-1"}
    assert "req-mask-1" in error["message"]
    for leak in ("sqlite", "SELECT", "Traceback", "OperationalError"):
        assert leak not in response.text
    logged = [e for e in logs if e["event"] == "graphql.unexpected_error"]
    assert len(logged) == 1
    assert logged[0]["log_level"] == "error"
    assert "OperationalError" in logged[0]["error"]
