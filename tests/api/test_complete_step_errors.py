"""completeOnboardingStep: bad input and bad credentials change nothing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import TEST_SECRET, Api, count, new_key

pytestmark = pytest.mark.usefixtures("app")


async def assert_nothing_recorded(engine: AsyncEngine) -> None:
    for table in ("step_completions", "kpi_events", "analytics_failures", "idempotency_keys"):
        assert await count(engine, table) == 0, table


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        pytest.param({"idempotencyKey": "too-short"}, "idempotencyKey", id="key-too-short"),
        pytest.param({"idempotencyKey": "x" * 256}, "idempotencyKey", id="key-too-long"),
        pytest.param(
            {"idempotencyKey": "has spaces in the key!"}, "idempotencyKey", id="key-chars"
        ),
        pytest.param({"source": ""}, "source", id="source-empty"),
        pytest.param({"source": "Web"}, "source", id="source-uppercase"),
        pytest.param({"source": "s" * 33}, "source", id="source-too-long"),
        pytest.param({"metadata": [1, 2]}, "metadata", id="metadata-not-object"),
        pytest.param({"metadata": {"a": {"b": 1}}}, "metadata", id="metadata-nested"),
        pytest.param({"metadata": {f"k{i}": i for i in range(33)}}, "metadata", id="metadata-keys"),
        pytest.param({"metadata": {"blob": "x" * 4100}}, "metadata", id="metadata-too-big"),
        pytest.param({"metadata": {"note": "a\x00b"}}, "metadata", id="metadata-nul"),
        pytest.param({"step": 0}, "step", id="step-zero"),
    ],
)
async def test_invalid_field_is_named_and_nothing_recorded(
    api: Api, engine: AsyncEngine, fields: dict[str, object], path: str
) -> None:
    variables = {"step": 1, "idempotencyKey": new_key(), **fields}

    result = await api.complete(**variables)  # type: ignore[arg-type]

    assert result["__typename"] == "ValidationError"
    assert result["code"] == "VALIDATION_FAILED"
    assert [e["path"] for e in result["fieldErrors"]] == [["input", path]]
    assert result["fieldErrors"][0]["message"]
    await assert_nothing_recorded(engine)


async def test_lone_surrogate_in_metadata_is_a_validation_error(
    api: Api, engine: AsyncEngine
) -> None:
    # JSON can carry an unpaired surrogate escape; Python decodes it into an unencodable str
    query = (
        "mutation($i: CompleteOnboardingStepInput!) { completeOnboardingStep(input: $i) "
        "{ __typename ... on ValidationError { fieldErrors { path message } } } }"
    )
    body = json.dumps(
        {
            "query": query,
            "variables": {
                "i": {"step": 1, "idempotencyKey": new_key(), "metadata": {"k": "PLACEHOLDER"}}
            },
        }
    ).replace("PLACEHOLDER", "\\ud800")
    response = await api.http.post(
        "/graphql",
        content=body,
        headers={**api.auth("alice"), "Content-Type": "application/json"},
    )

    result = response.json()["data"]["completeOnboardingStep"]
    assert result["__typename"] == "ValidationError"
    assert result["fieldErrors"] == [
        {"path": ["input", "metadata"], "message": "value of 'k' must be valid Unicode text"}
    ]
    await assert_nothing_recorded(engine)


async def test_every_offending_field_is_reported(api: Api, engine: AsyncEngine) -> None:
    result = await api.complete(1, key="short", source="BAD", metadata="not an object")

    assert result["__typename"] == "ValidationError"
    assert [e["path"][1] for e in result["fieldErrors"]] == ["idempotencyKey", "source", "metadata"]
    await assert_nothing_recorded(engine)


async def test_missing_required_field_is_a_graphql_validation_error(api: Api) -> None:
    body = await api.execute(
        'mutation { completeOnboardingStep(input: {idempotencyKey: "k"}) { __typename } }'
    )
    assert body["data"] is None
    assert "step" in body["errors"][0]["message"]


def _forge(claims: dict[str, object], *, secret: str = TEST_SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=alg)


def _alg_none(claims: dict[str, object]) -> str:
    def b64(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def _claims(**overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    return {"sub": "mallory", "exp": now + timedelta(minutes=5), "iat": now, **overrides}


@pytest.mark.parametrize(
    ("headers", "message_part"),
    [
        pytest.param({}, "no bearer token", id="missing"),
        pytest.param({"Authorization": "Basic dXNlcjpwdw=="}, "Bearer", id="wrong-scheme"),
        pytest.param({"Authorization": "Bearer not.a.jwt"}, "not valid", id="malformed"),
        pytest.param(
            {"Authorization": "Bearer " + _forge(_claims(), secret="another-secret-" * 3)},
            "not valid",
            id="forged",
        ),
        pytest.param(
            {
                "Authorization": "Bearer "
                + _forge(_claims(exp=datetime.now(UTC) - timedelta(hours=1)))
            },
            "expired",
            id="expired",
        ),
        pytest.param(
            {
                "Authorization": "Bearer "
                + _alg_none(
                    {
                        "sub": "mallory",
                        "exp": int((datetime.now(UTC) + timedelta(hours=1)).timestamp()),
                    }
                )
            },
            "not valid",
            id="alg-none",
        ),
        pytest.param(
            {"Authorization": "Bearer " + _forge({"exp": datetime.now(UTC) + timedelta(hours=1)})},
            "not valid",
            id="no-subject",
        ),
    ],
)
async def test_bad_credentials_get_authentication_error(
    api: Api, engine: AsyncEngine, headers: dict[str, str], message_part: str
) -> None:
    result = await api.complete(1, headers=headers)

    assert result["__typename"] == "AuthenticationError"
    assert result["code"] == "UNAUTHENTICATED"
    assert message_part in result["message"]
    await assert_nothing_recorded(engine)


async def test_user_comes_from_the_token_not_the_input(api: Api, engine: AsyncEngine) -> None:
    body = await api.execute(
        "mutation($i: CompleteOnboardingStepInput!) { completeOnboardingStep(input: $i) "
        "{ __typename } }",
        {"i": {"step": 1, "idempotencyKey": new_key(), "userId": "victim"}},
        headers=api.auth("attacker"),
    )
    assert body["data"] is None  # unknown input field: rejected by GraphQL validation
    assert await count(engine, "step_completions") == 0
