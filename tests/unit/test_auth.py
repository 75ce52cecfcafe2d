"""Bearer tokens (app/auth.py) and the secret rules of the settings (app/config.py)."""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from pydantic import ValidationError

from app import auth
from app.auth import MAX_TOKEN_LENGTH, Principal, TokenCodec, resolve_secret
from app.config import Settings
from app.errors import AuthenticationFailed, ErrorCode

# 64+ bytes, so that PyJWT's minimum key length holds for HS512 as well as HS256
SECRET = "unit-test-secret-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOP"
OTHER_SECRET = "another-secret-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOP"

NO_TOKEN = "Sign in: this request has no bearer token."
BAD_HEADER = "The Authorization header must be 'Bearer <token>'."
TOO_LONG = "The bearer token is too long."
INVALID = "The bearer token is not valid."
EXPIRED = "The session has expired; sign in again."
NO_USER = "The bearer token names no valid user."
BAD_ROLES = "The bearer token's roles are malformed."

ISSUER = "https://auth.example.test"
AUDIENCE = "onboarding-kpi"


@pytest.fixture(autouse=True)
def _no_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read ONBOARDING_KPI_* variables; these tests must not see the caller's."""
    for name in list(os.environ):
        if name.upper().startswith("ONBOARDING_KPI_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, jwt_secret=SECRET)


@pytest.fixture
def codec(settings: Settings) -> TokenCodec:
    return TokenCodec(settings, SECRET)


def now() -> datetime:
    return datetime.now(UTC)


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims; an override of ``None`` removes the claim."""
    base: dict[str, Any] = {"sub": "alice", "iat": now(), "exp": now() + timedelta(hours=1)}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], *, key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=algorithm)


def b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned_token(header: dict[str, Any], payload: dict[str, Any], signature: str = "") -> str:
    json_ready = {
        k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in payload.items()
    }
    return f"{b64url(header)}.{b64url(json_ready)}.{signature}"


def bearer(token: str) -> str:
    return f"Bearer {token}"


def rejection(codec: TokenCodec, authorization: str | None) -> str:
    with pytest.raises(AuthenticationFailed) as excinfo:
        codec.authenticate(authorization)
    assert excinfo.value.code is ErrorCode.UNAUTHENTICATED
    return excinfo.value.message


# --- mint and authenticate --------------------------------------------------------------------


def test_minted_token_authenticates_with_its_roles(codec: TokenCodec) -> None:
    token = codec.mint("alice", roles=["editor", "admin", "editor"])

    principal = codec.authenticate(bearer(token))

    assert principal == Principal(user_id="alice", roles=frozenset({"admin", "editor"}))


def test_minted_token_claims(codec: TokenCodec) -> None:
    before = int(now().timestamp())

    token = codec.mint("alice", roles=["editor", "admin", "editor"], ttl=timedelta(minutes=5))

    decoded = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert decoded["sub"] == "alice"
    assert decoded["roles"] == ["admin", "editor"]
    assert decoded["exp"] - decoded["iat"] == 300
    assert before <= decoded["iat"] <= int(now().timestamp())
    assert "iss" not in decoded
    assert "aud" not in decoded


def test_token_without_roles_has_no_roles(codec: TokenCodec) -> None:
    assert codec.authenticate(bearer(sign(claims()))) == Principal("alice", frozenset())
    assert codec.authenticate(bearer(codec.mint("bob"))) == Principal("bob", frozenset())


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("bearer {token}", id="lowercase-scheme"),
        pytest.param("BEARER {token}", id="uppercase-scheme"),
        pytest.param("Bearer   {token}  ", id="extra-spaces"),
    ],
)
def test_scheme_is_case_insensitive_and_spaces_are_trimmed(
    codec: TokenCodec, authorization: str
) -> None:
    token = codec.mint("alice")

    assert codec.authenticate(authorization.format(token=token)).user_id == "alice"


def test_expired_within_leeway_is_still_accepted(codec: TokenCodec) -> None:
    # the default leeway is 30 seconds
    token = sign(claims(exp=now() - timedelta(seconds=10)))

    assert codec.authenticate(bearer(token)).user_id == "alice"


def test_not_before_within_leeway_is_accepted(codec: TokenCodec) -> None:
    token = sign(claims(nbf=now() + timedelta(seconds=10)))

    assert codec.authenticate(bearer(token)).user_id == "alice"


def test_zero_leeway_rejects_a_just_expired_token(tmp_path: Path) -> None:
    strict = TokenCodec(Settings(data_dir=tmp_path, jwt_leeway_seconds=0), SECRET)
    token = sign(claims(exp=now() - timedelta(seconds=10)))

    assert rejection(strict, bearer(token)) == EXPIRED


def test_a_remembered_token_is_still_refused_once_it_expires(tmp_path: Path) -> None:
    # given a token that verified (and is now remembered) with one second left
    strict = TokenCodec(Settings(data_dir=tmp_path, jwt_leeway_seconds=0), SECRET)
    token = bearer(sign(claims(exp=now() + timedelta(seconds=1))))
    assert strict.authenticate(token).user_id == "alice"
    assert strict.authenticate(token).user_id == "alice"

    # when its expiry passes
    time.sleep(1.1)

    # then the remembered verification does not outlive it
    assert rejection(strict, token) == EXPIRED


def test_a_token_verified_by_one_secret_is_not_accepted_under_another(tmp_path: Path) -> None:
    token = bearer(sign(claims()))
    assert TokenCodec(Settings(data_dir=tmp_path), SECRET).authenticate(token).user_id == "alice"

    assert rejection(TokenCodec(Settings(data_dir=tmp_path), OTHER_SECRET), token) == INVALID


def test_a_refused_token_is_refused_every_time(codec: TokenCodec) -> None:
    forged = bearer(sign(claims(), key=OTHER_SECRET))

    assert [rejection(codec, forged) for _ in range(3)] == [INVALID] * 3


def test_remembered_tokens_are_bounded(codec: TokenCodec, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "VERIFIED_TOKENS_KEPT", 3)
    tokens = [bearer(sign(claims(sub=f"user-{i}"))) for i in range(5)]

    users = [codec.authenticate(token).user_id for token in tokens + tokens[::-1]]

    assert users == [f"user-{i}" for i in [0, 1, 2, 3, 4, 4, 3, 2, 1, 0]]
    assert len(codec._verified) == 3  # the least recently used were forgotten


def test_sub_of_128_characters_is_accepted(codec: TokenCodec) -> None:
    assert codec.authenticate(bearer(sign(claims(sub="u" * 128)))).user_id == "u" * 128


def test_token_of_exactly_the_maximum_length_is_accepted(codec: TokenCodec) -> None:
    # given a valid token padded to exactly MAX_TOKEN_LENGTH characters
    token = next(
        (t for n in range(6000, 6200) if len(t := sign(claims(pad="x" * n))) == MAX_TOKEN_LENGTH),
        None,
    )
    assert token is not None

    assert codec.authenticate(bearer(token)).user_id == "alice"
    # and one more character (a longer pad) is refused before any decoding
    longer = sign(claims(pad="x" * 6200))
    assert len(longer) > MAX_TOKEN_LENGTH
    assert rejection(codec, bearer(longer)) == TOO_LONG


# --- rejected headers and tokens --------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        pytest.param(None, NO_TOKEN, id="missing-header"),
        pytest.param("", NO_TOKEN, id="empty-header"),
        pytest.param("Basic x", BAD_HEADER, id="basic-scheme"),
        pytest.param("Token abc.def.ghi", BAD_HEADER, id="other-scheme"),
        pytest.param("Bearer", BAD_HEADER, id="bearer-without-token"),
        pytest.param("Bearer    ", BAD_HEADER, id="bearer-with-blank-token"),
        pytest.param("Bearer abc", INVALID, id="malformed-token"),
        pytest.param("Bearer a.b.c", INVALID, id="three-garbage-segments"),
        pytest.param("Bearer " + "a" * (MAX_TOKEN_LENGTH + 1), TOO_LONG, id="8193-chars"),
    ],
)
def test_bad_authorization_header_is_rejected(
    codec: TokenCodec, authorization: str | None, message: str
) -> None:
    assert rejection(codec, authorization) == message


def _tampered() -> str:
    header, _, signature = sign(claims()).split(".")
    return f"{header}.{b64url({'sub': 'mallory', 'exp': 4_102_444_800})}.{signature}"


TOKEN_CASES: list[Any] = [
    pytest.param(lambda: sign(claims(), key=OTHER_SECRET), INVALID, id="other-secret"),
    pytest.param(_tampered, INVALID, id="tampered-payload"),
    pytest.param(
        lambda: unsigned_token({"alg": "none", "typ": "JWT"}, claims()), INVALID, id="alg-none"
    ),
    pytest.param(
        lambda: unsigned_token({"alg": "None", "typ": "JWT"}, claims()), INVALID, id="alg-None"
    ),
    pytest.param(lambda: sign(claims(), algorithm="HS512"), INVALID, id="hs512"),
    pytest.param(
        lambda: unsigned_token({"alg": "RS256", "typ": "JWT"}, claims(), signature="c2ln"),
        INVALID,
        id="rs256-header",
    ),
    pytest.param(
        lambda: sign(claims(exp=now() - timedelta(seconds=31))), EXPIRED, id="expired-31s"
    ),
    pytest.param(lambda: sign(claims(exp=now() - timedelta(hours=1))), EXPIRED, id="expired-1h"),
    pytest.param(
        lambda: sign(claims(nbf=now() + timedelta(seconds=60))), INVALID, id="nbf-in-future"
    ),
    pytest.param(
        lambda: sign(claims(iat=now() + timedelta(seconds=60))), INVALID, id="iat-in-future"
    ),
    pytest.param(lambda: sign(claims(exp=None)), INVALID, id="missing-exp"),
    pytest.param(lambda: sign(claims(sub=None)), INVALID, id="missing-sub"),
    pytest.param(lambda: sign(claims(sub=123)), INVALID, id="sub-not-a-string"),
    pytest.param(lambda: sign(claims(sub="")), NO_USER, id="empty-sub"),
    pytest.param(lambda: sign(claims(sub="u" * 129)), NO_USER, id="sub-129-chars"),
    pytest.param(lambda: sign(claims(roles="admin")), BAD_ROLES, id="roles-a-string"),
    pytest.param(lambda: sign(claims(roles={"admin": True})), BAD_ROLES, id="roles-an-object"),
    pytest.param(lambda: sign(claims(roles=["admin", 1])), BAD_ROLES, id="roles-not-strings"),
    pytest.param(lambda: sign(claims(pad="x" * 8192)), TOO_LONG, id="longer-than-8192"),
]


@pytest.mark.parametrize(("make_token", "message"), TOKEN_CASES)
def test_bad_token_is_rejected(
    codec: TokenCodec, make_token: Callable[[], str], message: str
) -> None:
    assert rejection(codec, bearer(make_token())) == message


# --- issuer and audience ----------------------------------------------------------------------


@pytest.fixture
def scoped_codec(tmp_path: Path) -> TokenCodec:
    settings = Settings(data_dir=tmp_path, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    return TokenCodec(settings, SECRET)


def test_minted_token_carries_the_configured_issuer_and_audience(
    scoped_codec: TokenCodec,
) -> None:
    token = scoped_codec.mint("alice")

    decoded = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE)
    assert (decoded["iss"], decoded["aud"]) == (ISSUER, AUDIENCE)
    assert scoped_codec.authenticate(bearer(token)).user_id == "alice"


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"iss": ISSUER, "aud": AUDIENCE}, id="exact"),
        pytest.param({"iss": ISSUER, "aud": ["other", AUDIENCE]}, id="audience-in-list"),
    ],
)
def test_correct_issuer_and_audience_are_accepted(
    scoped_codec: TokenCodec, extra: dict[str, Any]
) -> None:
    assert scoped_codec.authenticate(bearer(sign(claims(**extra)))).user_id == "alice"


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"iss": "https://evil.example.test", "aud": AUDIENCE}, id="wrong-issuer"),
        pytest.param({"aud": AUDIENCE}, id="missing-issuer"),
        pytest.param({"iss": ISSUER, "aud": "other-service"}, id="wrong-audience"),
        pytest.param({"iss": ISSUER}, id="missing-audience"),
        pytest.param({"iss": ISSUER, "aud": ["other-service"]}, id="audience-list-without-ours"),
    ],
)
def test_wrong_issuer_or_audience_is_rejected(
    scoped_codec: TokenCodec, extra: dict[str, Any]
) -> None:
    assert rejection(scoped_codec, bearer(sign(claims(**extra)))) == INVALID


def test_issuer_and_audience_are_not_checked_when_not_configured(codec: TokenCodec) -> None:
    token = sign(claims(iss="https://anyone.example.test", aud="anything"))

    assert codec.authenticate(bearer(token)).user_id == "alice"


def test_token_of_an_unscoped_codec_is_rejected_by_a_scoped_one(
    codec: TokenCodec, scoped_codec: TokenCodec
) -> None:
    assert rejection(scoped_codec, bearer(codec.mint("alice"))) == INVALID


# --- resolve_secret ---------------------------------------------------------------------------


def test_configured_secret_is_used_and_nothing_is_written(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", jwt_secret=SECRET)

    assert resolve_secret(settings) == SECRET
    assert not (tmp_path / "data").exists()


def test_development_secret_is_generated_private_and_kept(tmp_path: Path) -> None:
    # given development settings without a secret and a data folder that does not exist yet
    data_dir = tmp_path / "nested" / "data"
    settings = Settings(env="development", data_dir=data_dir)

    # when the secret is resolved
    first = resolve_secret(settings)

    # then a long random secret is written to data_dir/jwt-secret, readable by the owner only
    path = data_dir / "jwt-secret"
    assert path.read_text() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32

    # and later calls (another process: new Settings) return the same value
    assert resolve_secret(settings) == first
    assert resolve_secret(Settings(env="development", data_dir=data_dir)) == first


def test_development_secrets_differ_between_data_folders(tmp_path: Path) -> None:
    a = resolve_secret(Settings(data_dir=tmp_path / "a"))
    b = resolve_secret(Settings(data_dir=tmp_path / "b"))

    assert a != b


def test_existing_development_secret_file_is_read_and_stripped(tmp_path: Path) -> None:
    (tmp_path / "jwt-secret").write_text(SECRET + "\n")

    assert resolve_secret(Settings(data_dir=tmp_path)) == SECRET


def test_process_that_loses_the_creation_race_reads_the_winners_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given another worker created the file between our existence check and our create
    (tmp_path / "jwt-secret").write_text(SECRET)
    monkeypatch.setattr(Path, "exists", lambda self: False)

    # when this worker resolves the secret, then it gets the winner's secret
    assert resolve_secret(Settings(data_dir=tmp_path)) == SECRET


def test_generated_secret_signs_tokens_the_server_accepts(tmp_path: Path) -> None:
    # the `token` command and `serve` each resolve the secret on their own
    cli_settings, server_settings = Settings(data_dir=tmp_path), Settings(data_dir=tmp_path)
    cli_codec = TokenCodec(cli_settings, resolve_secret(cli_settings))
    server_codec = TokenCodec(server_settings, resolve_secret(server_settings))

    assert server_codec.authenticate(bearer(cli_codec.mint("alice"))).user_id == "alice"


# --- production secret rules ------------------------------------------------------------------

SECRET_RULE = "must be set to a random string of at least 32 characters"


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("x" * 31, id="31-chars"),
        pytest.param("changeme", id="placeholder"),
        pytest.param("CHANGEME", id="placeholder-uppercase"),
        pytest.param("development", id="placeholder-development"),
        pytest.param(
            "changeme" * 4,
            id="placeholder-repeated-to-32",
        ),
        pytest.param(
            "secret" * 6,
            id="placeholder-repeated-to-36",
        ),
    ],
)
def test_production_refuses_a_weak_secret(secret: str | None) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Settings(env="production", jwt_secret=secret)

    assert SECRET_RULE in str(excinfo.value)
    assert [e["type"] for e in excinfo.value.errors()] == ["value_error"]


def test_rejected_secret_is_not_echoed_in_the_error() -> None:
    weak = "hunter2-weak-secret"

    with pytest.raises(ValidationError) as excinfo:
        Settings(env="production", jwt_secret=weak)

    assert SECRET_RULE in str(excinfo.value)
    assert weak not in str(excinfo.value)


def test_production_refuses_to_start_from_environment_without_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ONBOARDING_KPI_ENV", "production")

    with pytest.raises(ValidationError, match=SECRET_RULE):
        Settings()


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(secrets.token_urlsafe(30), id="40-random-chars"),
        pytest.param(secrets.token_hex(16), id="32-random-chars"),
    ],
)
def test_production_accepts_a_strong_secret(secret: str, tmp_path: Path) -> None:
    settings = Settings(env="production", jwt_secret=secret, data_dir=tmp_path)

    assert settings.jwt_secret is not None
    assert settings.jwt_secret.get_secret_value() == secret
    assert resolve_secret(settings) == secret
    assert settings.resolved_log_format == "json"
    assert not (tmp_path / "jwt-secret").exists()


def test_development_accepts_a_short_secret() -> None:
    assert Settings(env="development", jwt_secret="short").jwt_secret is not None
