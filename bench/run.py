"""Benchmark the real server against a plain-driver reference; write bench/RESULTS.md.

    uv run python bench/run.py [--duration 10] [--connections 32]

For each scenario (SQLite 1 process, PostgreSQL 1 worker, PostgreSQL 2 workers) and each
server (the reference in ``bench/reference_app.py``, then the real ``onboarding-kpi serve``)
it creates a fresh database, migrates it with ``onboarding-kpi migrate``, starts the server
as a subprocess, waits for ``/readyz``, warms it up, and drives it with wrk (a separate
process) through ``bench/load.lua`` for each workload:

- ``complete``: every request is a new user's step-1 completion;
- ``mix``: the same, with ``--retry-percent`` of requests resending an earlier request's
  exact body and token (the same idempotency key: the answer must be a replay);
- ``read``: ``myOnboardingProgress`` of users the ``complete`` workload created.

It records req/s, p50/p95/p99, errors (socket errors, non-200, bodies without the
expected success type), and the server's CPU per request (utime + stime of the server's
whole process tree, read from /proc before and after the wrk run; for PostgreSQL also the
database server's). See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from machine import (
    CpuSampler,
    free_port,
    machine_busy_seconds,
    process_tree,
    steal_seconds,
    wait_until_quiet,
)

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
LUA_SCRIPT = BENCH_DIR / "load.lua"
RESULTS_FILE = BENCH_DIR / "RESULTS.md"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
USER_PREFIX = "bench-u"
QUIET_ENOUGH = 0.3  # cores used elsewhere (or stolen) above which RESULTS.md flags the run


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    engine: str  # sqlite | postgresql
    workers: int


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("sqlite-1", "SQLite 1 process", "sqlite", 1),
        Scenario("pg-1", "PostgreSQL 1 worker", "postgresql", 1),
        Scenario("pg-2", "PostgreSQL 2 workers", "postgresql", 2),
    )
}
WORKLOADS = ("complete", "mix", "read")
TARGETS = ("reference", "floor", "app")
SERVER_NAMES = {
    "reference": "reference",
    "floor": "GraphQL floor (no database)",
    "app": "onboarding-kpi",
}
#: The floor keeps no idempotency keys, so it cannot replay: no `mix` for it.
FLOOR_WORKLOADS = ("complete", "read")
WORKLOAD_TITLES = {
    "complete": "completeOnboardingStep, new user each",
    "mix": "completeOnboardingStep, {pct}% retries",
    "read": "myOnboardingProgress",
}


@dataclass
class Result:
    scenario: Scenario
    target: str
    workload: str
    requests: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    cpu_ms_per_req: float
    db_cpu_ms_per_req: float | None
    errors: dict[str, int]
    replayed: int
    retries_sent: int
    samples: list[str] = field(default_factory=list)
    wrk_cores: float = 0.0
    background_cores: float = 0.0
    steal_cores: float = 0.0
    attempts: int = 1

    @property
    def error_total(self) -> int:
        return sum(self.errors.values())


# --- small helpers --------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def venv_script(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        sys.exit(f"bench: `{name}` not found; run the bench with `uv run python bench/run.py`")
    return found


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit(
            "bench: wrk (the HTTP load generator) is not installed.\n"
            "  Debian/Ubuntu: sudo apt-get install -y wrk\n"
            "  macOS:         brew install wrk\n"
            "then run the bench again."
        )
    return wrk


PG_SHARED_PROCESSES = ("walwriter", "checkpointer", "background writer", "wal writer")


def postgres_pids(database: str) -> list[int]:
    """The PostgreSQL processes working for ``database``: its backends (and autovacuum
    workers), plus the shared WAL writer, checkpointer and background writer. Backends
    of other databases (say, a test suite running beside the bench) are left out;
    the postmaster, which forks the backends, is in."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if not comm.startswith("postgres"):
            continue
        words = cmdline.split()
        if (
            database in words
            or any(name in cmdline for name in PG_SHARED_PROCESSES)
            or not cmdline.startswith("postgres:")  # the postmaster: it forks the backends
        ):
            pids.append(int(entry))
    return pids


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} was not ready within {timeout:.0f} s")


