"""The benchmark's reference: the completeOnboardingStep transaction with the plain driver.

A minimal Starlette app, no GraphQL, no SQLAlchemy, no middleware: it accepts the very
request bodies the real server gets (the GraphQL JSON document with variables), checks
the same bearer token, runs the same transaction against the same migrated schema and
answers with the same JSON shape, so one wrk script drives both. Run by ``bench/run.py``
under uvicorn with the same settings as the real server:

    uvicorn reference_app:create_app --factory --app-dir bench --workers N

Configured by environment variables:

- ``BENCH_REF_DATABASE_URL``: ``sqlite:///PATH`` or ``postgresql://USER@HOST:PORT/DB``
- ``BENCH_REF_JWT_SECRET``: the HS256 secret the bench tokens are signed with
- ``BENCH_REF_POOL_SIZE``: asyncpg pool size per worker (default 15, the app's 5 + 10 overflow)
- ``BENCH_REF_SQLITE_MODE``: ``direct`` (default: each transaction runs on the event loop,
  one connection, nothing else can run meanwhile, which is the machine's ceiling for one
  process) or ``thread`` (one hop per *transaction* to a single writer thread)

The transaction, as in ``app/processors/onboarding.py``: upsert and lock the progress
row, claim the idempotency key (a known key replays the stored answer), check
eligibility, insert the completion, update progress, count it in the funnel rollup,
SAVEPOINT + insert the KPI event and count it in its 15-minute rollup slot (on failure:
roll back to it and insert an analytics failure), store the answer on the key, commit.
The rollup keys come from the app's pure functions (``app.services``), the only app
code imported here.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.services.analytics import rollup_shard, rollup_slot
from app.services.funnel import funnel_rollup_keys

OPERATION = "completeOnboardingStep"
TOTAL_STEPS = 4
STEP_KPI = {
    1: "onboarding.step_1_completed",
    3: "onboarding.teammate_invited",
    4: "onboarding.completed",
}
KEY_PATTERN = re.compile(r"[A-Za-z0-9\-_:.]{16,255}")
SOURCE_PATTERN = re.compile(r"[a-z0-9\-_]{1,32}")


class Rejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- the pure parts (what the app's services do) ---------------------------------------------


def authenticate(secret: str, authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Rejected("UNAUTHENTICATED", "Sign in: this request has no bearer token.")
    try:
        claims = jwt.decode(
            token.strip(), secret, algorithms=["HS256"], options={"require": ["sub", "exp"]}
        )
    except jwt.PyJWTError:
        raise Rejected("UNAUTHENTICATED", "The bearer token is not valid.") from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise Rejected("UNAUTHENTICATED", "The bearer token names no valid user.")
    return sub


def parse_input(raw: dict[str, Any]) -> tuple[int, str, str, dict[str, Any], str]:
    step, key = raw.get("step"), raw.get("idempotencyKey")
    source, metadata = raw.get("source") or "api", raw.get("metadata") or {}
    if not isinstance(step, int) or not 1 <= step <= 10_000:
        raise Rejected("VALIDATION_FAILED", "step is invalid")
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise Rejected("VALIDATION_FAILED", "idempotencyKey is invalid")
    if not isinstance(source, str) or not SOURCE_PATTERN.fullmatch(source):
        raise Rejected("VALIDATION_FAILED", "source is invalid")
    if not isinstance(metadata, dict):
        raise Rejected("VALIDATION_FAILED", "metadata is invalid")
    canonical = json.dumps(
        {"step": step, "source": source, "metadata": metadata},
        sort_keys=True,
        separators=(",", ":"),
    )
    fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
    return step, key, source, metadata, fingerprint


def check_eligibility(step: int, completed: list[int]) -> None:
    if not 1 <= step <= TOTAL_STEPS:
        raise Rejected("STEP_NOT_ELIGIBLE", "UNKNOWN_STEP")
    if step in completed:
        raise Rejected("STEP_NOT_ELIGIBLE", "ALREADY_COMPLETED")
    if any(earlier not in completed for earlier in range(1, step)):
        raise Rejected("STEP_NOT_ELIGIBLE", "PREVIOUS_STEP_INCOMPLETE")


def progress_json(completed: list[int]) -> dict[str, Any]:
    done = sorted(set(completed))
    next_step = next((s for s in range(1, TOTAL_STEPS + 1) if s not in done), None)
    return {"completed_steps": done, "next_step": next_step, "total_steps": TOTAL_STEPS}


def outcome_json(
    step: int, now: datetime, completed: list[int], event: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "step": step,
        "completed_at": now.isoformat(),
        "progress": progress_json(completed),
        "analytics_status": "RECORDED" if event else "NOT_APPLICABLE",
        "event": event,
    }


def event_json(
    event_id: str, completion_id: int, user_id: str, step: int, source: str, meta: dict[str, Any]
) -> dict[str, Any] | None:
    kpi_id = STEP_KPI.get(step)
    if kpi_id is None:
        return None
    return {
        "id": event_id,
        "completion_id": completion_id,
        "kpi_id": kpi_id,
        "user_id": user_id,
        "step": step,
        "source": source,
        "metadata": meta,
    }


def success_body(outcome: dict[str, Any], *, replayed: bool) -> dict[str, Any]:
    event = outcome["event"]
    return {
        "data": {
            "completeOnboardingStep": {
                "__typename": "CompleteOnboardingStepSuccess",
                "replayed": replayed,
                "progress": {"nextStep": outcome["progress"]["next_step"]},
                "analytics": {
                    "status": outcome["analytics_status"],
                    "event": event
                    and {
                        "id": event["id"],
                        "kpiId": event["kpi_id"],
                        "occurredAt": outcome["completed_at"],
                    },
                },
            }
        }
    }


def error_body(exc: Rejected) -> dict[str, Any]:
    return {
        "data": {
            "completeOnboardingStep": {
                "__typename": "UserError",
                "code": exc.code,
                "message": exc.message,
            }
        }
    }


def progress_body(completed: list[int]) -> dict[str, Any]:
    progress = progress_json(completed)
    return {
        "data": {
            "myOnboardingProgress": {
                "completedSteps": progress["completed_steps"],
                "nextStep": progress["next_step"],
                "totalSteps": TOTAL_STEPS,
                "isComplete": progress["next_step"] is None,
            }
        }
    }


# --- rollups (the same rows the app keeps) ---------------------------------------------------

ROLLUP_SQL = (
    "INSERT INTO kpi_event_rollups (kpi_id, slot_start, shard, events) VALUES ({}, {}, {}, 1) "
    "ON CONFLICT (kpi_id, slot_start, shard) DO UPDATE SET events = kpi_event_rollups.events + 1"
)
FUNNEL_COLUMNS = "span_hours, cohort_start, step, days_to_reach, gap_bucket, shard"


def funnel_sql(rows: int, placeholder: Any) -> str:
    """The multi-row funnel upsert; ``placeholder(i)`` names the i-th parameter."""
    values = ", ".join(
        "(" + ", ".join(placeholder(6 * r + c) for c in range(6)) + ", 1)" for r in range(rows)
    )
    table = "funnel_cohort_rollups"
    conflict = f"ON CONFLICT ({FUNNEL_COLUMNS}) DO UPDATE SET users = {table}.users + 1"
    return f"INSERT INTO {table} ({FUNNEL_COLUMNS}, users) VALUES {values} {conflict}"  # noqa: S608


def funnel_params(keys: list[Any], ts: Any) -> list[Any]:
    return [
        value
        for k in keys
        for value in (
            k.span_hours,
            ts(k.cohort_start),
            k.step,
            k.days_to_reach,
            k.gap_bucket,
            k.shard,
        )
    ]


def earlier_steps(rows: list[Any]) -> dict[int, datetime]:
    out = {}
    for step, at in rows:
        moment = datetime.fromisoformat(at) if isinstance(at, str) else at
        out[step] = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return out


# --- SQLite: plain sqlite3, BEGIN IMMEDIATE, one connection ------------------------------------


def _sqlite_ts(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime stores (naive UTC)."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


class SqliteStore:
    def __init__(self, path: str, *, mode: str) -> None:
        self._path = path
        self._mode = mode
        self._executor = ThreadPoolExecutor(max_workers=1) if mode == "thread" else None
        self._conn: sqlite3.Connection | None = None

    async def start(self) -> None:
        await self._run(self._connect)

    async def stop(self) -> None:
        await self._run(self._close)
        if self._executor is not None:
            self._executor.shutdown()

    def _connect(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=FULL",  # as the app: a confirmed commit is on disk
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=5000",
        ):
            conn.execute(pragma)
        self._conn = conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    async def _run(self, fn: Any, *args: Any) -> Any:
        if self._executor is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def ping(self) -> None:
        await self._run(lambda: self._db.execute("SELECT 1").fetchone())

    async def complete(self, user_id: str, parsed: tuple[Any, ...]) -> tuple[dict[str, Any], bool]:
        result: tuple[dict[str, Any], bool] = await self._run(self._complete, user_id, parsed)
        return result

    async def progress(self, user_id: str) -> list[int]:
        result: list[int] = await self._run(self._progress, user_id)
        return result

    @property
    def _db(self) -> sqlite3.Connection:
        assert self._conn is not None
        return self._conn

    def _progress(self, user_id: str) -> list[int]:
        row = self._db.execute(
            "SELECT completed_steps FROM onboarding_progress WHERE user_id = ?", (user_id,)
        ).fetchone()
        steps: list[int] = json.loads(row[0]) if row else []
        return steps

    def _complete(self, user_id: str, parsed: tuple[Any, ...]) -> tuple[dict[str, Any], bool]:
        step, key, source, metadata, fingerprint = parsed
        db = self._db
        now = datetime.now(UTC)
        ts = _sqlite_ts(now)
        db.execute("BEGIN IMMEDIATE")
        try:
            (steps_json,) = db.execute(
                "INSERT INTO onboarding_progress (user_id, completed_steps, updated_at) "
                "VALUES (?, '[]', ?) ON CONFLICT (user_id) "
                "DO UPDATE SET user_id = onboarding_progress.user_id RETURNING completed_steps",
                (user_id, ts),
            ).fetchone()
            claimed = db.execute(
                "INSERT INTO idempotency_keys (user_id, operation, key, fingerprint, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING key",
                (user_id, OPERATION, key, fingerprint, ts),
            ).fetchone()
            if claimed is None:
                stored_fp, stored = db.execute(
                    "SELECT fingerprint, response FROM idempotency_keys "
                    "WHERE user_id = ? AND operation = ? AND key = ?",
                    (user_id, OPERATION, key),
                ).fetchone()
                db.execute("ROLLBACK")
                if stored_fp != fingerprint:
                    raise Rejected("IDEMPOTENCY_CONFLICT", "KEY_REUSED_WITH_DIFFERENT_INPUT")
                if stored is None:
                    raise Rejected("IDEMPOTENCY_CONFLICT", "REQUEST_IN_PROGRESS")
                return json.loads(stored), True
            completed: list[int] = json.loads(steps_json)
            check_eligibility(step, completed)
            meta_json = json.dumps(metadata)
            row = db.execute(
                "INSERT INTO step_completions "
                "(user_id, step, source, metadata, idempotency_key, completed_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, step) DO NOTHING RETURNING id",
                (user_id, step, source, meta_json, key, ts),
            ).fetchone()
            if row is None:
                raise Rejected("STEP_NOT_ELIGIBLE", "ALREADY_COMPLETED")
            completed = sorted({*completed, step})
            db.execute(
                "UPDATE onboarding_progress SET completed_steps = ?, updated_at = ? "
                "WHERE user_id = ?",
                (json.dumps(completed), ts, user_id),
            )
            earlier = {}
            if step > 1:
                earlier = earlier_steps(
                    db.execute(
                        "SELECT step, completed_at FROM step_completions "
                        "WHERE user_id = ? AND step < ?",
                        (user_id, step),
                    ).fetchall()
                )
            keys = funnel_rollup_keys(earlier, step, now)
            if keys:
                db.execute(funnel_sql(len(keys), lambda i: "?"), funnel_params(keys, _sqlite_ts))
            event_id = uuid.uuid4()
            event = event_json(str(event_id), row[0], user_id, step, source, metadata)
            if event is not None:
                event["occurred_at"] = now.isoformat()
                db.execute("SAVEPOINT kpi_event")
                try:
                    db.execute(
                        "INSERT INTO kpi_events (id, completion_id, kpi_id, user_id, step, "
                        "source, metadata, occurred_at, recorded_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            event_id.hex,
                            row[0],
                            event["kpi_id"],
                            user_id,
                            step,
                            source,
                            meta_json,
                            ts,
                            ts,
                        ),
                    )
                    db.execute(
                        ROLLUP_SQL.format("?", "?", "?"),
                        (
                            event["kpi_id"],
                            _sqlite_ts(rollup_slot(now)),
                            rollup_shard(str(event_id)),
                        ),
                    )
                    db.execute("RELEASE SAVEPOINT kpi_event")
                except sqlite3.DatabaseError as exc:
                    db.execute("ROLLBACK TO SAVEPOINT kpi_event")
                    db.execute("RELEASE SAVEPOINT kpi_event")
                    db.execute(
                        "INSERT INTO analytics_failures (completion_id, stage, error_type, "
                        "error_message, payload, attempts, created_at) "
                        "VALUES (?, 'write', ?, ?, ?, 1, ?)",
                        (row[0], type(exc).__name__, str(exc), json.dumps(event), ts),
                    )
                    event = None
            outcome = outcome_json(step, now, completed, event)
            db.execute(
                "UPDATE idempotency_keys SET response = ? "
                "WHERE user_id = ? AND operation = ? AND key = ?",
                (json.dumps(outcome), user_id, OPERATION, key),
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return outcome, False


# --- PostgreSQL: asyncpg pool --------------------------------------------------------------------


class PostgresStore:
    def __init__(self, dsn: str, *, pool_size: int) -> None:
        self._dsn = dsn
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    async def start(self) -> None:
        self._pool = await asyncpg.create_pool(
            self._dsn, min_size=min(5, self._pool_size), max_size=self._pool_size
        )

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None
        return self._pool

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")

    async def progress(self, user_id: str) -> list[int]:
        raw = await self.pool.fetchval(
            "SELECT completed_steps FROM onboarding_progress WHERE user_id = $1", user_id
        )
        steps: list[int] = json.loads(raw) if raw else []
        return steps

    async def complete(self, user_id: str, parsed: tuple[Any, ...]) -> tuple[dict[str, Any], bool]:
        step, key, source, metadata, fingerprint = parsed
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            try:
                result = await self._complete(
                    conn, now, user_id, step, key, source, metadata, fingerprint
                )
            except BaseException:
                await tx.rollback()
                raise
            if result[1]:
                await tx.rollback()  # a replay wrote nothing
            else:
                await tx.commit()
            return result

    async def _complete(
        self,
        conn: asyncpg.Connection,
        now: datetime,
        user_id: str,
        step: int,
        key: str,
        source: str,
        metadata: dict[str, Any],
        fingerprint: str,
    ) -> tuple[dict[str, Any], bool]:
        steps_json = await conn.fetchval(
            "INSERT INTO onboarding_progress (user_id, completed_steps, updated_at) "
            "VALUES ($1, '[]'::jsonb, $2) ON CONFLICT (user_id) "
            "DO UPDATE SET user_id = onboarding_progress.user_id RETURNING completed_steps",
            user_id,
            now,
        )
        claimed = await conn.fetchval(
            "INSERT INTO idempotency_keys (user_id, operation, key, fingerprint, created_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING key",
            user_id,
            OPERATION,
            key,
            fingerprint,
            now,
        )
        if claimed is None:
            stored = await conn.fetchrow(
                "SELECT fingerprint, response FROM idempotency_keys "
                "WHERE user_id = $1 AND operation = $2 AND key = $3",
                user_id,
                OPERATION,
                key,
            )
            if stored["fingerprint"] != fingerprint:
                raise Rejected("IDEMPOTENCY_CONFLICT", "KEY_REUSED_WITH_DIFFERENT_INPUT")
            if stored["response"] is None:
                raise Rejected("IDEMPOTENCY_CONFLICT", "REQUEST_IN_PROGRESS")
            return json.loads(stored["response"]), True
        completed: list[int] = json.loads(steps_json)
        check_eligibility(step, completed)
        meta_json = json.dumps(metadata)
        completion_id = await conn.fetchval(
            "INSERT INTO step_completions "
            "(user_id, step, source, metadata, idempotency_key, completed_at) "
            "VALUES ($1, $2, $3, $4::jsonb, $5, $6) "
            "ON CONFLICT (user_id, step) DO NOTHING RETURNING id",
            user_id,
            step,
            source,
            meta_json,
            key,
            now,
        )
        if completion_id is None:
            raise Rejected("STEP_NOT_ELIGIBLE", "ALREADY_COMPLETED")
        completed = sorted({*completed, step})
        await conn.execute(
            "UPDATE onboarding_progress SET completed_steps = $1::jsonb, updated_at = $2 "
            "WHERE user_id = $3",
            json.dumps(completed),
            now,
            user_id,
        )
        earlier = {}
        if step > 1:
            earlier = earlier_steps(
                await conn.fetch(
                    "SELECT step, completed_at FROM step_completions "
                    "WHERE user_id = $1 AND step < $2",
                    user_id,
                    step,
                )
            )
        keys = funnel_rollup_keys(earlier, step, now)
        if keys:
            await conn.execute(
                funnel_sql(len(keys), lambda i: f"${i + 1}"), *funnel_params(keys, lambda t: t)
            )
        event_id = uuid.uuid4()
        event = event_json(str(event_id), completion_id, user_id, step, source, metadata)
        if event is not None:
            event["occurred_at"] = now.isoformat()
            try:
                async with conn.transaction():  # nested: a SAVEPOINT
                    await conn.execute(
                        "INSERT INTO kpi_events (id, completion_id, kpi_id, user_id, step, "
                        "source, metadata, occurred_at, recorded_at) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)",
                        event_id,
                        completion_id,
                        event["kpi_id"],
                        user_id,
                        step,
                        source,
                        meta_json,
                        now,
                        now,
                    )
                    await conn.execute(
                        ROLLUP_SQL.format("$1", "$2", "$3"),
                        event["kpi_id"],
                        rollup_slot(now),
                        rollup_shard(str(event_id)),
                    )
            except asyncpg.PostgresError as exc:
                await conn.execute(
                    "INSERT INTO analytics_failures (completion_id, stage, error_type, "
                    "error_message, payload, attempts, created_at) "
                    "VALUES ($1, 'write', $2, $3, $4::jsonb, 1, $5)",
                    completion_id,
                    type(exc).__name__,
                    str(exc),
                    json.dumps(event),
                    now,
                )
                event = None
        outcome = outcome_json(step, now, completed, event)
        await conn.execute(
            "UPDATE idempotency_keys SET response = $1::jsonb "
            "WHERE user_id = $2 AND operation = $3 AND key = $4",
            json.dumps(outcome),
            user_id,
            OPERATION,
            key,
        )
        return outcome, False


# --- HTTP ----------------------------------------------------------------------------------------


def create_app() -> Starlette:
    url = os.environ["BENCH_REF_DATABASE_URL"]
    secret = os.environ["BENCH_REF_JWT_SECRET"]
    store: SqliteStore | PostgresStore
    if url.startswith("sqlite:///"):
        mode = os.environ.get("BENCH_REF_SQLITE_MODE", "direct")
        store = SqliteStore(url.removeprefix("sqlite:///"), mode=mode)
    else:
        store = PostgresStore(url, pool_size=int(os.environ.get("BENCH_REF_POOL_SIZE", "15")))

    async def graphql(request: Request) -> Response:
        body = await request.json()
        is_mutation = body["query"].lstrip().startswith("mutation")
        try:
            user_id = authenticate(secret, request.headers.get("authorization"))
            if not is_mutation:
                return JSONResponse(progress_body(await store.progress(user_id)))
            parsed = parse_input(body["variables"]["input"])
            outcome, replayed = await store.complete(user_id, parsed)
        except Rejected as exc:
            return JSONResponse(error_body(exc))
        return JSONResponse(success_body(outcome, replayed=replayed))

    async def readyz(_: Request) -> Response:
        await store.ping()
        return JSONResponse({"status": "ok", "database": "ok"})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await store.start()
        try:
            yield
        finally:
            await store.stop()

    return Starlette(
        routes=[Route("/graphql", graphql, methods=["POST"]), Route("/readyz", readyz)],
        lifespan=lifespan,
    )
