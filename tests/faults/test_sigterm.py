"""Graceful shutdown on SIGTERM: the request in flight finishes and commits, new ones are refused.

What uvicorn 0.54 does (``uvicorn/server.py``, ``protocols/http/httptools_impl.py``), asserted
exactly here:

* the signal handler only sets ``should_exit``; the main loop notices within 0.1 s;
* ``shutdown()`` first closes the listening socket, so a new connection is refused
  (ECONNREFUSED; never a 503), then shuts every open connection down: an idle keep-alive one
  is closed at once, one with a request in flight gets its response, with
  ``Connection: close``, and is closed after it;
* it waits for those connections and tasks with no time limit (``timeout_graceful_shutdown``
  is not set), runs the lifespan shutdown (the app disposes of its engine), and once
  ``serve()`` returns it restores the default handler and re-raises the captured SIGTERM:
  the process ends *killed by SIGTERM* (return code -15, shell status 143), not with exit 0.

The request is held in flight by a lock the test owns, not by a timer: on SQLite a second
connection holds ``BEGIN IMMEDIATE`` (the server's writer waits on its busy timeout, set
long here); on PostgreSQL a transaction holds ``LOCK TABLE step_completions IN EXCLUSIVE MODE``
(the server's INSERT waits, and ``pg_stat_activity`` shows it waiting). The request is known
to be in the server's hands once the kernel shows its bytes acknowledged and read
(``/proc/net/tcp``), so the signal never races the request's arrival.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from app.flow_file import DEFAULT_FLOW
from tests.faults.support import (
    SUCCESS,
    Attempt,
    db_engine,
    event_id,
    post_completion,
    server_env,
    sqlite_path,
    stored,
    token_codec,
)
from tests.invariants import assert_core_invariants
from tests.server import running_server

WAIT_SECONDS = 10.0


class WriteLock:
    """A write lock on the server's database, held by the test for as long as it likes."""

    def __init__(self, database_url: str) -> None:
        self._url = make_url(database_url)
        self._sqlite: sqlite3.Connection | None = None
        self._holder: asyncpg.Connection | None = None
        self._watcher: asyncpg.Connection | None = None

    @property
    def _dsn(self) -> str:
        return self._url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def acquire(self) -> None:
        if self._url.get_backend_name() == "sqlite":
            self._sqlite = sqlite3.connect(sqlite_path(str(self._url)), isolation_level=None)
            self._sqlite.execute("BEGIN IMMEDIATE")
            return
        self._holder = await asyncpg.connect(self._dsn, timeout=WAIT_SECONDS)
        self._watcher = await asyncpg.connect(self._dsn, timeout=WAIT_SECONDS)
        await self._holder.execute("BEGIN")
        await self._holder.execute("LOCK TABLE step_completions IN EXCLUSIVE MODE")

    async def wait_for_a_waiter(self) -> None:
        """PostgreSQL: until a server backend waits on the lock. SQLite cannot show waiters."""
        if self._watcher is None:
            return
        holder_pid = self._holder.get_server_pid() if self._holder else 0
        for _ in range(int(WAIT_SECONDS / 0.02)):
            waiting = await self._watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> $1",
                holder_pid,
            )
            if waiting:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the in-flight request never waited on the lock")

    async def release(self) -> None:
        if self._sqlite is not None:
            self._sqlite.execute("ROLLBACK")
            self._sqlite.close()
            self._sqlite = None
        for conn in (self._holder, self._watcher):
            if conn is not None:
                await conn.close()  # the holder's transaction rolls back
        self._holder = self._watcher = None


def tcp_queues(local_port: int, remote_port: int) -> tuple[int, int] | None:
    """(tx_queue, rx_queue) of the IPv4 socket local_port -> remote_port, if it exists."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, queues = fields[1], fields[2], fields[4]
        if (int(local.split(":")[1], 16), int(remote.split(":")[1], 16)) == (
            local_port,
            remote_port,
        ):
            tx, rx = queues.split(":")
            return int(tx, 16), int(rx, 16)
    return None


def request_was_read(client_port: int, server_port: int) -> bool:
    """The server's kernel acknowledged every byte sent, and the server process read them."""
    client = tcp_queues(client_port, server_port)
    server = tcp_queues(server_port, client_port)
    return client is not None and server is not None and client[0] == 0 and server[1] == 0


