"""The KPI dashboard (/dashboard) in a real browser, drawing what the real API recorded.

The dashboard shows every user's numbers, so this module runs its own server on its own
database: the users the other browser tests create would change them. Events are seeded by
completing steps through POST /graphql, as a client would; one user's KPI event is refused
by a database trigger, so the server itself records one analytics failure.
"""

from __future__ import annotations

import re
import sqlite3
import struct
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Locator, Page, Request, Route, expect

from app.flow_file import DEFAULT_FLOW
from tests.e2e.conftest import ARTIFACTS, JWT_SECRET, Server, sign_in_with_token
from tests.flows import valid_metadata
from tests.server import running_server

pytestmark = pytest.mark.e2e

COMPLETE_STEP = """
mutation Complete($input: CompleteOnboardingStepInput!) {
  completeOnboardingStep(input: $input) {
    __typename
    ... on CompleteOnboardingStepSuccess { analytics { status } }
    ... on UserError { code message }
  }
}
"""
#: How far each seeded user gets: 5 users start, 4 reach step 2, 3 step 3, 2 finish.
REACHED = (4, 4, 3, 2, 1)
STEP_1_KPI = "onboarding.step_1_completed"
COMPLETED_KPI = "onboarding.completed"
FAR_ZONE = "Pacific/Kiritimati"  # UTC+14: its "today" is often not the UTC one
ACCENT = (0x1F, 0x5F, 0xD1)  # .chart .bar fill in web/dashboard/dashboard.css


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Overrides the package's shared server for this module: a fresh database."""
    data_dir = tmp_path_factory.mktemp("e2e-dashboard")
    database = data_dir / "onboarding-kpi.sqlite3"
    env = {
        "ONBOARDING_KPI_ENV": "development",
        "ONBOARDING_KPI_DATA_DIR": str(data_dir),
        "ONBOARDING_KPI_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "ONBOARDING_KPI_JWT_SECRET": JWT_SECRET,
        "ONBOARDING_KPI_LOG_FORMAT": "json",
    }
    with running_server(env=env, log_dir=data_dir, extra_args=("--migrate",)) as running:
        yield Server(running.base_url, database)


def complete_step(server: Server, user: str, step: int) -> dict[str, Any]:
    """Complete ``step`` through the API, with metadata its tracking plan accepts."""
    metadata = valid_metadata(DEFAULT_FLOW, step)
    key = str(uuid.uuid4())
    variables = {
        "input": {"step": step, "idempotencyKey": key, "source": "web", "metadata": metadata}
    }
    response = httpx.post(
        f"{server.base_url}/graphql",
        json={"query": COMPLETE_STEP, "variables": variables},
        headers={"Authorization": f"Bearer {server.token(user)}"},
        timeout=10,
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()["data"]["completeOnboardingStep"]
    assert result["__typename"] == "CompleteOnboardingStepSuccess", result
    return result


@dataclass(frozen=True)
class Seeded:
    users: list[str]
    failing_user: str  # completed step 1, but its KPI event was refused

    def event_times(self, server: Server, kpi_id: str) -> list[datetime]:
        rows = server.rows("SELECT occurred_at FROM kpi_events WHERE kpi_id = ?", kpi_id)
        return [datetime.fromisoformat(r["occurred_at"]).replace(tzinfo=UTC) for r in rows]


@pytest.fixture(scope="module")
def seeded(server: Server) -> Seeded:
    run = uuid.uuid4().hex[:8]
    users = [f"e2e-dash-{run}-{i}" for i in range(len(REACHED))]
    for user, reached in zip(users, REACHED, strict=True):
        for step in range(1, reached + 1):
            complete_step(server, user, step)

    failing_user = f"e2e-dash-{run}-failing"
    with sqlite3.connect(server.database) as conn:
        conn.execute(
            "CREATE TRIGGER refuse_one_user BEFORE INSERT ON kpi_events "
            f"WHEN NEW.user_id = '{failing_user}' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the dashboard test'); END"
        )
    try:
        result = complete_step(server, failing_user, 1)
    finally:
        with sqlite3.connect(server.database) as conn:
            conn.execute("DROP TRIGGER refuse_one_user")
    assert result["analytics"]["status"] == "FAILED"
    return Seeded(users, failing_user)


# --- helpers ----------------------------------------------------------------------------------


def sign_in(page: Page, role: str) -> str:
    """Sign in through the development form, with the keyboard only."""
    user = f"e2e-{role}-{uuid.uuid4().hex[:8]}"
    page.goto("/dashboard")
    expect(page.get_by_label("User id")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_label("User id")).to_be_focused()
    page.keyboard.type(user)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Role")).to_be_focused()
    if role == "admin":
        page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Role")).to_have_value(role)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign in")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#session-bar")).to_contain_text(f"Signed in as {user} ({role})")
    return user