# --- tokens -------------------------------------------------------------------------------------


class Tokens:
    """Pre-minted bearer tokens; token i belongs to user ``bench-u<i>``."""

    def __init__(self, folder: Path, count: int, secret: str, attempts: int = 1) -> None:
        from app.auth import TokenCodec
        from app.config import Settings

        settings = Settings(jwt_secret=secret, jwt_issuer=None, jwt_audience=None)
        codec = TokenCodec(settings, secret)
        started = time.perf_counter()
        ttl = timedelta(hours=12)
        self.tokens = [codec.mint(f"{USER_PREFIX}{i:07d}", ttl=ttl) for i in range(count)]
        log(f"minted {count:,} tokens in {time.perf_counter() - started:.1f} s")
        self.folder = folder
        # disjoint regions: warm-up, then complete and mix split per attempt (a measurement
        # taken again must meet new users: each fresh database sees each user once)
        warm = max(count // 10, 1)
        per = (count - warm) // (2 * attempts)
        self.files: dict[str, list[Path]] = {"warmup": [self.write("warmup", 0, warm)]}
        lo = warm
        for workload in ("complete", "mix"):
            self.files[workload] = []
            for attempt in range(attempts):
                self.files[workload].append(self.write(f"{workload}-{attempt}", lo, lo + per))
                lo += per

    def write(self, name: str, lo: int, hi: int) -> Path:
        path = self.folder / f"tokens-{name}.txt"
        path.write_text("\n".join(self.tokens[lo:hi]) + "\n")
        return path

    def write_users(self, name: str, user_ids: list[str]) -> Path:
        path = self.folder / f"tokens-{name}.txt"
        indices = [int(u.removeprefix(USER_PREFIX)) for u in user_ids]
        path.write_text("\n".join(self.tokens[i] for i in indices) + "\n")
        return path


# --- databases -----------------------------------------------------------------------------------


class Database:
    """A fresh database for one server run: a SQLite file, or a PostgreSQL database."""

    def __init__(self, scenario: Scenario, folder: Path, pg_admin_url: str, tag: str) -> None:
        self.engine = scenario.engine
        self.pg_admin_url = pg_admin_url
        if self.engine == "sqlite":
            self.name = ""
            self.path = folder / "bench.sqlite3"
            self.app_url = f"sqlite+aiosqlite:///{self.path}"
            self.ref_url = f"sqlite:///{self.path}"
        else:
            self.name = f"bench_{os.getpid()}_{tag}".replace("-", "_")
            base = pg_admin_url.rsplit("/", 1)[0]
            self.ref_url = f"{base}/{self.name}"
            self.app_url = self.ref_url.replace("postgresql://", "postgresql+asyncpg://", 1)

    def create(self) -> None:
        if self.engine == "postgresql":
            asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            asyncio.run(self._admin(f'CREATE DATABASE "{self.name}"'))

    def drop(self) -> None:
        if self.engine == "postgresql":
            asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self.pg_admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def users_with_progress(self, limit: int) -> list[str]:
        sql = "SELECT user_id FROM onboarding_progress ORDER BY user_id LIMIT "
        if self.engine == "sqlite":
            with contextlib.closing(sqlite3.connect(self.path)) as conn:
                return [row[0] for row in conn.execute(sql + str(int(limit)))]

        async def fetch() -> list[str]:
            conn = await asyncpg.connect(self.ref_url)
            try:
                return [row[0] for row in await conn.fetch(sql + str(int(limit)))]
            finally:
                await conn.close()

        return asyncio.run(fetch())


async def postgres_version(admin_url: str) -> str | None:
    try:
        conn = await asyncpg.connect(admin_url, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        version: str = await conn.fetchval("SHOW server_version")
        return version
    finally:
        await conn.close()


# --- servers -------------------------------------------------------------------------------------


class Server:
    """The real server (``onboarding-kpi serve``) or the reference, as a subprocess."""

    def __init__(
        self,
        target: str,
        scenario: Scenario,
        db: Database,
        folder: Path,
        secret: str,
        extra_env: dict[str, str] | None = None,
    ):
        self.target = target
        self.scenario = scenario
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / f"{target}-server.log"
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("ONBOARDING_KPI_", "BENCH_"))
        }
        env.update(
            ONBOARDING_KPI_DATABASE_URL=db.app_url,
            ONBOARDING_KPI_DATA_DIR=str(folder / "data"),
            ONBOARDING_KPI_JWT_SECRET=secret,
            ONBOARDING_KPI_LOG_LEVEL="WARNING",
            BENCH_REF_DATABASE_URL=db.ref_url,
            BENCH_REF_JWT_SECRET=secret,
        )
        env.update(extra_env or {})
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def migrate(self) -> None:
        subprocess.run(  # noqa: S603 - our own console script
            [venv_script("onboarding-kpi"), "migrate"],
            env=self.env,
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def command(self) -> list[str]:
        workers = str(self.scenario.workers)
        if self.target == "app":
            return [venv_script("onboarding-kpi"), "serve", "--port", str(self.port),
                    "--workers", workers]  # fmt: skip
        # The same uvicorn settings as `onboarding-kpi serve` (app/cli.py): loop and http
        # "auto" (uvloop and httptools when installed), log level warning, no access log.
        module = "floor_app" if self.target == "floor" else "reference_app"
        return [sys.executable, "-m", "uvicorn", f"{module}:create_app", "--factory",
                "--app-dir", str(BENCH_DIR), "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", workers, "--log-level", "warning", "--no-access-log"]  # fmt: skip

    def start(self) -> None:
        with self.log_path.open("ab") as log_file:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
                self.command(), env=self.env, cwd=ROOT, stdout=log_file, stderr=log_file
            )
        try:
            wait_ready(f"{self.url}/readyz", self.proc)
            if self.scenario.workers > 1:
                time.sleep(2.0)  # let every worker finish its start-up
        except RuntimeError:
            self.stop()
            sys.stderr.write(self.log_tail())
            raise

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def pids(self) -> list[int]:
        return process_tree(self.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        tree = process_tree(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            for pid in tree:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        for pid in tree[1:]:  # workers that outlived their parent
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:]) + "\n"


