""" "Confirmed" means on disk: the WAL is synced before the server answers a completion.

SQLite in WAL mode with ``synchronous=NORMAL`` syncs the WAL only at checkpoints, so a
commit that the client was told about can roll back after an OS crash or a power loss;
``FULL`` (the default, ``ONBOARDING_KPI_SQLITE_SYNCHRONOUS``) syncs it inside every COMMIT.
A process crash loses nothing either way (the SIGKILL tests); what an OS crash or a power
cut would lose is whatever was never synced, so this watches the syscalls: the real
server is traced with strace while it answers one completion, and the trace must show an
fsync/fdatasync of the WAL before the HTTP response is written. With ``normal`` it must
not (the opt-out does what the README says, and this test can fail).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.config import Settings
from app.dao.sql import Fetch, Script, Statement
from app.db import create_engine, normalise_url
from app.drivers import create_driver
from tests.conftest import TEST_SECRET
from tests.databases import PostgresDatabases
from tests.faults.support import SUCCESS, Attempt, server_env, token_codec
from tests.server import running_server

STRACE = shutil.which("strace")
SYNC_OF_THE_WAL = re.compile(r"\b(?:fsync|fdatasync)\(\d+<[^>]*-wal>\)\s+=\s+0")
RESPONSE = re.compile(
    r"\b(?:sendto|sendmsg|write|writev)\(\d+<(?:TCP|socket)[^>]*>,.*HTTP/1\.1 200"
)


def complete(base_url: str, attempt: Attempt) -> httpx.Response:
    return httpx.post(
        f"{base_url}/graphql",
        json=attempt.body(),
        headers={"Authorization": f"Bearer {token_codec().mint(attempt.user)}"},
        timeout=30,
    )


def traced_completion(tmp_path: Path, **settings: str) -> tuple[dict[str, object], list[str]]:
    """Serve on the embedded SQLite default with ``settings``, trace the serving process
    while one step is completed over HTTP; the answer and the trace's lines."""
    assert STRACE, "strace is missing: apt-get install strace (.ci/run installs it)"
    data_dir = tmp_path / "data"
    env = server_env("unused", data_dir, **settings)
    env.pop("ONBOARDING_KPI_DATABASE_URL")  # the zero-configuration default, as `make serve`
    trace = tmp_path / "strace.txt"
    with running_server(env=env, log_dir=tmp_path) as server:
        # a first commit creates the WAL file and syncs it and its directory in any mode;
        # the one traced is the steady state
        assert complete(server.base_url, Attempt("warm-up", 1)).status_code == 200
        tracer = subprocess.Popen(  # noqa: S603 - strace on our own server
            [
                STRACE,
                "-f",
                "-y",
                "-s",
                "48",
                "-e",
                "trace=fsync,fdatasync,write,writev,sendto,sendmsg",
                "-o",
                str(trace),
                "-p",
                str(server.pid),  # with -f: every thread of it (the loop's, sqlite's, ...)
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert tracer.stderr is not None
            attached = tracer.stderr.readline()  # "Process N attached with 6 threads"
            assert "attached" in attached, f"strace: {attached} {tracer.wait()}"
            response = complete(server.base_url, Attempt("durable", 1))
            time.sleep(0.2)  # let strace write out the last lines
        finally:
            tracer.send_signal(signal.SIGINT)  # detaches; the server runs on
            tracer.communicate(timeout=30)  # and closes its stderr
    result = response.json()["data"]["completeOnboardingStep"]
    return result, trace.read_text().splitlines()


@pytest.mark.parametrize(
    ("settings", "synced"),
    [({}, True), ({"sqlite_synchronous": "FULL"}, True), ({"sqlite_synchronous": "normal"}, False)],
    ids=["default", "full", "normal"],
)
def test_the_wal_is_on_disk_before_the_answer_unless_normal_is_chosen(
    tmp_path: Path, settings: dict[str, str], synced: bool
) -> None:
    result, lines = traced_completion(tmp_path, **settings)

    # the step was completed and its KPI event recorded, and the answer was written once
    assert result["__typename"] == SUCCESS, result
    assert result["analytics"]["status"] == "RECORDED"  # type: ignore[index]
    answers = [n for n, line in enumerate(lines) if RESPONSE.search(line)]
    assert len(answers) == 1, "\n".join(lines)

    # and the WAL was synced before it (FULL), or not at all (NORMAL)
    syncs = [line for line in lines[: answers[0]] if SYNC_OF_THE_WAL.search(line)]
    assert bool(syncs) is synced, "\n".join(lines)


# --- PostgreSQL: synchronous_commit stays on ---------------------------------------------------

SHOW_SYNCHRONOUS_COMMIT = Statement.of("SELECT current_setting('synchronous_commit') AS level")


def show_level() -> Script[str]:
    row = yield SHOW_SYNCHRONOUS_COMMIT(Fetch.ONE)
    return str(row["level"])


async def test_postgres_sessions_never_commit_with_synchronous_commit_off(
    postgres_databases: PostgresDatabases, postgres_database: str, tmp_path: Path
) -> None:
    # given a database whose default is the common "performance tweak"
    url = postgres_databases.url(postgres_database)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'ALTER DATABASE "{postgres_database}" SET synchronous_commit = off')
    finally:
        await admin.close()
    plain = await asyncpg.connect(dsn)
    try:
        assert await plain.fetchval("SHOW synchronous_commit") == "off"  # a plain session's
    finally:
        await plain.close()

    # when the server's write path and its SQLAlchemy engine connect to it
    settings = Settings(database_url=url, data_dir=tmp_path, jwt_secret=TEST_SECRET)
    driver = create_driver(normalise_url(url), busy_timeout_ms=0, pool_size=1)
    engine = create_engine(settings)
    try:
        in_a_transaction = await driver.transaction(show_level())
        read = await driver.read(show_level())
        async with engine.connect() as conn:
            on_the_engine = (await conn.execute(text("SHOW synchronous_commit"))).scalar()
    finally:
        await driver.close()
        await engine.dispose()

    # then every one of their sessions commits durably
    assert (in_a_transaction, read, on_the_engine) == ("on", "on", "on")
