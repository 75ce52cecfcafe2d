"""Settings, read from ``ONBOARDING_KPI_*`` environment variables.

Built once in the app factory (never at import time) and passed down explicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SqliteSynchronous = Literal["full", "normal"]


def sqlite_synchronous_pragma(mode: SqliteSynchronous) -> str:
    """The PRAGMA for ``ONBOARDING_KPI_SQLITE_SYNCHRONOUS``. In WAL mode FULL syncs the WAL
    inside every COMMIT, so what a commit confirmed survives an OS crash or a power loss;
    NORMAL syncs only at checkpoints, so the last commits before one can roll back."""
    return {"full": "PRAGMA synchronous=FULL", "normal": "PRAGMA synchronous=NORMAL"}[mode]


MIN_SECRET_LENGTH = 32
MIN_DISTINCT_CHARACTERS = 10
_PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "changethis", "development"}


def settings_problems(error: ValidationError) -> list[str]:
    """One line per problem of a refused ``Settings()``, naming the environment variable."""
    prefix = Settings.model_config.get("env_prefix", "")
    secrets = {name for name, field in Settings.model_fields.items() if "Secret" in str(field)}
    lines = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        if where and where not in secrets and isinstance(problem.get("input"), str):
            message += f" (got {problem['input']!r})"  # never a secret's value
        lines.append(f"{prefix}{where.upper()}: {message}" if where else message)
    return lines


class Settings(BaseSettings):
    # hide_input_in_errors: a rejected secret must never be echoed to a terminal or log.
    model_config = SettingsConfigDict(
        env_prefix="ONBOARDING_KPI_", extra="ignore", hide_input_in_errors=True
    )

    env: Literal["development", "production"] = "development"
    data_dir: Path = Field(
        default=Path("data"),
        description="Folder for the default SQLite file and the development JWT secret.",
    )
    database_url: str | None = Field(
        default=None,
        description="sqlite+aiosqlite:///PATH or postgresql+asyncpg://...; "
        "default: a SQLite file in data_dir.",
    )
    flow_file: Path | None = Field(
        default=None,
        description="TOML file of the onboarding flow, its KPIs and tracking plan; "
        "default: app/default_flow.toml.",
    )
    jwt_secret: SecretStr | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    log_format: Literal["json", "console"] | None = Field(
        default=None, description="Default: console in development, json in production."
    )
    log_level: str = "INFO"
    db_pool_size: int = Field(default=5, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    db_busy_timeout_ms: int = Field(default=5000, ge=0)
    sqlite_synchronous: SqliteSynchronous = Field(
        default="full",
        description="SQLite: full (default) syncs the WAL to disk before a commit returns, so "
        "a confirmed completion survives a power loss; normal skips that fsync and may lose "
        "the last commits on an OS crash or power loss.",
    )

    # Abuse limits (see README "Limits"); each has a test.
    max_query_depth: int = Field(
        default=15, ge=2, description="Counts introspection fields; 15 admits GraphiQL's query."
    )
    max_aliases: int = Field(default=30, ge=0)
    max_tokens: int = Field(default=2000, ge=50)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    introspection: bool | None = Field(
        default=None, description="Default: on in development, off in production."
    )
    graphiql: bool | None = Field(
        default=None, description="Default: on in development, off in production."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser."
    )
    rate_limit_per_minute: int = Field(
        default=60, ge=0, description="completeOnboardingStep calls per user per minute; 0: off."
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis shared by all workers for rate limits; without it, per process.",
    )

    @field_validator("sqlite_synchronous", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _refuse_weak_secret_in_production(self) -> Settings:
        if self.env != "production":
            return self
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
        weak = (
            len(secret) < MIN_SECRET_LENGTH
            or len(set(secret)) < MIN_DISTINCT_CHARACTERS
            or any(word in secret.lower() for word in _PLACEHOLDER_SECRETS)
        )
        if weak:
            raise ValueError(
                "ONBOARDING_KPI_JWT_SECRET must be set to a random string of at least "
                f"{MIN_SECRET_LENGTH} characters when ONBOARDING_KPI_ENV=production"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'onboarding-kpi.sqlite3').resolve()}"

    @property
    def introspection_enabled(self) -> bool:
        return self.env == "development" if self.introspection is None else self.introspection

    @property
    def graphiql_enabled(self) -> bool:
        return self.env == "development" if self.graphiql is None else self.graphiql

    @property
    def resolved_log_format(self) -> Literal["json", "console"]:
        if self.log_format:
            return self.log_format
        return "json" if self.env == "production" else "console"