# --- wrk ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadSettings:
    wrk: str
    duration: int
    warmup: int
    connections: int
    threads: int
    retry_percent: int
    timeout: int


def run_wrk(
    load: LoadSettings, url: str, tokens: Path, mode: str, duration: int, key_prefix: str
) -> tuple[dict[str, Any], list[str]]:
    """Run wrk with bench/load.lua; its done() summary (plus wrk's own CPU) and bad bodies."""
    cmd = [
        load.wrk,
        "-t", str(load.threads),
        "-c", str(load.connections),
        "-d", f"{duration}s",
        "--timeout", f"{load.timeout}s",
        "--latency",
        "-s", str(LUA_SCRIPT),
        f"{url}/graphql",
        "--", str(tokens), mode, str(load.threads), str(load.retry_percent), key_prefix,
    ]  # fmt: skip
    cpu_before = children_cpu_seconds()  # wrk is the only child that ends meanwhile
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    wrk_cpu = children_cpu_seconds() - cpu_before
    data: dict[str, Any] | None = None
    samples = []
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line.removeprefix("BENCH_JSON "))
        elif line.startswith("BENCH_SAMPLE "):
            samples.append(line.removeprefix("BENCH_SAMPLE "))
    if proc.returncode != 0 or data is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    data["wrk_cpu_s"] = wrk_cpu
    return data, samples


