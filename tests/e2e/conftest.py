"""Browser tests: headless Debian Chromium (Playwright) against the real server.

One server for this package (``onboarding-kpi serve`` on a free port, a fresh SQLite file in
a temporary data folder) with the default flow, and one with the test suite's second flow
(``team_trial_server``) for the tests that need it; each test signs in as its own user, so
tests never share state.
The fixtures are package-scoped on purpose: Playwright's sync API keeps an asyncio loop
marked as running while it is started, so it must stop before the async tests elsewhere run.
When a test fails, a screenshot of its page is saved into ``test-artifacts/``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.flows import TEAM_TRIAL_FILE

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
JWT_SECRET = "e2e-" + uuid.uuid4().hex + uuid.uuid4().hex
STARTUP_TIMEOUT_SECONDS = 60
TOKEN_KEY = "onboardingKpi.token"  # web/onboarding/session.js
FAILED = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: drives the onboarding page in headless Chromium against a real server"
    )


@dataclass(frozen=True)
class Server:
    base_url: str
    database: Path

    def token(self, user: str, *, ttl: timedelta = timedelta(hours=1)) -> str:
        """A bearer token signed with the server's secret; a negative ttl makes it expired."""
        now = datetime.now(UTC)
        claims = {"sub": user, "roles": [], "iat": now, "exp": now + ttl}
        return jwt.encode(claims, JWT_SECRET, algorithm="HS256")

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute(sql, params)]

    def kpi_events(self, user: str) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM kpi_events WHERE user_id = ?", user)

    def completions(self, user: str) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM step_completions WHERE user_id = ? ORDER BY step", user)

    def graphql(
        self, query: str, variables: dict[str, Any] | None = None, *, user: str | None = None
    ) -> dict[str, Any]:
        """POST /graphql as a client would (as ``user`` when given); the response's data."""
        headers = {"Authorization": f"Bearer {self.token(user)}"} if user else {}
        response = httpx.post(
            f"{self.base_url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers=headers,
            timeout=10,
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    def flow_steps(self) -> list[dict[str, Any]]:
        """The steps as the page reads them, with the page's own OnboardingFlow document."""
        steps: list[dict[str, Any]] = self.graphql(web_document("OnboardingFlow"))[
            "onboardingFlow"
        ]["steps"]
        return steps


def web_document(name: str) -> str:
    """One of the page's GraphQL documents (web/graphql/<name>.graphql)."""
    return (ROOT / "web" / "graphql" / f"{name}.graphql").read_text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    pytest.fail(f"the server was not ready after {STARTUP_TIMEOUT_SECONDS}s:\n{log.read_text()}")


@contextmanager
def _serve(data_dir: Path, **settings: str) -> Iterator[Server]:
    """``onboarding-kpi serve`` on a free port, with ``settings`` as ONBOARDING_KPI_* vars."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONBOARDING_KPI_")}
    env |= {
        "ONBOARDING_KPI_ENV": "development",
        "ONBOARDING_KPI_DATA_DIR": str(data_dir),
        "ONBOARDING_KPI_JWT_SECRET": JWT_SECRET,
        "ONBOARDING_KPI_LOG_FORMAT": "json",
    }
    env |= {f"ONBOARDING_KPI_{name.upper()}": value for name, value in settings.items()}
    script = Path(sys.executable).with_name("onboarding-kpi")  # what `uv run onboarding-kpi` runs
    command = [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]
    port = _free_port()
    log = data_dir / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own entry point, fixed arguments
            [*command, "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(base_url, process, log)
        yield Server(base_url, data_dir / "onboarding-kpi.sqlite3")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server with the packaged default flow (app/default_flow.toml)."""
    with _serve(tmp_path_factory.mktemp("e2e-server")) as running:
        yield running


@pytest.fixture(scope="package")
def team_trial_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A second server that serves tests/flows/team_trial.toml instead, on its own database."""
    data_dir = tmp_path_factory.mktemp("e2e-team-trial")
    with _serve(data_dir, flow_file=str(TEAM_TRIAL_FILE)) as running:
        yield running


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium "
            "(apt-get install chromium; .ci/run installs it). Never run `playwright install`."
        )
    expect.set_options(timeout=10_000)  # a loaded CI machine is slower than a laptop
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    report = yield
    item.stash.setdefault(FAILED, False)
    if report.failed:
        item.stash[FAILED] = True
    return report


@pytest.fixture
def page(browser: Browser, server: Server, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (own sessionStorage) on the server."""
    context = browser.new_context(base_url=server.base_url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    if request.node.stash.get(FAILED, False):
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        page.screenshot(path=ARTIFACTS / f"failed-{name}.png", full_page=True)
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


@pytest.fixture
def user() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}"


def sign_in_with_token(page: Page, token: str) -> None:
    """Put a token where the page looks for it (sessionStorage), before any script runs."""
    page.context.add_init_script(f"sessionStorage.setItem({TOKEN_KEY!r}, {json.dumps(token)});")
