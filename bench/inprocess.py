"""CPU per request of the whole app, in one process: no socket, no uvicorn, no wrk.

    uv run python bench/inprocess.py                      # complete and read, 5 rounds
    uv run python bench/inprocess.py --workload complete --requests 3000 --rounds 7

Builds the app as ``onboarding-kpi serve`` does (``create_app`` on a fresh, migrated
SQLite file, then ``gc.freeze()``) and sends it requests through the ASGI interface
directly, one after another: each ``complete`` request is a new user's step-1
``completeOnboardingStep`` (the bench's document, a fresh token and key), each ``read``
a ``myOnboardingProgress`` of one of those users with the token it completed with, as a
client keeps its token (so reads find it among the verified tokens the app remembers;
``run.py``'s read uses each token once). It prints the CPU time per request of each
round and their minimum.

This is the tool for comparing two versions of the code: the load test (``run.py``)
shares two cores with wrk and swings by 20 % between runs on a shared machine; this
runs nothing else, and the minimum of several rounds is steady to a few per cent. Run it
on both versions (``git worktree add /tmp/before HEAD~1``, then ``--root /tmp/before``)
and compare the minima. It measures the app's own cost only: HTTP parsing and the event
loop's socket work are not in it (about 0.1-0.2 ms per request under uvicorn).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

MUTATION = (
    "mutation($input: CompleteOnboardingStepInput!) { completeOnboardingStep(input: $input) "
    "{ __typename ... on CompleteOnboardingStepSuccess { replayed progress { nextStep } "
    "analytics { status event { id kpiId occurredAt } } } ... on UserError { code message } } }"
)
QUERY = "query { myOnboardingProgress { completedSteps nextStep totalSteps isComplete } }"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=["complete", "read", "both"], default="both")
    parser.add_argument("--requests", type=int, default=2000, help="per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="the checkout whose code to measure (default: this one)",
    )
    return parser.parse_args()


class Client:
    """Sends requests straight into the ASGI app and checks each answer."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def post(self, token: str, document: dict[str, Any], expect: bytes) -> None:
        body = json.dumps(document).encode()
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/graphql", "raw_path": b"/graphql",
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "headers": [
                (b"host", b"127.0.0.1:8000"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"authorization", f"Bearer {token}".encode()),
            ],
        }  # fmt: skip
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:  # the app only asks again to watch for a disconnect
                await asyncio.Event().wait()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        if expect not in answer or b'"errors"' in answer:
            raise RuntimeError(f"unexpected answer: {answer[:300]!r}")


async def run(args: argparse.Namespace) -> dict[str, list[float]]:
    from app.config import Settings
    from app.main import create_app

    app = create_app(Settings())
    gc.collect()
    gc.freeze()  # as create_served_app does
    codec = app.state.services.tokens
    client = Client(app)
    total = args.requests * args.rounds
    warm_up = 200  # users of their own: caches, statement cache, the first connection
    tokens = [codec.mint(f"inprocess-u{i}", ttl=timedelta(hours=1)) for i in range(total + warm_up)]
    workloads = ["complete", "read"] if args.workload == "both" else [args.workload]
    if workloads == ["read"]:
        workloads = ["complete", "read"]  # reads need the users that complete creates
    cpu: dict[str, list[float]] = {w: [] for w in workloads}
    async with app.router.lifespan_context(app):
        for i in range(total, total + warm_up):
            await client.post(tokens[i], complete_document(f"inprocess-warm-{i:09d}"), b"Success")
        for workload in workloads:
            for r in range(args.rounds):
                batch = range(r * args.requests, (r + 1) * args.requests)
                started = time.process_time()
                for i in batch:
                    if workload == "complete":
                        document = complete_document(f"inprocess-key-{i:09d}")
                        await client.post(tokens[i], document, b"CompleteOnboardingStepSuccess")
                    else:
                        await client.post(tokens[i], {"query": QUERY}, b"isComplete")
                cpu[workload].append((time.process_time() - started) / args.requests * 1e6)
    return cpu


def complete_document(key: str) -> dict[str, Any]:
    return {
        "query": MUTATION,
        "variables": {
            "input": {
                "step": 1,
                "idempotencyKey": key,
                "source": "web",
                # The default flow's tracking plan: step 1 requires both fields.
                "metadata": {"displayName": "Bench user", "role": "engineer"},
            }
        },
    }


def migrate() -> None:
    from app.cli import main

    if main(["migrate"]) != 0:
        sys.exit("inprocess: migration failed")


def main() -> int:
    args = parse_args()
    sys.path.insert(0, str(args.root.resolve()))
    with tempfile.TemporaryDirectory(prefix="onboarding-kpi-inprocess-") as tmp:
        database = Path(tmp) / "bench.sqlite"
        os.environ.update(
            ONBOARDING_KPI_DATABASE_URL=f"sqlite+aiosqlite:///{database}",
            ONBOARDING_KPI_DATA_DIR=tmp,
            ONBOARDING_KPI_JWT_SECRET="inprocess-bench-secret-" + "x" * 32,
            ONBOARDING_KPI_LOG_LEVEL="WARNING",
        )
        migrate()
        cpu = asyncio.run(run(args))
    print(f"code: {args.root.resolve()}; {args.requests} requests per round")
    for workload, rounds in cpu.items():
        print(
            f"{workload:>8}: min {min(rounds):6.0f} µs CPU/request, "
            f"median {statistics.median(rounds):6.0f}  (rounds: "
            + ", ".join(f"{v:.0f}" for v in rounds)
            + ")"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
