"""Bearer-token authentication: HS256 JWTs whose ``sub`` is the user id."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt

from app.config import Settings
from app.errors import AuthenticationFailed

ALGORITHM = "HS256"
MAX_TOKEN_LENGTH = 8192
MAX_USER_ID_LENGTH = 128
#: Control characters and lone surrogates: no database should be asked to store them.
_UNSTORABLE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
DEV_SECRET_FILE = "jwt-secret"  # noqa: S105 - a file name, not a secret
#: Tokens remembered once verified (a few hundred bytes each): a client sends its token
#: with every request, and checking one costs ~85 µs (PyJWT's key checks, base64, HMAC).
VERIFIED_TOKENS_KEPT = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    roles: frozenset[str]


def resolve_secret(settings: Settings) -> str:
    """The configured secret, or in development one kept in the data folder.

    Keeping the generated secret on disk makes ``onboarding-kpi token`` and
    ``onboarding-kpi serve`` agree without any configuration.
    """
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    if settings.env == "production":  # Settings already refuses this; belt and braces
        raise RuntimeError("ONBOARDING_KPI_JWT_SECRET is required in production")
    path = settings.data_dir / DEV_SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _publish_private(path, secrets.token_urlsafe(48))
    secret = path.read_text().strip()
    if not secret:
        raise RuntimeError(f"{path} is empty: delete it to generate a new development secret")
    return secret


def _publish_private(path: Path, text: str) -> None:
    """Create ``path`` whole or not at all, even when several workers start at once.

    The secret is written to a private temporary file and hard-linked into place: the
    link either appears complete or fails because another process won, whose file is
    then used.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


class TokenCodec:
    """Mints and verifies the bearer tokens.

    A token that verified is remembered (the last ``VERIFIED_TOKENS_KEPT``, by token
    text) with its principal and expiry, so a client's next requests skip the signature
    check. That is sound because the rest of the check cannot change while this codec
    lives: the secret, issuer and audience are fixed, and a signed token's claims cannot
    be altered. Time is the one thing that moves, so expiry is checked on every use.
    Only valid tokens are kept: filling the cache takes tokens signed with the secret.
    """

    def __init__(self, settings: Settings, secret: str) -> None:
        self._secret = secret
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_seconds
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def mint(
        self, user_id: str, *, roles: list[str] | None = None, ttl: timedelta = timedelta(hours=1)
    ) -> str:
        now = datetime.now(UTC)
        claims: dict[str, object] = {
            "sub": user_id,
            "roles": sorted(set(roles or [])),
            "iat": now,
            "exp": now + ttl,
        }
        if self._issuer:
            claims["iss"] = self._issuer
        if self._audience:
            claims["aud"] = self._audience
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def authenticate(self, authorization: str | None) -> Principal:
        """Turn an ``Authorization`` header into a principal or raise ``AuthenticationFailed``."""
        if not authorization:
            raise AuthenticationFailed("Sign in: this request has no bearer token.")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationFailed("The Authorization header must be 'Bearer <token>'.")
        if len(token) > MAX_TOKEN_LENGTH:
            raise AuthenticationFailed("The bearer token is too long.")
        known = self._verified.get(token)
        if known is not None:
            principal, expires_at = known
            if time.time() < expires_at + self._leeway:  # PyJWT's own rule for "exp"
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]  # expired: verify again, for the precise error
        principal, expires_at = self._verify(token)
        self._verified[token] = (principal, expires_at)
        if len(self._verified) > VERIFIED_TOKENS_KEPT:
            self._verified.popitem(last=False)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={
                    "require": ["sub", "exp"],
                    "verify_aud": self._audience is not None,
                    "verify_iss": self._issuer is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed("The session has expired; sign in again.") from None
        except jwt.PyJWTError:
            raise AuthenticationFailed("The bearer token is not valid.") from None
        sub = claims.get("sub")
        if (
            not isinstance(sub, str)
            or not 1 <= len(sub) <= MAX_USER_ID_LENGTH
            or _UNSTORABLE.search(sub)
        ):
            raise AuthenticationFailed("The bearer token names no valid user.")
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise AuthenticationFailed("The bearer token's roles are malformed.")
        return Principal(user_id=sub, roles=frozenset(roles)), float(claims["exp"])
