"""Summarise a py-spy profile (``--format raw``: collapsed stacks) of the server.

    uv run python bench/profile_summary.py bench/profile/profile-sqlite-1.txt

Prints where the samples went: per thread, then by *component* (each sample is charged
to the deepest frame that belongs to a known component, so the buckets add up to 100 %),
then the inclusive share of a few frames of interest (a sample counts for every such
frame on its stack), then the hottest leaf functions.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# (component, regex on "function (file:line)"); the deepest matching frame wins, so more
# specific components are listed first only for readability: depth decides.
COMPONENTS: list[tuple[str, str]] = [
    ("GraphQL (graphql-core)", r"graphql/"),  # split into parse/validate/execute below
    ("strawberry", r"strawberry/"),
    ("SQLAlchemy compile + cache key", r"sqlalchemy/sql/"),
    ("SQLAlchemy aiosqlite adapter", r"sqlalchemy/dialects/sqlite/aiosqlite"),
    ("SQLAlchemy asyncpg adapter", r"sqlalchemy/dialects/postgresql/asyncpg"),
    ("SQLAlchemy async/greenlet bridge", r"sqlalchemy/(ext/asyncio|util/_concurrency)|greenlet"),
    ("SQLAlchemy engine/result/pool", r"sqlalchemy/"),
    ("aiosqlite (queue + thread hop)", r"aiosqlite/"),
    ("asyncpg", r"asyncpg/"),
    ("JWT (pyjwt)", r"jwt/"),
    ("JSON", r"json/|orjson"),
    ("logging (structlog)", r"structlog/|logging/"),
    ("metrics (prometheus_client)", r"prometheus_client/"),
    ("Starlette", r"starlette/"),
    ("uvicorn httptools protocol", r"uvicorn/protocols/http/httptools"),
    ("uvicorn h11 protocol", r"uvicorn/protocols/http/h11|h11/"),
    ("uvicorn (other)", r"uvicorn/"),
    (
        "hot-path driver + sqlite3 C calls (app/drivers, app/dao/sql)",
        r"\(app/(drivers|dao/sql)\.py",
    ),
    ("app code", r"\((app|resolvers|schema|models)/"),
    ("pydantic", r"pydantic"),
    ("dataclasses/enum/typing", r"(dataclasses|enum|typing)\.py"),
    ("asyncio / event loop", r"asyncio/|uvloop"),
    ("threads (queue/threading)", r"threading\.py|queue\.py|concurrent/"),
]
COMPILED = [(name, re.compile(pattern)) for name, pattern in COMPONENTS]

# Inclusive shares: a sample counts for each of these whose frame is on its stack.
OF_INTEREST: list[tuple[str, str]] = [
    ("HTTP request handling (uvicorn run_asgi)", r"run_asgi \(uvicorn"),
    ("  RequestIdMiddleware", r"RequestIdMiddleware"),
    ("  strawberry view (GraphQL.__call__)", r"GraphQL\.__call__ \(strawberry"),
    ("    request body -> JSON parse", r"parse_http_body|parse_json"),
    ("    Schema.execute", r"Schema\.execute \(strawberry"),
    ("      parse (incl. cache lookups)", r"parse_document|on_parse|graphql/language/parser"),
    ("      validate (incl. cache lookups)", r"validate_document|ValidationCache|on_validate"),
    ("      resolver complete_onboarding_step", r"complete_onboarding_step \(resolvers"),
    ("        token check (authenticate)", r"authenticate \(app/auth"),
    ("        processor.complete_step", r"complete_step \(app/processors"),
    ("          driver transaction (script + SQL)", r"Driver\.transaction \(app/drivers"),
    ("          SQL statements (sqlite3 / asyncpg calls)", r"_execute \(app/drivers|_Executor"),
    ("          structlog calls", r"structlog/"),
    ("      result -> GraphQL types (from_domain, serialise)", r"from_domain|complete_value"),
    ("      myOnboardingProgress resolver", r"my_onboarding_progress"),
    ("    response encode", r"encode_json|create_response|JSONResponse"),
    ("SQLAlchemy, all of it (incl. greenlet stacks)", r"sqlalchemy/"),
    (
        "  building statements (values, on_conflict, coercions)",
        r"ValuesBase\.values|on_conflict_do|coercions\.py",
    ),
    ("  cache key generation", r"cache_key\.py"),
    ("  compile (cache misses)", r"SQLCompiler\.__init__|compiler\.py.*process"),
    ("aiosqlite: queueing a call for the worker thread", r"Connection\._execute \(aiosqlite"),
    ("strawberry + graphql-core, all of it", r"strawberry/|graphql/"),
    ("aiosqlite worker thread", r"aiosqlite/core\.py"),
    ("asyncpg protocol", r"asyncpg/"),
    ("GC (garbage collection)", r"<gc>|gc\.collect"),
]
INTEREST = [(name, re.compile(pattern)) for name, pattern in OF_INTEREST]
LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")


def read(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for raw in path.read_text(errors="replace").splitlines():
        match = LINE.match(raw)
        if match:
            stacks.append((match["stack"].split(";"), int(match["count"])))
    return stacks


def strip_process(frames: list[str]) -> list[str]:
    """Drop the ``process N:"cmdline"`` root that ``--subprocesses`` adds."""
    return frames[1:] if frames and frames[0].startswith("process ") else frames


def thread_name(frames: list[str]) -> str:
    """Which thread a sample comes from, and for the main thread which kind of stack.

    SQLAlchemy's asyncio layer runs its sync code inside greenlets: py-spy shows those
    stacks rooted at the SQLAlchemy frame, without the request's frames above them.
    """
    root = frames[0] if frames else ""
    first = frames[1] if len(frames) > 1 else ""
    text = ";".join(frames)
    if "aiosqlite/core.py" in text and "_connection_worker_thread" in text:
        return "aiosqlite worker threads (SQLite C code, busy-wait sleeps)"
    if "MainThread" in root:
        if first.startswith("<module>"):
            return "event loop thread: request stacks"
        if "sqlalchemy/" in first:
            return "event loop thread: inside SQLAlchemy greenlets (caller not shown)"
        return "event loop thread: other (C code, between frames)"
    if root.startswith("thread"):
        return "other threads"
    return "other"


def component(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, pattern in COMPILED:
            if pattern.search(frame):
                return graphql_phase(frames) if name.startswith("GraphQL") else name
    return "other (C code, interpreter)"


def graphql_phase(frames: list[str]) -> str:
    """graphql-core's AST visitor serves parsing and validation alike: go by the caller."""
    text = ";".join(frames)
    if "graphql/validation/" in text or "validate_document" in text:
        return "GraphQL validate (graphql-core)"
    if re.search(r"graphql/language/(parser|lexer)", text):
        return "GraphQL parse (graphql-core)"
    return "GraphQL execute (graphql-core)"


