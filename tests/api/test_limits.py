"""Abuse limits: each has a safe default and answers with a clear error."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from graphql import get_introspection_query
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth import TokenCodec
from app.config import Settings
from app.main import create_app
from tests.conftest import TEST_SECRET, Api, count, new_key
from tests.flows import DEFAULT_FLOW, valid_metadata

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def app_with(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Any]:
    """Build an app with some settings changed, on a fresh SQLite database."""
    apps: list[LifespanManager] = []

    async def build(**overrides: Any) -> httpx.AsyncClient:
        base: dict[str, Any] = {
            "data_dir": tmp_path,
            "database_url": sqlite_url,
            "jwt_secret": TEST_SECRET,
        }
        settings = Settings(**{**base, **overrides})
        manager = LifespanManager(create_app(settings))
        apps.append(manager)
        await manager.__aenter__()
        transport = httpx.ASGITransport(app=manager.app)
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    yield build
    for manager in reversed(apps):
        await manager.__aexit__(None, None, None)


def type_chain(depth: int) -> str:
    """``{ __type { ofType { ... name } } }``, ``depth`` fields deep, through fragments."""
    links = depth - 2  # __type and the final name
    fragments = [
        f"fragment F{i} on __Type {{ ofType {{ ...F{i + 1} }} }}" for i in range(links)
    ] + [f"fragment F{links} on __Type {{ name }}"]
    return 'query Deep { __type(name: "Query") { ...F0 } }\n' + "\n".join(fragments)


async def test_query_depth_is_limited_introspection_included(api: Api) -> None:
    at_limit = await api.execute(type_chain(15))
    over = await api.execute(type_chain(16))

    assert "errors" not in at_limit
    assert over["data"] is None
    assert over["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert over["errors"][0]["message"] == "'Deep' is 16 fields deep, over the limit of 15."


async def test_graphiql_introspection_fits_the_depth_limit(api: Api) -> None:
    body = await api.execute(get_introspection_query(descriptions=True))

    assert "errors" not in body
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_aliases_are_limited(api: Api) -> None:
    ok = "{ " + " ".join(f"a{i}: onboardingFlow {{ steps {{ step }} }}" for i in range(30)) + " }"
    too_many = ok.replace("{ a0:", "{ extra: onboardingFlow { steps { step } } a0:")

    assert "errors" not in await api.execute(ok)
    body = await api.execute(too_many)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "aliases" in body["errors"][0]["message"]


async def test_tokens_are_limited(api: Api) -> None:
    body = await api.execute("{ " + "__typename " * 2100 + "}")

    assert body["data"] is None
    assert "token" in body["errors"][0]["message"].lower()


async def test_oversized_body_is_413_with_or_without_content_length(
    http: httpx.AsyncClient,
) -> None:
    big = b'{"query": "{ __typename }", "pad": "' + b"x" * (1024 * 1024) + b'"}'

    announced = await http.post(
        "/graphql", content=big, headers={"Content-Type": "application/json"}
    )

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    chunked = await http.post(
        "/graphql", content=chunks(), headers={"Content-Type": "application/json"}
    )
    small_chunked = await http.post(
        "/graphql",
        content=_one_chunk(b'{"query": "{ __typename }"}'),
        headers={"Content-Type": "application/json"},
    )

    assert announced.status_code == 413
    assert chunked.status_code == 413
    assert "content-length" not in chunked.request.headers
    assert chunked.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert small_chunked.status_code == 200
    assert small_chunked.json() == {"data": {"__typename": "Query"}}


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_batched_requests_are_refused(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql", json=[{"query": "{ __typename }"}, {"query": "{ __typename }"}]
    )

    assert response.status_code == 400


async def test_production_hides_introspection_and_graphiql(app_with: Any) -> None:
    client = await app_with(env="production", jwt_secret="k3Y-" + uuid.uuid4().hex + "Zq9!xW")

    introspection = await client.post("/graphql", json={"query": "{ __schema { types { name } } }"})
    graphiql = await client.get("/graphql", headers={"Accept": "text/html"})
    ordinary = await client.post(
        "/graphql", json={"query": "{ onboardingFlow { steps { step } } }"}
    )

    assert introspection.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "introspection" in introspection.json()["errors"][0]["message"].lower()
    assert "graphiql" not in graphiql.text.lower()
    assert ordinary.json()["data"]["onboardingFlow"]["steps"][0]["step"] == 1


async def test_production_can_enable_introspection_explicitly(app_with: Any) -> None:
    client = await app_with(
        env="production",
        jwt_secret="k3Y-" + uuid.uuid4().hex + "Zq9!xW",
        introspection=True,
        graphiql=True,
    )

    introspection = await client.post("/graphql", json={"query": "{ __schema { types { name } } }"})
    graphiql = await client.get("/graphql", headers={"Accept": "text/html"})

    assert "errors" not in introspection.json()
    assert "graphiql" in graphiql.text.lower()


async def test_cors_allows_only_listed_origins(app_with: Any) -> None:
    client = await app_with(cors_origins=["https://app.example.com"])
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }

    allowed = await client.options(
        "/graphql", headers={"Origin": "https://app.example.com", **preflight}
    )
    refused = await client.options(
        "/graphql", headers={"Origin": "https://evil.example.com", **preflight}
    )

    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in refused.headers


COMPLETE = (
    "mutation($i: CompleteOnboardingStepInput!) { completeOnboardingStep(input: $i) "
    "{ __typename ... on RateLimitedError { code retryAfterSeconds retryable } } }"
)


async def _complete(client: httpx.AsyncClient, token: str, step: int) -> dict[str, Any]:
    response = await client.post(
        "/graphql",
        json={
            "query": COMPLETE,
            "variables": {
                "i": {
                    "step": step,
                    "idempotencyKey": new_key(),
                    "metadata": valid_metadata(DEFAULT_FLOW, step),
                }
            },
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    result: dict[str, Any] = response.json()["data"]["completeOnboardingStep"]
    return result


async def test_per_user_rate_limit_answers_a_typed_retryable_error(app_with: Any) -> None:
    client = await app_with(rate_limit_per_minute=3)
    token = _token("rl-local")

    results = [await _complete(client, token, step) for step in (1, 2, 3, 4)]

    assert [r["__typename"] for r in results[:3]] == ["CompleteOnboardingStepSuccess"] * 3
    limited = results[3]
    assert limited["__typename"] == "RateLimitedError"
    assert limited["code"] == "RATE_LIMITED"
    assert limited["retryable"] is True
    assert 1 <= limited["retryAfterSeconds"] <= 60
    other_user = await _complete(client, _token("rl-other"), 1)
    assert other_user["__typename"] == "CompleteOnboardingStepSuccess"


async def test_rate_limit_is_shared_by_workers_through_redis(
    app_with: Any, sqlite_url: str
) -> None:
    # two app instances stand for two worker processes: they share only Redis
    first = await app_with(rate_limit_per_minute=4, redis_url=REDIS_URL)
    second = await app_with(rate_limit_per_minute=4, redis_url=REDIS_URL)
    user = f"rl-redis-{uuid.uuid4().hex}"
    token = _token(user)

    results = await asyncio.gather(
        *(_complete(client, token, 99) for client in (first, second) * 5)
    )

    limited = [r for r in results if r["__typename"] == "RateLimitedError"]
    assert len(limited) == 6  # 10 calls, a budget of 4 across both instances


async def test_unreachable_redis_lets_requests_through(app_with: Any) -> None:
    client = await app_with(rate_limit_per_minute=1, redis_url="redis://127.0.0.1:1/0")
    token = _token("rl-no-redis")

    results = [await _complete(client, token, step) for step in (1, 2)]

    assert [r["__typename"] for r in results] == ["CompleteOnboardingStepSuccess"] * 2


def _token(user: str) -> str:
    return TokenCodec(Settings(jwt_secret=TEST_SECRET), TEST_SECRET).mint(user)


async def test_rate_limited_calls_record_nothing(app_with: Any, sqlite_url: str) -> None:
    client = await app_with(rate_limit_per_minute=1)
    token = _token("rl-nothing")
    await _complete(client, token, 1)

    assert (await _complete(client, token, 2))["__typename"] == "RateLimitedError"

    engine = create_async_engine(sqlite_url)
    try:
        assert await count(engine, "step_completions") == 1
    finally:
        await engine.dispose()


async def test_a_rate_limited_user_still_gets_the_stored_answer_to_a_retry(
    app_with: Any,
) -> None:
    client = await app_with(rate_limit_per_minute=1)
    token = _token("rl-retry")
    key = new_key()
    metadata = valid_metadata(DEFAULT_FLOW, 1)
    body = {
        "query": COMPLETE_WITH_EVENT,
        "variables": {"i": {"step": 1, "idempotencyKey": key, "metadata": metadata}},
    }
    headers = {"Authorization": f"Bearer {token}"}

    first = (await client.post("/graphql", json=body, headers=headers)).json()
    retry = (await client.post("/graphql", json=body, headers=headers)).json()
    new_work = await _complete(client, token, 2)

    original = first["data"]["completeOnboardingStep"]
    replayed = retry["data"]["completeOnboardingStep"]
    assert original["__typename"] == "CompleteOnboardingStepSuccess"
    assert replayed["replayed"] is True
    assert replayed["analytics"]["event"]["id"] == original["analytics"]["event"]["id"]
    assert new_work["__typename"] == "RateLimitedError"


COMPLETE_WITH_EVENT = (
    "mutation($i: CompleteOnboardingStepInput!) { completeOnboardingStep(input: $i) "
    "{ __typename ... on CompleteOnboardingStepSuccess { replayed analytics { event { id } } } } }"
)