def measure(
    server: Server,
    db: Database,
    tokens: Tokens,
    load: LoadSettings,
    workload: str,
    tag: str,
    attempt: int = 0,
) -> Result:
    if workload == "read" and server.target == "floor":
        token_file = tokens.files["complete"][0]  # any signed-in user: the floor reads nothing
    elif workload == "read":
        users = db.users_with_progress(limit=50_000)
        if not users:
            raise RuntimeError("no users to read: run the complete workload first")
        token_file = tokens.write_users(f"read-{tag}", users)
    else:
        token_file = tokens.files[workload][attempt]
    pg = db.engine == "postgresql" and server.target != "floor"  # the floor uses no database
    machine_before, steal_before = machine_busy_seconds(), steal_seconds()
    wall_before = time.monotonic()
    with (
        CpuSampler(server.pids) as server_cpu,
        CpuSampler((lambda: postgres_pids(db.name)) if pg else list) as pg_sampler,
    ):
        data, samples = run_wrk(
            load, server.url, token_file, workload, load.duration, f"bench-{workload}-{attempt}"
        )
    wall = time.monotonic() - wall_before
    cpu = server_cpu.seconds
    pg_cpu = pg_sampler.seconds if pg else None
    steal = steal_seconds() - steal_before
    busy = machine_busy_seconds() - machine_before - steal
    elsewhere = busy - cpu - (pg_cpu or 0) - data["wrk_cpu_s"]
    requests = max(int(data["requests"]), 1)
    errors = {name: int(count) for name, count in data["errors"].items() if name != "status"}
    errors["non-200"] = int(data["bad_status"])
    errors["bad body"] = int(data["bad_body"])
    errors["tokens exhausted"] = int(data["exhausted"])
    return Result(
        scenario=server.scenario,
        target=server.target,
        workload=workload,
        requests=int(data["requests"]),
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        cpu_ms_per_req=cpu * 1000 / requests,
        db_cpu_ms_per_req=None if pg_cpu is None else pg_cpu * 1000 / requests,
        errors={k: v for k, v in errors.items() if v},
        replayed=int(data["replayed"]),
        retries_sent=int(data["retries_sent"]),
        samples=samples,
        wrk_cores=data["wrk_cpu_s"] / wall,
        background_cores=max(elsewhere, 0.0) / wall,
        steal_cores=steal / wall,
    )


def disturbed_by(r: Result) -> float:
    """Cores taken from the row by other load and by the hypervisor."""
    return r.background_cores + r.steal_cores


def measure_least_disturbed(
    server: Server,
    db: Database,
    tokens: Tokens,
    load: LoadSettings,
    workload: str,
    tag: str,
    args: argparse.Namespace,
) -> Result:
    """Measure; while the row lost more than ``--quiet-threshold`` cores to other load or
    to steal, measure again (new users each time, up to ``--retries`` more), and keep the
    least disturbed attempt. On a shared VM a single row can lose most of a core for its
    ten seconds while the rows around it lose none."""
    best: Result | None = None
    for attempt in range(1 + args.retries):
        wait_until_quiet(args.wait_quiet, args.quiet_threshold, server.pids, log)
        result = measure(server, db, tokens, load, workload, tag, attempt)
        if best is None or disturbed_by(result) < disturbed_by(best):
            best = result
        if disturbed_by(best) <= args.quiet_threshold:
            break
        if attempt < args.retries:
            log(
                f"{server.scenario.title} / {server.target} / {workload}: disturbed "
                f"(other {result.background_cores:.2f}, steal {result.steal_cores:.2f} cores): "
                "measuring again"
            )
    assert best is not None
    best.attempts = attempt + 1
    return best


def profile_command(pid: int, seconds: int, output: Path, *, native: bool) -> list[str]:
    uvx = shutil.which("uvx")
    if uvx is None:
        sys.exit("bench: --profile needs uvx (it runs py-spy without touching the project venv)")
    return [uvx, "py-spy", "record", "--pid", str(pid), "--duration", str(seconds),
            "--rate", "100" if native else "250", "--threads", "--subprocesses",
            *(["--native"] if native else ["--nonblocking"]),
            "--format", "raw", "--output", str(output)]  # fmt: skip


