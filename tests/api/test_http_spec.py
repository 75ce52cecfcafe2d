"""GraphQL over HTTP: the graphql-http audit suite against the real server, plus the
negotiation rules it checks, spelled out."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.server import running_server

AUDIT_DIR = Path(__file__).resolve().parents[1] / "http_audit"


def test_graphql_http_audit_passes_every_must_and_should(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "node is needed for the graphql-http audit"
    assert (AUDIT_DIR / "node_modules" / "graphql-http").is_dir(), (
        "run `npm ci --prefix tests/http_audit` (make test does)"
    )
    env = {"ONBOARDING_KPI_DATA_DIR": str(tmp_path), "ONBOARDING_KPI_LOG_LEVEL": "WARNING"}
    with running_server(env=env, log_dir=tmp_path) as server:
        completed = subprocess.run(  # noqa: S603 - our own script
            [node, str(AUDIT_DIR / "audit.mjs"), f"{server.base_url}/graphql"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    results = json.loads(completed.stdout)

    failing = [r for r in results if r["status"] != "ok" and not r["name"].startswith("MAY")]
    assert failing == []
    musts = [r for r in results if r["name"].startswith("MUST")]
    shoulds = [r for r in results if r["name"].startswith("SHOULD")]
    assert len(musts) >= 13
    assert len(shoulds) >= 23


QUERY = {"query": "{ onboardingFlow { steps { step } } }"}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({"query": "{ onboardingFlow { "}, 400, id="parse-failure"),
        pytest.param({"query": "{ nope }"}, 400, id="validation-failure"),
        pytest.param(QUERY, 200, id="success"),
    ],
)
async def test_graphql_response_json_uses_status_codes(
    http: httpx.AsyncClient, body: dict[str, str], status: int
) -> None:
    response = await http.post(
        "/graphql", json=body, headers={"Accept": "application/graphql-response+json"}
    )

    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/graphql-response+json")
    assert ("data" in response.json()) is (status == 200)


async def test_legacy_json_clients_keep_200(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql", json={"query": "{ nope }"}, headers={"Accept": "application/json"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["data"] is None


async def test_mutation_over_get_is_405(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", params={"query": "mutation { __typename }"})

    assert response.status_code == 405


async def test_post_graphql_is_served_without_redirect(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", json=QUERY, follow_redirects=False)

    assert response.status_code == 200
