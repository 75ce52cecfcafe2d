"""SIGKILL while serving a steady stream of completions: after a restart, nothing is lost.

The real server (one worker, so the killed process is the one serving) takes completions
from CLIENTS concurrent clients, each working through new users: step 1 for every user, step 2
for every second one, step 3 for every fourth. Once about a second of traffic has been
answered the process gets SIGKILL; each client's request in flight then fails (no answer:
outcome unknown). Checked on the database the dead process left behind, then through a
restarted server (same environment, same database):

* every request that received a success answer has its completion row (with its key), its
  KPI event row with the answered event id (or a failure record, or no KPI for its step),
  and its stored answer on the idempotency key;
* the core invariants hold: no completion without its event-or-failure, no duplicates;
* the restarted server answers the retry of every success (same key, same input) with
  ``replayed: true`` and the same event id and completion time;
* the retry of every unanswered request succeeds (replayed if it had committed, recorded
  now if it had not), and afterwards there is exactly one completion per attempt.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.auth import TokenCodec
from app.flow_file import DEFAULT_FLOW
from tests.faults.support import (
    SUCCESS,
    Attempt,
    Stored,
    db_engine,
    event_id,
    post_completion,
    server_env,
    stored,
    token_codec,
)
from tests.invariants import assert_core_invariants
from tests.server import RunningServer, running_server

CLIENTS = 8
REQUEST_BUDGET = 600
KILL_AFTER_SECONDS = 1.0
MIN_SUCCESSES_BEFORE_KILL = 40
KILL_AT_THE_LATEST_AT_REQUEST = 400  # well inside the budget, so the stream is never drained
STREAM_TIMEOUT_SECONDS = 60.0


def steps_of_user(n: int) -> list[int]:
    if n % 4 == 0:
        return [1, 2, 3]
    if n % 2 == 0:
        return [1, 2]
    return [1]


@dataclass
class Stream:
    """The load, and what the clients saw of it."""

    server: RunningServer
    started: float = field(default_factory=time.monotonic)
    sent: int = 0
    killed_after: int | None = None  # requests sent when the kill went out
    successes: list[tuple[Attempt, dict[str, Any]]] = field(default_factory=list)
    unanswered: list[Attempt] = field(default_factory=list)
    unexpected: list[tuple[Attempt, int, dict[str, Any]]] = field(default_factory=list)

    def kill_is_due(self) -> bool:
        if self.killed_after is not None:
            return False
        if self.sent >= KILL_AT_THE_LATEST_AT_REQUEST:
            return True
        return (
            time.monotonic() - self.started >= KILL_AFTER_SECONDS
            and len(self.successes) >= MIN_SUCCESSES_BEFORE_KILL
            and any(attempt.step == 3 for attempt, _ in self.successes)
        )

    def kill(self) -> None:
        self.killed_after = self.sent
        self.server.send_signal(signal.SIGKILL)

    async def run_client(self, http: httpx.AsyncClient, tokens: TokenCodec, client: int) -> None:
        """New users one after another until the budget is spent or a request goes unanswered."""
        for n in itertools.count():
            for step in steps_of_user(n):
                if self.sent >= REQUEST_BUDGET:
                    return
                attempt = Attempt(f"kill-{client}-{n}", step)
                self.sent += 1
                try:
                    status, result = await post_completion(http, tokens, attempt)
                except httpx.TransportError:
                    self.unanswered.append(attempt)
                    return
                if status != 200 or result["__typename"] != SUCCESS:
                    self.unexpected.append((attempt, status, result))
                    return
                self.successes.append((attempt, result))
                if self.kill_is_due():
                    self.kill()


def assert_recorded(store: Stored, attempt: Attempt, result: dict[str, Any]) -> None:
    """The rows behind one success answer."""
    completion = store.completions.get((attempt.user, attempt.step))
    assert completion is not None, (attempt, result)
    assert completion["idempotency_key"] == attempt.key, (attempt, completion)
    key = store.keys.get((attempt.user, attempt.key))
    assert key is not None and key["response"] is not None, (attempt, key)
    analytics = result["analytics"]
    kpi_id = DEFAULT_FLOW.steps[attempt.step - 1].kpi_id
    if analytics["status"] == "RECORDED":
        event = store.events.get(event_id(result) or "")
        assert event is not None, (attempt, result)
        assert event["completion_id"] == completion["id"], (event, completion)
        assert (event["kpi_id"], event["user_id"], event["step"]) == (
            kpi_id,
            attempt.user,
            attempt.step,
        )
    elif analytics["status"] == "FAILED":
        assert store.failures_by_completion.get(completion["id"]), (attempt, result)
    else:
        assert analytics["status"] == "NOT_APPLICABLE" and kpi_id is None, (attempt, result)


async def retry(
    http: httpx.AsyncClient, tokens: TokenCodec, attempts: list[Attempt]
) -> list[tuple[int, dict[str, Any]]]:
    gate = asyncio.Semaphore(CLIENTS)

    async def one(attempt: Attempt) -> tuple[int, dict[str, Any]]:
        async with gate:
            return await post_completion(http, tokens, attempt)

    return await asyncio.gather(*(one(attempt) for attempt in attempts))


async def test_sigkill_under_load_loses_no_answered_completion(
    database_url: str, tmp_path: Path
) -> None:
    tokens = token_codec()
    env = server_env(database_url, tmp_path)
    limits = httpx.Limits(max_connections=CLIENTS)

    # given a steady stream of completions from several clients, killed mid-stream
    with running_server(env=env, log_dir=tmp_path) as server:
        stream = Stream(server)
        async with (
            httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=30) as http,
            asyncio.timeout(STREAM_TIMEOUT_SECONDS),
        ):
            await asyncio.gather(*(stream.run_client(http, tokens, c) for c in range(CLIENTS)))
        assert stream.killed_after is not None, f"budget spent before the kill: {stream.sent}"
        assert server.wait(timeout=10) == -signal.SIGKILL
    assert stream.unexpected == []
    # every client had a request in flight (or just sent) when the process died
    assert len(stream.unanswered) == CLIENTS
    assert len(stream.successes) >= MIN_SUCCESSES_BEFORE_KILL
    assert {attempt.step for attempt, _ in stream.successes} == {1, 2, 3}

    # then the database the dead process left has every answered completion, whole
    engine = db_engine(database_url)
    try:
        after_crash = await stored(engine)
        for attempt, result in stream.successes:
            assert_recorded(after_crash, attempt, result)
        assert (
            len(stream.successes)
            <= len(after_crash.completions)
            <= len(stream.successes) + len(stream.unanswered)
        )
        await assert_core_invariants(engine, DEFAULT_FLOW)

        # when the server restarts on the same database and the clients retry
        with running_server(env=env, log_dir=tmp_path) as restarted:
            async with httpx.AsyncClient(
                base_url=restarted.base_url, limits=limits, timeout=30
            ) as http:
                replays = await retry(http, tokens, [a for a, _ in stream.successes])
                resumed = await retry(http, tokens, stream.unanswered)

        # then every answered completion is replayed, unchanged
        for (attempt, first), (status, again) in zip(stream.successes, replays, strict=True):
            assert status == 200 and again["__typename"] == SUCCESS, (attempt, again)
            assert again["replayed"] is True, (attempt, again)
            assert event_id(again) == event_id(first), (attempt, first, again)
            assert again["completion"] == first["completion"], (attempt, first, again)
            assert again["analytics"]["status"] == first["analytics"]["status"]
        # and every unanswered one is recorded exactly once, whether or not it had committed
        recovered = []
        for attempt, (status, again) in zip(stream.unanswered, resumed, strict=True):
            assert status == 200 and again["__typename"] == SUCCESS, (attempt, again)
            if (attempt.user, attempt.step) in after_crash.completions:
                assert again["replayed"] is True, (attempt, again)
            recovered.append((attempt, again))
        after_retries = await stored(engine)
        for attempt, result in [*stream.successes, *recovered]:
            assert_recorded(after_retries, attempt, result)
        assert len(after_retries.completions) == len(stream.successes) + len(stream.unanswered)
        await assert_core_invariants(engine, DEFAULT_FLOW)
    finally:
        await engine.dispose()