def wait_for_series(page: Page) -> None:
    expect(page.locator("#series-panel")).to_have_attribute("data-status", "ready")


def bars(page: Page) -> dict[str, int]:
    """The chart's bars as {bucket start: events}, after checking each is drawn visibly."""
    found: dict[str, int] = {}
    rects = page.locator("#series-chart svg rect.bar")
    for i in range(rects.count()):
        rect = rects.nth(i)
        box = rect.bounding_box()
        assert box is not None
        assert box["height"] > 0
        assert box["width"] > 0
        found[str(rect.get_attribute("data-start"))] = int(str(rect.get_attribute("data-events")))
    return found


def expected_bars(times: list[datetime], zone: str, *, hourly: bool = False) -> dict[str, int]:
    """Events per local day (or hour) as {YYYY-MM-DD[THH]: events}."""
    fmt = "%Y-%m-%dT%H" if hourly else "%Y-%m-%d"
    return dict(Counter(t.astimezone(ZoneInfo(zone)).strftime(fmt) for t in times))


def by_prefix(found: dict[str, int], length: int) -> dict[str, int]:
    return {start[:length]: events for start, events in found.items()}


def png_pixels(png: bytes) -> Counter[bytes]:
    """Colour counts of an 8-bit RGB(A), non-interlaced PNG (what Chromium writes); stdlib only."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = depth = colour_type = interlace = 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        body = png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert (depth, interlace) == (8, 0)
    assert colour_type in (2, 6)
    bpp = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    above = bytearray(stride)
    colours: Counter[bytes] = Counter()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = above[i], (above[i - bpp] if i >= bpp else 0)
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 0xFF
        colours.update(bytes(line[i : i + 3]) for i in range(0, stride, bpp))
        above = line
    return colours


def screenshot(target: Page | Locator, name: str, **options: Any) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    target.screenshot(path=path, **options)
    return path


# --- tests ------------------------------------------------------------------------------------


def test_an_admin_sees_the_chart_the_funnel_and_the_failure_count(
    page: Page, server: Server, seeded: Seeded
) -> None:
    requests: list[Request] = []
    page.on("request", lambda r: requests.append(r) if r.url.endswith("/graphql") else None)
    sign_in(page, "admin")
    zone = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")

    # the picker lists every KPI with its kind; the first leading one is chosen, and focused
    kpi = page.get_by_label("KPI", exact=True)
    expect(kpi).to_be_focused()
    expect(kpi).to_have_value(STEP_1_KPI)
    expect(kpi.locator("option")).to_have_text(
        [
            "Onboarding step 1 completed · LEADING",
            "Teammate invited during onboarding · LEADING",
            "Onboarding completed · LAGGING",
        ]
    )
    expect(page.get_by_label("Interval")).to_have_value("DAY")
    expect(page.get_by_label("Time zone")).to_have_value(zone)
    today = datetime.now(ZoneInfo(zone)).date()
    expect(page.get_by_label("From", exact=True)).to_have_value(str(today - timedelta(days=29)))
    expect(page.get_by_label("To (included)")).to_have_value(str(today))
    expect(page.get_by_role("status")).to_contain_text("Dashboard updated.")

    # the chart: one visible bar per day holding events, with the seeded counts
    wait_for_series(page)
    chart = page.get_by_role("img", name="Onboarding step 1 completed per day")
    expect(chart).to_be_visible()
    expect(chart).to_have_attribute("data-buckets", "30")
    step_1_times = seeded.event_times(server, STEP_1_KPI)
    assert len(step_1_times) == len(REACHED)  # the failing user's event is missing
    assert by_prefix(bars(page), 10) == expected_bars(step_1_times, zone)
    expect(page.locator("#series-totals")).to_contain_text("5 events · 5 unique users")
    expect(chart).to_have_accessible_description(
        re.compile(r"^Onboarding step 1 completed: 5 events from 5 users, .* per day\. ")
    )
    expect(chart.locator("g.x-axis text")).not_to_have_count(0)
    expect(chart.locator("g.y-axis text")).not_to_have_count(0)

    # the funnel counts completions, so the failing user is in it
    funnel = page.locator("#funnel-steps")
    expect(funnel.locator(".funnel-users")).to_have_text(
        ["6 users", "4 users", "3 users", "2 users"]
    )
    expect(page.locator("#funnel-cohort")).to_contain_text("6 users completed step 1")
    expect(funnel.locator(".funnel-numbers")).to_have_text(
        [
            "cohort start, 100%",
            "66.7% of step 1 · median less than a second after step 1",
            "50% of step 1 · 75% of step 2 · median less than a second after step 2",
            "33.3% of step 1 · 66.7% of step 3 · median less than a second after step 3",
        ]
    )
    widths = funnel.locator(".funnel-bar").evaluate_all(
        "bars => bars.map(b => b.getBoundingClientRect().width)"
    )
    assert widths[0] > widths[1] > widths[2] > widths[3] > 0

    # the failure count, which admins may read
    expect(page.locator("#failures-count")).to_have_text("1 unresolved failure")

    # the picture: saved for people, and checked to hold the bars' colour, axes and text
    path = screenshot(page, "dashboard.png", full_page=True)
    assert path.stat().st_size > 20_000
    colours = png_pixels(page.locator("#series-chart svg").screenshot())
    assert colours[bytes(ACCENT)] > 50  # bar pixels
    assert len(colours) > 20  # background, grid, axes and anti-aliased labels

    # another zone: its own "last 30 days", and the bar moves to that zone's day
    page.get_by_label("Time zone").select_option(FAR_ZONE)
    expect(page.locator("#series-totals")).to_contain_text(f"({FAR_ZONE})")
    wait_for_series(page)
    far_today = datetime.now(ZoneInfo(FAR_ZONE)).date()
    expect(page.get_by_label("To (included)")).to_have_value(str(far_today))
    assert by_prefix(bars(page), 10) == expected_bars(step_1_times, FAR_ZONE)
    sent = [r.post_data_json for r in requests if r.post_data_json]
    series = [b["variables"] for b in sent if b["operationName"] == "DashboardKpiEventSeries"]
    first_day = datetime.combine(far_today - timedelta(days=29), time(), ZoneInfo(FAR_ZONE))
    assert series[-1]["timeZone"] == FAR_ZONE
    assert datetime.fromisoformat(series[-1]["from"]) == first_day

    # hourly buckets
    page.get_by_label("Interval").select_option("HOUR")
    expect(page.get_by_role("img", name="Onboarding step 1 completed per hour")).to_be_visible()
    wait_for_series(page)
    expect(page.get_by_role("img")).to_have_attribute("data-buckets", str(30 * 24))
    assert by_prefix(bars(page), 13) == expected_bars(step_1_times, FAR_ZONE, hourly=True)

    # a lagging KPI
    page.get_by_label("KPI", exact=True).select_option(COMPLETED_KPI)
    expect(page.get_by_role("img", name="Onboarding completed per hour")).to_be_visible()
    wait_for_series(page)
    expect(page.locator("#series-totals")).to_contain_text("2 events · 2 unique users")
    completed = seeded.event_times(server, COMPLETED_KPI)
    assert by_prefix(bars(page), 13) == expected_bars(completed, FAR_ZONE, hourly=True)


def test_an_analyst_sees_the_chart_but_needs_admin_for_the_failures(
    page: Page, seeded: Seeded
) -> None:
    sign_in(page, "analyst")

    wait_for_series(page)
    expect(page.get_by_role("img", name="Onboarding step 1 completed per day")).to_be_visible()
    assert sum(bars(page).values()) == len(REACHED)
    expect(page.locator("#funnel-steps .funnel-users").first).to_have_text("6 users")
    expect(page.locator("#failures-count")).to_have_text(
        "Needs admin role: ask an admin to check unresolved analytics failures."
    )
    expect(page.locator("#failures-error")).to_be_hidden()
    expect(page.locator("#alert")).to_be_empty()


def test_a_user_without_a_role_is_told_the_dashboard_needs_one(
    page: Page, server: Server, seeded: Seeded
) -> None:
    user = f"e2e-plain-{uuid.uuid4().hex[:8]}"
    sign_in_with_token(page, server.token(user))  # no roles
    page.goto("/dashboard")

    expect(page.locator("#alert")).to_have_text(
        f"You are signed in as {user}, but the KPI dashboard needs the analyst role (or admin). "
        "Ask an admin for access, or sign in as another user."
    )
    expect(page.locator("#session-bar")).to_contain_text(f"Signed in as {user} (no role)")
    expect(page.locator("#dashboard")).to_be_hidden()
    expect(page.locator("svg.chart")).to_have_count(0)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_an_expired_session_asks_to_sign_in_again(page: Page, server: Server) -> None:
    sign_in_with_token(page, server.token("e2e-expired", ttl=-timedelta(hours=1)))
    page.goto("/dashboard")

    expect(page.locator("#alert")).to_have_text(
        "Your session has expired. Sign in again to continue."
    )
    expect(page.get_by_label("User id")).to_be_visible()
    expect(page.locator("#dashboard")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('onboardingKpi.token')") is None


def test_a_failed_chart_request_shows_an_error_and_retry_recovers(
    page: Page, seeded: Seeded
) -> None:
    dropped: list[str] = []

    def drop_the_first_series(route: Route) -> None:
        series = route.request.post_data_json["operationName"] == "DashboardKpiEventSeries"
        if series and not dropped:
            dropped.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/graphql", drop_the_first_series)
    sign_in(page, "analyst")

    error = page.locator("#series-error")
    expect(error).to_have_text("Could not reach the server.")
    expect(page.get_by_role("status")).to_contain_text("One panel could not load.")
    expect(page.locator("#funnel-steps .funnel-users").first).to_have_text("6 users")
    page.get_by_role("button", name="Retry the chart").click()

    wait_for_series(page)
    expect(error).to_be_hidden()
    expect(page.get_by_role("button", name="Retry the chart")).to_be_hidden()
    assert sum(bars(page).values()) == len(REACHED)


def test_an_inverted_date_range_is_refused_before_any_request(page: Page, seeded: Seeded) -> None:
    sign_in(page, "analyst")
    wait_for_series(page)
    requests: list[Request] = []
    page.on("request", lambda r: requests.append(r) if r.url.endswith("/graphql") else None)

    to_date = page.get_by_label("To (included)")
    to_date.fill("2020-01-01")

    expect(to_date).to_have_attribute("aria-invalid", "true")
    expect(to_date).to_have_accessible_description(
        "The end date must be on or after the start date."
    )
    assert requests == []
    to_date.fill(str(datetime.now(UTC).date() + timedelta(days=1)))
    expect(to_date).not_to_have_attribute("aria-invalid", "true")
    wait_for_series(page)
    assert [r.post_data_json["operationName"] for r in requests] == [
        "DashboardKpiEventSeries",
        "DashboardOnboardingFunnel",
    ]