def raw_request(method: str, path: str, port: int, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


async def response_then_eof(
    reader: asyncio.StreamReader,
) -> tuple[int, dict[str, str], bytes, bytes]:
    status, headers, body = await read_response(reader)
    return status, headers, body, await reader.read()


async def wait_until_refused(port: int) -> None:
    """Connect until the listening socket is gone (bounded); accepted probes are closed."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return
        writer.close()
        await asyncio.sleep(0.02)
    raise AssertionError("the server kept accepting connections after SIGTERM")


async def test_sigterm_finishes_the_request_in_flight_and_refuses_new_ones(
    database_url: str, tmp_path: Path
) -> None:
    tokens = token_codec()
    env = server_env(database_url, tmp_path, db_busy_timeout_ms="60000")
    in_flight = Attempt("graceful-in-flight", 1)
    late = Attempt("graceful-late", 1)
    lock = WriteLock(database_url)
    async with AsyncExitStack() as cleanup:
        server = cleanup.enter_context(running_server(env=env, log_dir=tmp_path))
        cleanup.push_async_callback(lock.release)  # before the server is stopped, if failing

        async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            cleanup.callback(writer.close)
            return reader, writer

        # given a completion in flight, waiting for a write lock the test holds
        await lock.acquire()
        reader, writer = await connect()
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {tokens.mint(in_flight.user)}",
        }
        body = json.dumps(in_flight.body()).encode()
        writer.write(raw_request("POST", "/graphql", server.port, headers, body))
        await writer.drain()
        response = asyncio.create_task(response_then_eof(reader))
        cleanup.callback(response.cancel)
        client_port = writer.get_extra_info("sockname")[1]
        for _ in range(int(WAIT_SECONDS / 0.01)):
            if request_was_read(client_port, server.port):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the server never read the request")
        await lock.wait_for_a_waiter()

        # and an idle keep-alive connection (just answered: well inside its idle timeout)
        idle, idle_writer = await connect()
        idle_writer.write(raw_request("GET", "/livez", server.port, {}, b""))
        status, headers, _ = await read_response(idle)
        assert status == 200 and headers.get("connection") != "close"

        # when the server gets SIGTERM
        server.send_signal(signal.SIGTERM)

        # then new connections are refused (the listening socket is closed; no 503)
        await wait_until_refused(server.port)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=WAIT_SECONDS) as http:
            with pytest.raises(httpx.ConnectError):
                await post_completion(http, tokens, late)
        # and the idle keep-alive connection is closed by the server
        assert await asyncio.wait_for(idle.read(), WAIT_SECONDS) == b""
        # while the request in flight is still being served, by a live process
        assert not response.done()
        assert server.process.poll() is None

        # when the lock is released, the request in flight completes with a success
        await lock.release()
        status, headers, body, rest = await asyncio.wait_for(response, WAIT_SECONDS * 3)
        assert status == 200, body
        assert headers["connection"] == "close"
        assert rest == b""  # and the server closes the connection after the response
        result: dict[str, Any] = json.loads(body)["data"]["completeOnboardingStep"]
        assert result["__typename"] == SUCCESS, result
        assert result["replayed"] is False
        assert result["analytics"]["status"] == "RECORDED"

        # and the process ends as uvicorn ends it: by re-raising SIGTERM once shut down
        assert server.wait(timeout=WAIT_SECONDS) == -signal.SIGTERM

    # and the in-flight completion was committed, the refused one left no trace
    engine = db_engine(database_url)
    try:
        rows = await stored(engine)
        completion = rows.completions[(in_flight.user, 1)]
        assert completion["idempotency_key"] == in_flight.key
        assert rows.events[event_id(result) or ""]["completion_id"] == completion["id"]
        assert (late.user, 1) not in rows.completions
        assert not [key for key in rows.keys if key[0] == late.user]
        await assert_core_invariants(engine, DEFAULT_FLOW)
    finally:
        await engine.dispose()