def run_target(
    scenario: Scenario,
    target: str,
    args: argparse.Namespace,
    load: LoadSettings,
    tokens: Tokens,
    folder: Path,
    secret: str,
) -> list[Result]:
    tag = f"{scenario.name}-{target}"
    workdir = folder / tag
    workdir.mkdir()
    db = Database(scenario, workdir, args.postgres_url, tag)
    db.create()
    extra_env = args.app_env if target == "app" else args.ref_env
    server = Server(target, scenario, db, workdir, secret, extra_env)
    results = []
    try:
        server.migrate()
        log(f"{scenario.title} / {target}: starting server")
        server.start()
        if load.warmup:
            run_wrk(
                load, server.url, tokens.files["warmup"][0], "complete", load.warmup, "bench-warmup"
            )
        for workload in args.workloads:
            if target == "floor" and workload not in FLOOR_WORKLOADS:
                continue
            profiler = None
            if args.profile and target == "app" and workload == "complete":
                wait_until_quiet(args.wait_quiet, args.quiet_threshold, server.pids, log)
                out = Path(args.profile) / f"profile-{scenario.name}.txt"
                out.parent.mkdir(parents=True, exist_ok=True)
                cmd = profile_command(server.pid, load.duration, out, native=args.profile_native)
                profiler = subprocess.Popen(cmd)  # noqa: S603 - fixed argv
                time.sleep(1.0)  # uvx start-up; py-spy samples for the wrk run's duration
                result = measure(server, db, tokens, load, workload, tag)
                profiler.wait(timeout=60)
                log(f"profile written to {out}")
            else:
                result = measure_least_disturbed(server, db, tokens, load, workload, tag, args)
            results.append(result)
            log(
                f"{scenario.title} / {target} / {workload}: {result.rps:,.0f} req/s, "
                f"p99 {result.p99_ms:.1f} ms, {result.cpu_ms_per_req:.2f} CPU ms/req, "
                f"errors {result.error_total}"
                + (
                    f", least disturbed of {result.attempts} attempts"
                    if result.attempts > 1
                    else ""
                )
            )
            for sample in result.samples:
                log(f"  bad response sample: {sample}")
    except Exception:
        sys.stderr.write(server.log_tail())
        raise
    finally:
        server.stop()
        db.drop()
    return results


# --- report ---------------------------------------------------------------------------------------


def fmt_ms(value: float) -> str:
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def ratio(value: float, reference: float | None) -> str:
    if not reference:
        return ""
    return f" ({value / reference:.1f}x)"


def find(results: list[Result], scenario: str, target: str, workload: str) -> Result | None:
    for r in results:
        if (r.scenario.name, r.target, r.workload) == (scenario, target, workload):
            return r
    return None


def error_text(r: Result) -> str:
    if not r.errors:
        return "0"
    return f"{r.error_total:,} (" + ", ".join(f"{n} {k}" for k, n in r.errors.items()) + ")"


HEADERS = [
    "scenario", "workload", "server", "req/s", "% of ref", "p50 ms", "p95 ms", "p99 ms",
    "CPU ms/req", "DB CPU ms/req", "errors", "wrk cores", "other cores", "steal cores",
]  # fmt: skip


