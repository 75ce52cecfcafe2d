"""Fast loader of a realistic analytics data set, for bench/analytics.py (see bench/ANALYTICS.md).

    uv run python bench/analytics_seed.py --engine sqlite|postgresql [--events 1000000]

Creates a fresh database (a SQLite file in a new temporary folder, or a PostgreSQL database
``bench_analytics_<random>``), migrates it with ``onboarding-kpi migrate``, and fills it with
the rows the server itself would have written for a population of users onboarding over the
last 90 days, without going through the server (no GraphQL call per event):

- every user completes step 1 at a uniformly random moment of the 90 days that end now, then
  step 2, 3 and 4 with decreasing probability (``P_NEXT``), each an exponentially
  distributed delay (``DELAY_MEAN``, capped at ``MAX_DELAY``: hours to days) after the
  previous one; a step that would land in the future has not happened yet, nor have later
  ones;
- ``step_completions``: one row per completion, ids ascending in time as the server assigns
  them, the web client's metadata for the step, a UUID idempotency key, a per-user source;
- ``onboarding_progress``: one row per user (completed steps, time of the last one);
- ``kpi_events``: one per completion whose step counts toward a KPI in
  ``app.flow_file.DEFAULT_FLOW`` (steps 1, 3 and 4): a random version-4 UUID, the completion's
  metadata and source, ``occurred_at = recorded_at = completed_at``;
- ``kpi_event_rollups``: counts per (KPI, 15-minute UTC slot, shard), computed here from the
  generated events, with the shard the server would pick (``rollup_shard(event id)``);
- ``funnel_cohort_rollups``: every completion passed through the server's own rule
  (``app.services.funnel.funnel_rollup_keys``) and counted.

``idempotency_keys`` is left empty: no analytics query reads it.

The unique constraint on ``kpi_events (kpi_id, user_id)`` allows at most 3 KPI events per
user, so 100,000 users can never produce 1,000,000 events. The loader keeps drawing users
until the KPI event target is reached (about 420,000 users for 1,000,000 events with the
default probabilities); ``--users N`` fixes the population instead.

Loading: SQLite through the stdlib driver, ``executemany`` in one transaction with
``PRAGMA synchronous=OFF`` (and an in-memory journal); PostgreSQL with binary ``COPY``
(asyncpg ``copy_records_to_table``) in one transaction, the ``step_completions`` id sequence
moved past the loaded ids. Then ``ANALYZE`` (PostgreSQL: ``VACUUM (ANALYZE)``, the state
autovacuum reaches on an insert-only table). Rows are produced in chunks, so memory stays
around a few hundred MB. Deterministic for a given ``--seed`` and ``now``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.flow_file import DEFAULT_FLOW  # noqa: E402
from app.services.analytics import ROLLUP_SHARDS, ROLLUP_SLOT  # noqa: E402
from app.services.funnel import FunnelRollupKey, funnel_rollup_keys  # noqa: E402

DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_EVENTS = 1_000_000
DAYS = 90
#: Probability of completing step k once step k-1 is done.
P_NEXT = {2: 0.90, 3: 0.85, 4: 0.80}
#: Mean delay between step k-1 and step k (exponential), capped at MAX_DELAY.
DELAY_MEAN = {2: timedelta(hours=2), 3: timedelta(hours=18), 4: timedelta(hours=36)}
MAX_DELAY = timedelta(days=7)
SOURCES = (("web", 0.60), ("ios", 0.20), ("android", 0.15), ("api", 0.05))
ROLES = ("engineer", "designer", "product", "founder", "other")
USER_PREFIX = "bench-user-"
CHUNK = 50_000  # completions per executemany / COPY batch

US = 1_000_000
EPOCH = datetime(1970, 1, 1)
EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
SLOT_US = int(ROLLUP_SLOT.total_seconds()) * US
KPI_OF_STEP = {s.step: str(s.kpi_id) for s in DEFAULT_FLOW.steps if s.kpi_id is not None}
PROGRESS_JSON = {n: "[" + ", ".join(str(k) for k in range(1, n + 1)) + "]" for n in range(1, 5)}

COMPLETION_COLUMNS = (
    "id",
    "user_id",
    "step",
    "source",
    "metadata",
    "idempotency_key",
    "completed_at",
)
PROGRESS_COLUMNS = ("user_id", "completed_steps", "updated_at")
EVENT_COLUMNS = (
    "id",
    "completion_id",
    "kpi_id",
    "user_id",
    "step",
    "source",
    "metadata",
    "occurred_at",
    "recorded_at",
)
ROLLUP_COLUMNS = ("kpi_id", "slot_start", "shard", "events")
FUNNEL_COLUMNS = (
    "span_hours",
    "cohort_start",
    "step",
    "days_to_reach",
    "gap_bucket",
    "shard",
    "users",
)
EXPECTED_COLUMNS = {
    "step_completions": COMPLETION_COLUMNS,
    "onboarding_progress": PROGRESS_COLUMNS,
    "kpi_events": EVENT_COLUMNS,
    "kpi_event_rollups": ROLLUP_COLUMNS,
    "funnel_cohort_rollups": FUNNEL_COLUMNS,
}


def log(message: str) -> None:
    print(f"[seed {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the plan: who completed what, when -----------------------------------------------------------


@dataclass
class Plan:
    """The generated population, compact: times are integer microseconds since the epoch."""

    now_us: int
    users: int
    # (completed_at_us, user index, step), sorted by time: the completion ids are 1..n
    completions: list[tuple[int, int, int]]
    sources: list[str]  # per user index
    roles: list[str]
    seed: int
    kpi_events: int = 0

    @property
    def now(self) -> datetime:
        return EPOCH_UTC + timedelta(microseconds=self.now_us)

    @property
    def start(self) -> datetime:
        return self.now - timedelta(days=DAYS)


def make_plan(
    *,
    events: int = DEFAULT_EVENTS,
    users: int | None = None,
    seed: int = 42,
    now: datetime | None = None,
) -> Plan:
    """Draw users until ``events`` KPI events exist (or exactly ``users`` users)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    now = (now or datetime.now(UTC)).astimezone(UTC)
    now_us = (now - EPOCH_UTC) // timedelta(microseconds=1)
    span_us = DAYS * 86_400 * US
    max_delay_us = MAX_DELAY // timedelta(microseconds=1)
    mean_us = {k: v // timedelta(microseconds=1) for k, v in DELAY_MEAN.items()}
    kpi_steps = set(KPI_OF_STEP)

    people: list[tuple[int, ...]] = []  # completion times of steps 1..k per user
    kpi_events = 0
    while (users is None and kpi_events < events) or (users is not None and len(people) < users):
        at = now_us - int(rng.random() * span_us)  # in (now - 90 days, now]
        times = [at]
        for step in (2, 3, 4):
            if rng.random() >= P_NEXT[step]:
                break
            at += max(1, min(int(rng.expovariate(1 / mean_us[step])), max_delay_us))
            if at > now_us:
                break
            times.append(at)
        people.append(tuple(times))
        kpi_events += sum(1 for s in range(1, len(times) + 1) if s in kpi_steps)

    people.sort()  # user index in order of step 1, like the server's progress rows
    completions = [
        (at, user, step)
        for user, times in enumerate(people)
        for step, at in enumerate(times, start=1)
    ]
    completions.sort()
    names, weights = zip(*SOURCES, strict=True)
    return Plan(
        now_us=now_us,
        users=len(people),
        completions=completions,
        sources=rng.choices(names, weights=weights, k=len(people)),
        roles=rng.choices(ROLES, k=len(people)),
        seed=seed,
        kpi_events=kpi_events,
    )


def user_id(index: int) -> str:
    return f"{USER_PREFIX}{index:07d}"


def metadata_json(user: int, step: int, role: str) -> str:
    """What the web page sends for the step: the default flow's fields (app/default_flow.toml)."""
    if step == 1:
        return f'{{"displayName": "User {user}", "role": "{role}"}}'
    if step == 2:
        return f'{{"workspaceName": "Workspace {user}"}}'
    if step == 3:
        return f'{{"teammateEmail": "teammate{user}@example.com"}}'
    return f'{{"projectName": "Project {user}"}}'


_UUID_V4 = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant
_UUID_CLEAR = ((1 << 128) - 1) ^ ((0xF000 << 64) | (0xC000 << 48))


def _dashed(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


@dataclass
class Chunk:
    completions: list[tuple[object, ...]] = field(default_factory=list)
    events: list[tuple[object, ...]] = field(default_factory=list)


class Rows:
    """Turns the plan into table rows, chunk by chunk, for one engine's value formats."""

    def __init__(self, plan: Plan, *, sqlite: bool) -> None:
        self.plan = plan
        self.sqlite = sqlite
        self.rng = random.Random(plan.seed + 1)  # noqa: S311 - reproducible data
        self.rollups: Counter[tuple[str, int, int]] = Counter()
        self.funnel: Counter[FunnelRollupKey] = Counter()
        self.user_steps: dict[int, dict[int, datetime]] = {}

    def time(self, us: int) -> object:
        if self.sqlite:  # SQLAlchemy's SQLite DateTime format: naive UTC, always microseconds
            return (EPOCH + timedelta(microseconds=us)).isoformat(" ", "microseconds")
        return EPOCH_UTC + timedelta(microseconds=us)

    def uuid(self) -> tuple[int, str]:
        """A random version-4 UUID: (its integer, its text), without the slow uuid.UUID."""
        value = (self.rng.getrandbits(128) & _UUID_CLEAR) | _UUID_V4
        return value, f"{value:032x}"

    def chunks(self) -> Iterator[Chunk]:
        plan = self.plan
        for lo in range(0, len(plan.completions), CHUNK):
            chunk = Chunk()
            for offset, (at, user, step) in enumerate(plan.completions[lo : lo + CHUNK]):
                completion_id = lo + offset + 1
                uid = user_id(user)
                source = plan.sources[user]
                metadata = metadata_json(user, step, plan.roles[user])
                when = self.time(at)
                key = _dashed(self.uuid()[1])
                chunk.completions.append((completion_id, uid, step, source, metadata, key, when))
                # completions come in time order, so the user's earlier steps are known
                steps = self.user_steps.setdefault(user, {})
                completed_at = EPOCH_UTC + timedelta(microseconds=at)
                self.funnel.update(funnel_rollup_keys(steps, step, completed_at) or ())
                steps[step] = completed_at
                kpi_id = KPI_OF_STEP.get(step)
                if kpi_id is None:
                    continue
                event_int, event_hex = self.uuid()
                shard = (event_int >> 96) % ROLLUP_SHARDS  # = rollup_shard(event id)
                self.rollups[(kpi_id, at - at % SLOT_US, shard)] += 1
                chunk.events.append(
                    (
                        event_hex if self.sqlite else _dashed(event_hex),
                        completion_id,
                        kpi_id,
                        uid,
                        step,
                        source,
                        metadata,
                        when,
                        when,
                    )
                )
            yield chunk

    def progress(self) -> Iterator[list[tuple[object, ...]]]:
        done = [0] * self.plan.users
        last = [0] * self.plan.users
        for at, user, step in self.plan.completions:
            done[user] = max(done[user], step)
            last[user] = max(last[user], at)
        batch: list[tuple[object, ...]] = []
        for user in range(self.plan.users):
            batch.append((user_id(user), PROGRESS_JSON[done[user]], self.time(last[user])))
            if len(batch) == CHUNK:
                yield batch
                batch = []
        if batch:
            yield batch

    def funnel_rows(self) -> list[tuple[object, ...]]:
        def at(moment: datetime) -> object:
            return self.time((moment - EPOCH_UTC) // timedelta(microseconds=1))

        return [
            (k.span_hours, at(k.cohort_start), k.step, k.days_to_reach, k.gap_bucket, k.shard, n)
            for k, n in self.funnel.items()
        ]

    def rollup_rows(self) -> list[tuple[object, ...]]:
        return [
            (kpi_id, self.time(slot), shard, count)
            for (kpi_id, slot, shard), count in sorted(self.rollups.items())
        ]


# --- databases ------------------------------------------------------------------------------------


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path.resolve()}"


def asyncpg_url(url: str) -> str:
    """A plain ``postgresql://`` URL (asyncpg's own form) from any SQLAlchemy spelling."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def with_database(admin_url: str, name: str) -> str:
    base, _, _ = asyncpg_url(admin_url).rpartition("/")
    return f"{base}/{name}"


async def _admin(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_url(admin_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_postgres_database(admin_url: str = DEFAULT_PG_ADMIN_URL) -> tuple[str, str]:
    """A new empty database ``bench_analytics_<random>``: (name, asyncpg URL)."""
    name = f"bench_analytics_{secrets.token_hex(4)}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    return name, with_database(admin_url, name)


def drop_postgres_database(name: str, admin_url: str = DEFAULT_PG_ADMIN_URL) -> None:
    asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def venv_command(name: str) -> list[str]:
    """The project's console script: from this interpreter's venv, else through ``uv run``."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return [str(candidate)]
    uv = shutil.which("uv") or str(ROOT / "scripts" / "uv")
    return [uv, "run", name]


def migrate(database_url: str) -> None:
    env = {**os.environ, "ONBOARDING_KPI_DATABASE_URL": database_url}
    subprocess.run(  # noqa: S603 - our own console script
        [*venv_command("onboarding-kpi"), "migrate"], env=env, cwd=ROOT, check=True
    )


# --- loaders --------------------------------------------------------------------------------------


@dataclass
class LoadReport:
    engine: str
    users: int
    completions: int
    events: int
    rollup_rows: int
    plan_seconds: float
    load_seconds: float
    analyze_seconds: float

    @property
    def total_seconds(self) -> float:
        return self.plan_seconds + self.load_seconds + self.analyze_seconds

    def summary(self) -> str:
        return (
            f"{self.engine}: {self.users:,} users, {self.completions:,} completions, "
            f"{self.events:,} KPI events, {self.rollup_rows:,} rollup rows; "
            f"generate {self.plan_seconds:.1f} s + load {self.load_seconds:.1f} s + "
            f"analyze {self.analyze_seconds:.1f} s = {self.total_seconds:.1f} s"
        )


def _check_columns(actual: dict[str, list[str]]) -> None:
    for table, columns in EXPECTED_COLUMNS.items():
        if sorted(actual.get(table, [])) != sorted(columns):
            raise SystemExit(
                f"seed: table {table} has columns {actual.get(table)}, the loader writes "
                f"{list(columns)}: update bench/analytics_seed.py to the new schema"
            )


def load_sqlite(path: Path, plan: Plan) -> tuple[float, float, int]:
    """Insert the plan; return (load seconds, analyze seconds, rollup rows)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        _check_columns(
            {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in EXPECTED_COLUMNS}
        )
        conn.execute("PRAGMA journal_mode=MEMORY")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-524288")  # 512 MiB: index maintenance stays in memory
        conn.execute("PRAGMA temp_store=MEMORY")
        started = time.perf_counter()
        rows = Rows(plan, sqlite=True)
        conn.execute("BEGIN")
        insert_completion = _insert_sql("step_completions", COMPLETION_COLUMNS)
        insert_event = _insert_sql("kpi_events", EVENT_COLUMNS)
        for chunk in rows.chunks():
            conn.executemany(insert_completion, chunk.completions)
            conn.executemany(insert_event, chunk.events)
        for batch in rows.progress():
            conn.executemany(_insert_sql("onboarding_progress", PROGRESS_COLUMNS), batch)
        rollup_rows = rows.rollup_rows()
        conn.executemany(_insert_sql("kpi_event_rollups", ROLLUP_COLUMNS), rollup_rows)
        conn.executemany(_insert_sql("funnel_cohort_rollups", FUNNEL_COLUMNS), rows.funnel_rows())
        conn.execute("COMMIT")
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("ANALYZE")
        analyzed = time.perf_counter() - started
        conn.execute("PRAGMA journal_mode=WAL")  # what the server sets on every connection
    finally:
        conn.close()
    return loaded, analyzed, len(rollup_rows)


def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608


async def load_postgres(url: str, plan: Plan) -> tuple[float, float, int]:
    conn = await asyncpg.connect(asyncpg_url(url))
    try:
        found = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        )
        actual: dict[str, list[str]] = {}
        for r in found:
            actual.setdefault(r["table_name"], []).append(r["column_name"])
        _check_columns(actual)
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET maintenance_work_mem = '256MB'")
        started = time.perf_counter()
        rows = Rows(plan, sqlite=False)
        async with conn.transaction():
            for chunk in rows.chunks():
                await conn.copy_records_to_table(
                    "step_completions", records=chunk.completions, columns=COMPLETION_COLUMNS
                )
                await conn.copy_records_to_table(
                    "kpi_events", records=chunk.events, columns=EVENT_COLUMNS
                )
            for batch in rows.progress():
                await conn.copy_records_to_table(
                    "onboarding_progress", records=batch, columns=PROGRESS_COLUMNS
                )
            rollup_rows = rows.rollup_rows()
            await conn.copy_records_to_table(
                "kpi_event_rollups", records=rollup_rows, columns=ROLLUP_COLUMNS
            )
            await conn.copy_records_to_table(
                "funnel_cohort_rollups", records=rows.funnel_rows(), columns=FUNNEL_COLUMNS
            )
            await conn.execute(
                "SELECT setval(pg_get_serial_sequence('step_completions', 'id'), "
                "(SELECT max(id) FROM step_completions))"
            )
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE)")
        analyzed = time.perf_counter() - started
    finally:
        await conn.close()
    return loaded, analyzed, len(rollup_rows)


def seed(
    engine: str,
    database_url: str,
    *,
    events: int = DEFAULT_EVENTS,
    users: int | None = None,
    seed_value: int = 42,
    now: datetime | None = None,
) -> tuple[Plan, LoadReport]:
    """Fill a freshly migrated, empty database; return the plan and the timings."""
    started = time.perf_counter()
    plan = make_plan(events=events, users=users, seed=seed_value, now=now)
    planned = time.perf_counter() - started
    log(
        f"planned {plan.users:,} users, {len(plan.completions):,} completions, "
        f"{plan.kpi_events:,} KPI events in {planned:.1f} s; loading {engine}"
    )
    if engine == "sqlite":
        path = Path(database_url.split(":///", 1)[1])
        loaded, analyzed, rollup_rows = load_sqlite(path, plan)
    else:
        loaded, analyzed, rollup_rows = asyncio.run(load_postgres(database_url, plan))
    report = LoadReport(
        engine=engine,
        users=plan.users,
        completions=len(plan.completions),
        events=plan.kpi_events,
        rollup_rows=rollup_rows,
        plan_seconds=planned,
        load_seconds=loaded,
        analyze_seconds=analyzed,
    )
    log(report.summary())
    return plan, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="KPI event target")
    parser.add_argument("--users", type=int, help="fix the number of users instead")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--sqlite-file", type=Path, help="default: a new temporary folder")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_PG_ADMIN_URL),
        help="a database on the server whose user may CREATE DATABASE",
    )
    args = parser.parse_args()
    if args.engine == "sqlite":
        path = args.sqlite_file or Path(tempfile.mkdtemp(prefix="bench-analytics-")) / "db.sqlite3"
        if path.exists():
            parser.error(f"{path} exists; the loader fills a fresh database only")
        url = sqlite_url(path)
        cleanup = f"rm -r {path.parent}"
    else:
        name, url = create_postgres_database(args.postgres_url)
        cleanup = f"psql {args.postgres_url} -c 'DROP DATABASE \"{name}\"'"
    migrate(url)
    seed(args.engine, url, events=args.events, users=args.users, seed_value=args.seed)
    print(f"ONBOARDING_KPI_DATABASE_URL={url}")
    print(f"# when done: {cleanup}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