def leaf(frames: list[str]) -> str:
    return re.sub(r":\d+\)$", ")", frames[-1]) if frames else "?"


def table(title: str, counts: Counter[str], total: int, limit: int | None = None) -> str:
    lines = [title]
    for name, count in counts.most_common(limit):
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    return "\n".join(lines)


def summarise(path: Path, top: int) -> str:
    stacks = read(path)
    total = sum(count for _, count in stacks) or 1
    threads: Counter[str] = Counter()
    components: Counter[str] = Counter()
    loop_components: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    interest: Counter[str] = Counter()
    for frames, count in stacks:
        frames = strip_process(frames)
        text = ";".join(frames)
        threads[thread_name(frames)] += count
        components[component(frames)] += count
        if frames and "MainThread" in frames[0] and "_connection_worker_thread" not in text:
            loop_components[component(frames)] += count
        leaves[leaf(frames)] += count
        for name, pattern in INTEREST:
            if pattern.search(text):
                interest[name] += count
    out = [
        f"{path}: {total:,} samples (active, non-idle; all threads)",
        "",
        table("by thread:", threads, total),
        "",
        table("by component (deepest known frame; adds up to 100%):", components, total),
        "",
        table(
            "event loop thread only, by component (it runs every request: its share of a "
            "core bounds throughput):",
            loop_components,
            sum(loop_components.values()) or 1,
        ),
        "",
        "inclusive (share of samples with this frame on the stack):",
    ]
    out += [f"  {100 * interest[name] / total:5.1f}%  {name}" for name, _ in OF_INTEREST]
    out += ["", table(f"hottest {top} leaf functions (self time):", leaves, total, top)]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path, help="py-spy record --format raw output")
    parser.add_argument("--top", type=int, default=25, help="leaf functions to list")
    args = parser.parse_args()
    print(summarise(args.profile, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