def table_rows(results: list[Result], retry_percent: int) -> list[list[str]]:
    rows = []
    for r in results:
        ref = find(results, r.scenario.name, "reference", r.workload)
        ref = ref if r.target != "reference" else None
        workload = WORKLOAD_TITLES[r.workload].format(pct=retry_percent)
        if r.workload == "mix":
            workload += f" ({r.replayed:,} of {r.retries_sent:,} retries replayed)"
        db_cpu = "—" if r.db_cpu_ms_per_req is None else f"{r.db_cpu_ms_per_req:.2f}"
        if ref and ref.db_cpu_ms_per_req and r.db_cpu_ms_per_req is not None:
            db_cpu += ratio(r.db_cpu_ms_per_req, ref.db_cpu_ms_per_req)
        rows.append(
            [
                r.scenario.title,
                workload,
                SERVER_NAMES[r.target],
                f"{r.rps:,.0f}",
                f"{100 * r.rps / ref.rps:.0f}%" if ref else "100%",
                fmt_ms(r.p50_ms) + ratio(r.p50_ms, ref and ref.p50_ms),
                fmt_ms(r.p95_ms) + ratio(r.p95_ms, ref and ref.p95_ms),
                fmt_ms(r.p99_ms) + ratio(r.p99_ms, ref and ref.p99_ms),
                f"{r.cpu_ms_per_req:.2f}" + ratio(r.cpu_ms_per_req, ref and ref.cpu_ms_per_req),
                db_cpu,
                error_text(r),
                f"{r.wrk_cores:.2f}",
                f"{r.background_cores:.2f}",
                f"{r.steal_cores:.2f}",
            ]
        )
    return rows


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [HEADERS, *rows]) for i in range(len(HEADERS))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def headline(results: list[Result]) -> str:
    parts = []
    for name in ("sqlite-1", "pg-2"):
        title = SCENARIOS[name].title
        app, ref = (
            find(results, name, "app", "complete"),
            find(results, name, "reference", "complete"),
        )
        if app is None or ref is None:
            parts.append(f"{title}: not measured")
            continue
        parts.append(
            f"{title}: {app.rps:,.0f} req/s = {100 * app.rps / ref.rps:.0f}% of reference, "
            f"p99 {fmt_ms(app.p99_ms)} ms"
        )
    return "headline: " + "; ".join(parts)


def disturbance(results: list[Result]) -> str | None:
    """What disturbed the run, if anything: other load, or the hypervisor (steal)."""
    causes = []
    other = max((r.background_cores for r in results), default=0.0)
    if other > QUIET_ENOUGH:
        causes.append(f"other processes used up to {other:.2f} cores (column *other cores*)")
    steal = [r for r in results if r.steal_cores > QUIET_ENOUGH]
    if steal:
        worst = max(r.steal_cores for r in steal)
        causes.append(
            f"the hypervisor took up to {worst:.2f} cores from this VM in {len(steal)} of "
            f"{len(results)} rows (column *steal cores*)"
        )
    if not causes:
        return None
    return (
        " and ".join(causes) + " during the measurements. Absolute figures of those rows are "
        "depressed, and a ratio is only as good as the two rows it compares; re-run when the "
        "machine is quiet."
    )


def floor_lines(results: list[Result]) -> list[str]:
    """Per scenario: the app's share of what the GraphQL stack alone can do."""
    lines = []
    for scenario in SCENARIOS.values():
        for workload in FLOOR_WORKLOADS:
            app = find(results, scenario.name, "app", workload)
            floor = find(results, scenario.name, "floor", workload)
            if app is None or floor is None:
                continue
            lines.append(
                f"- {scenario.title}, {WORKLOAD_TITLES[workload]}: the GraphQL floor does "
                f"{floor.rps:,.0f} req/s (p99 {fmt_ms(floor.p99_ms)} ms, "
                f"{floor.cpu_ms_per_req:.2f} CPU ms/req); onboarding-kpi does "
                f"{100 * app.rps / floor.rps:.0f}% of that"
            )
    return lines


