"""The ``onboarding-kpi`` command line: serve, migrate, replay-failures, token, export-schema,
check-flow.

Every command but ``check-flow`` first reads the settings and the flow file, and refuses
to start (exit code 2, one line per problem on stderr) when the flow file is bad.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from app.config import Settings, settings_problems
from app.flow_file import FlowFileError, load_flow
from app.kpi import OnboardingFlow

if TYPE_CHECKING:
    from app.flow_history import FlowRecorded

EXIT_BAD_FLOW = 2
EXIT_BAD_CONFIG = 2  # a bad setting, like a bad flow file: fix it before anything starts


async def _prepare_database(
    settings: Settings, *, flow: OnboardingFlow, migrate: bool
) -> FlowRecorded:
    """Bring the schema to head (if asked), refuse one behind it, then reconcile the flow
    with the recorded history (``FlowHistoryConflict`` when the flow would rewrite it)."""
    from app.db import create_engine
    from app.flow_history import reconcile_flow
    from app.migrate import ensure_at_head, upgrade

    engine = create_engine(settings)
    try:
        if migrate:
            await upgrade(engine)
        await ensure_at_head(engine)
        return await reconcile_flow(engine, flow=flow)
    finally:
        await engine.dispose()


def _serve(args: argparse.Namespace, settings: Settings, flow: OnboardingFlow) -> int:
    import uvicorn

    from app.flow_history import FlowHistoryConflict
    from app.migrate import DatabaseBehindHead

    # The zero-configuration SQLite file is migrated automatically so `make serve` just works.
    migrate = args.migrate or settings.database_url is None
    try:
        recorded = asyncio.run(_prepare_database(settings, flow=flow, migrate=migrate))
    except (DatabaseBehindHead, FlowHistoryConflict) as exc:
        print(f"onboarding-kpi: {exc}", file=sys.stderr)
        return 1
    if recorded.wrote_anything:
        print(f"onboarding-kpi: {recorded}", file=sys.stderr)
    uvicorn.run(
        "app.main:create_served_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        # In-flight requests get this long to finish after SIGTERM; then they are cut.
        timeout_graceful_shutdown=args.graceful_timeout,
        # uvicorn kills a worker that misses a 5 s ping; a busy worker on a loaded
        # machine can, which drops its in-flight requests. Allow more.
        timeout_worker_healthcheck=30,
        log_level="warning",
        access_log=False,
    )
    return 0


def _migrate(_: argparse.Namespace, settings: Settings, flow: OnboardingFlow) -> int:
    from app.flow_history import FlowHistoryConflict

    try:
        recorded = asyncio.run(_prepare_database(settings, flow=flow, migrate=True))
    except FlowHistoryConflict as exc:
        print("onboarding-kpi: database schema is at head", file=sys.stderr)
        print(f"onboarding-kpi: {exc}", file=sys.stderr)
        return 1
    print("onboarding-kpi: database schema is at head")
    print(f"onboarding-kpi: {recorded}")
    return 0


def _replay_failures(args: argparse.Namespace, settings: Settings, flow: OnboardingFlow) -> int:
    from app.db import create_engine
    from app.logging import configure_logging
    from app.metrics import Metrics
    from app.migrate import ensure_at_head
    from app.processors.replay import ReplayProcessor

    configure_logging(fmt=settings.resolved_log_format, level=settings.log_level)

    async def run() -> str:
        engine = create_engine(settings)
        try:
            await ensure_at_head(engine)
            processor = ReplayProcessor(engine, flow=flow, metrics=Metrics())
            report = await processor.replay(limit=args.limit)
        finally:
            await engine.dispose()
        return (
            f"resolved={report.resolved} still_failing={report.still_failing} "
            f"remaining={report.remaining}"
        )

    print(asyncio.run(run()))
    return 0


def _token(args: argparse.Namespace, settings: Settings, _: OnboardingFlow) -> int:
    from app.auth import TokenCodec, resolve_secret

    codec = TokenCodec(settings, resolve_secret(settings))
    print(codec.mint(args.user, roles=args.role, ttl=timedelta(seconds=args.ttl)))
    return 0


def _export_schema(args: argparse.Namespace, _: Settings, __: OnboardingFlow) -> int:
    from app.graphql import export_sdl

    sdl = export_sdl()
    if args.output:
        Path(args.output).write_text(sdl)
    else:
        sys.stdout.write(sdl)
    return 0


def _check_flow(args: argparse.Namespace) -> int:
    try:
        flow = load_flow(Path(args.file))
    except FlowFileError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_FLOW
    kpis = sum(1 for s in flow.steps if s.kpi_id)
    print("ok")
    print(f"{flow.total_steps} steps, {len(flow.kpis)} KPIs, {kpis} of them counted by a step")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onboarding-kpi",
        description="GraphQL server recording onboarding completions and leading-KPI events. "
        "Configured by ONBOARDING_KPI_* environment variables (see README).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument(
        "--migrate", action="store_true", help="upgrade the database schema before serving"
    )
    serve.add_argument(
        "--graceful-timeout",
        type=int,
        default=30,
        help="seconds in-flight requests get to finish after SIGTERM (default 30)",
    )
    serve.set_defaults(func=_serve)

    migrate = sub.add_parser("migrate", help="upgrade the database schema to head")
    migrate.set_defaults(func=_migrate)

    replay = sub.add_parser(
        "replay-failures", help="rebuild missing KPI events from their completions"
    )
    replay.add_argument("--limit", type=int, default=100, help="most failures to replay")
    replay.set_defaults(func=_replay_failures)

    token = sub.add_parser("token", help="mint a signed bearer token for development")
    token.add_argument("--user", required=True, help="user id (the token's sub)")
    token.add_argument("--role", action="append", default=[], help="role; repeatable")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    token.set_defaults(func=_token)

    export = sub.add_parser("export-schema", help="print the GraphQL SDL")
    export.add_argument("--output", help="write to this file instead of stdout")
    export.set_defaults(func=_export_schema)

    check = sub.add_parser(
        "check-flow", help="validate a flow file (TOML) and print ok or its problems"
    )
    check.add_argument("file", help="the flow file to check")
    check.set_defaults(func=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check-flow":
        return _check_flow(args)
    try:
        settings = Settings()  # fail fast, before anything starts, on bad configuration
    except ValidationError as exc:
        for line in settings_problems(exc):
            print(f"onboarding-kpi: {line}", file=sys.stderr)
        print("onboarding-kpi: refusing to start: fix the configuration", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        flow = load_flow(settings.flow_file)
    except FlowFileError as exc:
        print(exc, file=sys.stderr)
        print(
            "onboarding-kpi: refusing to start: fix the flow file "
            "(ONBOARDING_KPI_FLOW_FILE), or check it with `onboarding-kpi check-flow FILE`",
            file=sys.stderr,
        )
        return EXIT_BAD_FLOW
    result: int = args.func(args, settings, flow)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
