"""The write path alone: the app's transaction against the reference's plain code.

    uv run python bench/write_path.py                  # 3,000 completions each, 3 rounds

No HTTP, no GraphQL: on a fresh migrated SQLite file each, it completes step 1 for new
users through ``OnboardingProcessor.complete_step`` (the transaction script on
``SqliteDriver``, as the server runs it) and through the reference's
``SqliteStore.complete`` (``reference_app.py``: the same statements written out with
``sqlite3``), alternating, and prints wall and CPU time per completion. What the app
pays over the reference here is the price of its structure (scripts, typed rows, the
outcome stored as JSON, metrics), not of the database.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR.parent), str(BENCH_DIR)]

import reference_app as ref  # noqa: E402

from app.drivers import SqliteDriver  # noqa: E402
from app.flow_file import DEFAULT_FLOW  # noqa: E402
from app.logging import configure_logging  # noqa: E402
from app.metrics import Metrics  # noqa: E402
from app.processors.onboarding import OnboardingProcessor  # noqa: E402
from app.services.onboarding import CompleteStepCommand  # noqa: E402


async def migrated(path: Path) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.migrate import upgrade

    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


# Step 1 of the default flow requires both fields; without them every event would fail to build.
METADATA = {"displayName": "Bench user", "role": "engineer"}


async def app_side(path: Path, n: int) -> tuple[float, float]:
    driver = SqliteDriver(str(path), busy_timeout_ms=5000)
    processor = OnboardingProcessor(driver, flow=DEFAULT_FLOW, metrics=Metrics())
    commands = [CompleteStepCommand(1, uuid.uuid4().hex, "web", dict(METADATA)) for _ in range(n)]
    wall, cpu = time.perf_counter(), time.process_time()
    for i, command in enumerate(commands):
        await processor.complete_step(f"write-path-u{i}", command)
    result = time.perf_counter() - wall, time.process_time() - cpu
    await driver.close()
    return result


async def reference_side(path: Path, n: int) -> tuple[float, float]:
    store = ref.SqliteStore(str(path), mode="direct")
    await store.start()
    inputs = [
        {"step": 1, "idempotencyKey": uuid.uuid4().hex, "source": "web", "metadata": METADATA}
        for _ in range(n)
    ]
    wall, cpu = time.perf_counter(), time.process_time()
    for i, raw in enumerate(inputs):
        # parsing hashes the fingerprint, which the app's complete_step does too
        await store.complete(f"write-path-u{i}", ref.parse_input(raw))
    result = time.perf_counter() - wall, time.process_time() - cpu
    await store.stop()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--completions", type=int, default=3000, help="per side and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    configure_logging(fmt="json", level="WARNING")
    sides = {"app (script + SqliteDriver)": app_side, "reference (plain sqlite3)": reference_side}
    for round_ in range(1, args.rounds + 1):
        for name, side in sides.items():
            with tempfile.TemporaryDirectory(prefix="onboarding-kpi-write-path-") as tmp:
                path = Path(tmp) / "bench.sqlite"
                asyncio.run(migrated(path))
                wall, cpu = asyncio.run(side(path, args.completions))
            print(
                f"round {round_}, {name:<28} {wall / args.completions * 1e6:6.0f} µs wall, "
                f"{cpu / args.completions * 1e6:6.0f} µs CPU per completion"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