def code_revision() -> str:
    """The commit measured, and whether the work tree differed from it (outside bench/)."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()
    status = subprocess.run(
        ["git", "status", "--porcelain", "--", ".", ":!bench", ":!README.md"],  # noqa: S607
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout
    changed = len(status.splitlines())
    if not head:
        return "unknown"
    return f"{head}" + (f" with {changed} uncommitted file(s) changed" if changed else "")


def machine_description(
    pg_version: str | None, revision: str, load: tuple[float, ...]
) -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.MULTILINE)
    os_name = platform.platform()
    with contextlib.suppress(OSError):
        release = Path("/etc/os-release").read_text()
        pretty = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', release, re.MULTILINE)
        if pretty:
            os_name = f"{pretty.group(1)} (kernel {platform.release()})"
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)  # noqa: S607
    wrk_version = (wrk.stdout or wrk.stderr).splitlines()[0].split(" Copyright")[0]
    return [
        f"- CPUs (nproc): {os.cpu_count()}; model: {model.group(1) if model else 'unknown'}",
        f"- memory: {int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "- memory: unknown",
        f"- OS: {os_name}",
        f"- Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}; "
        f"PostgreSQL {pg_version or 'not reachable'}; {wrk_version}",
        f"- load average when the run started: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; code: commit {revision}",
    ]


def write_results(
    path: Path,
    results: list[Result],
    args: argparse.Namespace,
    pg_version: str | None,
    command: str,
    context: tuple[str, tuple[float, ...]],
) -> None:
    rows = table_rows(results, args.retry_percent)
    cause = disturbance(results)
    warning = [f"> **Disturbed run**: {cause}", ""] if cause else []
    text = [
        headline(results),
        "",
        "# Benchmark results",
        "",
        *warning,
        f"Regenerated by `{command}` (see [README.md](README.md)). "
        "Load: wrk from a separate process on loopback, "
        f"{args.connections} connections, {args.threads} threads, {args.duration} s per "
        f"workload after a {args.warmup} s warm-up; a fresh database per server run.",
        "",
        "## Machine",
        "",
        *machine_description(pg_version, *context),
        "",
        "wrk, the server and (for PostgreSQL) the database share these cores.",
        "",
        "## Results",
        "",
        markdown_table(rows),
        "",
        *(
            ["Against the GraphQL floor (strawberry alone, no database):", "", *floor, ""]
            if (floor := floor_lines(results))
            else []
        ),
        "- **reference**: `bench/reference_app.py`, a bare Starlette endpoint doing the same "
        "transaction with the plain driver (sqlite3 on the event loop with `BEGIN IMMEDIATE`; "
        "an asyncpg pool), the same uvicorn settings, no GraphQL.",
        "- **GraphQL floor (no database)**: `bench/floor_app.py`, strawberry-graphql with the "
        "app's schema shape and parser/validation caches under the same uvicorn settings, "
        "checking the token and answering made-up data: what the GraphQL stack alone costs. "
        "The app cannot beat it; `complete` and `read` only (it cannot replay).",
        "- **% of ref**: req/s of the server as a share of the reference's in the same "
        "scenario and workload; the figures in parentheses are ratios to the reference "
        "(latency and CPU: lower is better).",
        "- **CPU ms/req**: user + system CPU of the server's process tree (all workers and "
        "threads) during the wrk run, divided by the requests completed; **DB CPU ms/req**: "
        "the same for the PostgreSQL processes serving the bench database.",
        "- **errors**: socket errors and timeouts reported by wrk, non-200 answers, and 200 "
        "answers without the expected success type.",
        "- **wrk cores** / **other cores**: CPU used by the load generator, and by everything "
        "else on the machine (neither server nor wrk nor the bench database), in cores busy "
        "during the run: a high *other* means the figures of that row are disturbed.",
        "- **steal cores**: CPU the hypervisor gave to other virtual machines while this one "
        "had work (`steal` in /proc/stat; 0 on bare metal): the whole machine running slow "
        "for every row alike, which ratios within a run absorb but absolute figures do not.",
        "",
        "## Re-run",
        "",
        "```sh",
        "sudo apt-get install -y wrk   # once",
        "uv run python bench/run.py    # ~8 min, more if rows are re-measured; rewrites this file",
        "```",
        "",
    ]
    path.write_text("\n".join(text))


# --- main -----------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per workload")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per server")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--timeout", type=int, default=10, help="wrk request timeout, s")
    parser.add_argument("--tokens", type=int, default=200_000, help="bearer tokens to mint")
    parser.add_argument("--retry-percent", type=int, default=20, help="retries in mix")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma list of {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--targets", default=",".join(TARGETS), help="reference,floor,app")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="complete,mix,read")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_PG_URL)
    )
    parser.add_argument(
        "--output",
        help="results file (default bench/RESULTS.md for a full run; a partial run writes "
        "none unless this is given)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="before each workload, wait up to this long for other load on the machine to "
        "drop below --quiet-threshold (0: don't wait)",
    )
    parser.add_argument(
        "--app-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the app server, e.g. ONBOARDING_KPI_DB_POOL_SIZE=1 "
        "(repeatable; to try a setting without changing code)",
    )
    parser.add_argument(
        "--ref-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the reference, e.g. BENCH_REF_SQLITE_MODE=thread",
    )
    parser.add_argument("--quiet-threshold", type=float, default=0.3, metavar="CORES")
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="measure a workload again, up to this many times, while its row lost more than "
        "--quiet-threshold cores to other load or to steal; the least disturbed attempt is "
        "kept (each attempt of complete/mix takes new users: --tokens is split among them)",
    )
    parser.add_argument(
        "--profile-native",
        action="store_true",
        help="with --profile: also sample native (C) frames, e.g. SQLite's busy-wait sleeps",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="also record py-spy (via uvx) on the app during its `complete` workload, "
        "as collapsed stacks in DIR/profile-<scenario>.txt (skews that run's figures)",
    )
    args = parser.parse_args()
    for name in ("app_env", "ref_env"):
        pairs = [item.partition("=") for item in getattr(args, name)]
        if any(not sep or not key for key, sep, _ in pairs):
            parser.error(f"--{name.replace('_', '-')} takes NAME=VALUE")
        setattr(args, name, {key: value for key, _, value in pairs})
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.targets = [t for t in args.targets.split(",") if t]
    args.workloads = [w for w in args.workloads.split(",") if w]
    for value, allowed in ((args.scenarios, SCENARIOS), (args.targets, TARGETS),
                           (args.workloads, WORKLOADS)):  # fmt: skip
        unknown = set(value) - set(allowed)
        if unknown:
            parser.error(f"unknown {', '.join(sorted(unknown))}; choose from {', '.join(allowed)}")
    if "read" in args.workloads and "complete" not in args.workloads:
        parser.error("the read workload reads the users that `complete` created: keep both")
    full = (
        set(args.scenarios) == set(SCENARIOS)
        and set(args.targets) == set(TARGETS)
        and set(args.workloads) == set(WORKLOADS)
        and not args.profile
        and not args.app_env
        and not args.ref_env
    )
    args.output = Path(args.output) if args.output else (RESULTS_FILE if full else None)
    return args


def main() -> int:
    args = parse_args()
    wrk = require_wrk()
    sys.path.insert(0, str(ROOT))
    pg_version = asyncio.run(postgres_version(args.postgres_url))
    scenarios = [SCENARIOS[name] for name in args.scenarios]
    if pg_version is None and any(s.engine == "postgresql" for s in scenarios):
        sys.exit(
            f"bench: PostgreSQL is not reachable at {args.postgres_url}; start it, pass "
            "--postgres-url, or run only SQLite with --scenarios sqlite-1"
        )
    load = LoadSettings(
        wrk=wrk,
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        threads=args.threads,
        retry_percent=args.retry_percent,
        timeout=args.timeout,
    )
    context = (code_revision(), os.getloadavg())  # before the bench adds its own load
    secret = secrets.token_urlsafe(48)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="onboarding-kpi-bench-") as tmp:
        folder = Path(tmp)
        tokens = Tokens(folder, args.tokens, secret, attempts=1 + args.retries)
        for scenario in scenarios:
            for target in (t for t in TARGETS if t in args.targets):
                results += run_target(scenario, target, args, load, tokens, folder, secret)
    rows = table_rows(results, args.retry_percent)
    print()
    print(headline(results))
    print()
    print(text_table(rows))
    if floor := floor_lines(results):
        print("\n" + "\n".join(floor))
    if cause := disturbance(results):
        print(f"\nwarning: {cause}")
    if args.output:
        command = "uv run python bench/run.py " + " ".join(sys.argv[1:])
        write_results(args.output, results, args, pg_version, command.strip(), context)
        log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
