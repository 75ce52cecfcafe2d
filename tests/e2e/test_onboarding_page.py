"""The onboarding page in a real browser: the seed's first and last steps, end to end."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import Page, Request, Route, expect

from app.flow_file import DEFAULT_FLOW
from tests.e2e.conftest import ARTIFACTS, Server, sign_in_with_token
from tests.flows import valid_metadata

pytestmark = pytest.mark.e2e


def open_signed_in(page: Page, server: Server, user: str) -> None:
    sign_in_with_token(page, server.token(user))
    page.goto("/")
    expect(page.get_by_text(f"Signed in as {user}")).to_be_visible()


def complete_profile(page: Page, *, name: str = "Ada Lovelace", role: str = "engineer") -> None:
    page.get_by_label("Display name").fill(name)
    page.get_by_label("Your role").select_option(role)
    page.get_by_role("button", name="Complete step 1").click()


def mutations(requests: list[Request]) -> list[dict[str, Any]]:
    """The completeOnboardingStep inputs the page sent, in order."""
    bodies = [r.post_data_json for r in requests if r.url.endswith("/graphql")]
    return [
        b["variables"]["input"] for b in bodies if b["operationName"] == "CompleteOnboardingStep"
    ]


def test_completing_step_1_by_keyboard_records_exactly_one_kpi_event(
    page: Page, server: Server, user: str
) -> None:
    # given the development sign-in form, used with the keyboard only
    page.goto("/")
    expect(page.get_by_label("User id")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_label("User id")).to_be_focused()
    page.keyboard.type(user)
    page.keyboard.press("Enter")
    expect(page.get_by_text(f"Signed in as {user}")).to_be_visible()
    step_1 = page.locator("#step-1")
    expect(step_1).to_contain_text("Counts toward the KPI onboarding.step_1_completed")

    # when step 1 is filled in and submitted with the keyboard
    expect(page.get_by_label("Display name")).to_be_focused()
    page.keyboard.type("Ada Lovelace")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Your role")).to_be_focused()
    page.keyboard.press("E")  # selects "Engineer"
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Complete step 1")).to_be_focused()
    page.keyboard.press("Enter")

    # then the page confirms it and moves on to step 2
    status = page.get_by_role("status")
    expect(status).to_contain_text("Step 1 completed.")
    expect(status).to_contain_text("KPI recorded: onboarding.step_1_completed")
    expect(step_1).to_contain_text("Completed")
    expect(page.get_by_label("Workspace name")).to_be_focused()
    expect(page.locator("#progress")).to_have_text("1 of 4 steps completed.")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "onboarding-step-1-completed.png", full_page=True)

    # and the database holds exactly one KPI event, with the right id, user, step and source
    events = server.kpi_events(user)
    assert len(events) == 1
    event = events[0]
    assert event["kpi_id"] == "onboarding.step_1_completed"
    assert (event["user_id"], event["step"], event["source"]) == (user, 1, "web")
    assert json.loads(event["metadata"]) == {"displayName": "Ada Lovelace", "role": "engineer"}
    assert event["occurred_at"]
    assert [c["step"] for c in server.completions(user)] == [1]


def test_invalid_input_is_blocked_before_any_request(page: Page, server: Server, user: str) -> None:
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    open_signed_in(page, server, user)

    # when step 1 is submitted with a too-long name and no role
    complete_profile(page, name="x" * 65, role="")

    # then both fields explain the problem, focus is on the first, and nothing was sent
    name, role = page.get_by_label("Display name"), page.get_by_label("Your role")
    expect(name).to_have_attribute("aria-invalid", "true")
    # (the field's error first, then its hint)
    expect(name).to_have_accessible_description(
        "Display name must be at most 64 characters. Up to 64 characters."
    )
    expect(role).to_have_attribute("aria-invalid", "true")
    expect(role).to_have_accessible_description("Your role: choose one of the options.")
    expect(name).to_be_focused()
    assert mutations(requests) == []
    assert server.kpi_events(user) == []

    # when the fields are corrected, the one submission that follows is the valid one
    complete_profile(page, name="Ada", role="founder")
    expect(page.get_by_role("status")).to_contain_text("Step 1 completed.")
    expect(name).not_to_have_attribute("aria-invalid", "true")
    expect(name).to_have_accessible_description("Up to 64 characters.")
    sent = mutations(requests)
    assert len(sent) == 1
    assert sent[0]["metadata"] == {"displayName": "Ada", "role": "founder"}
    assert len(server.kpi_events(user)) == 1


def test_only_the_next_step_is_offered(page: Page, server: Server, user: str) -> None:
    open_signed_in(page, server, user)

    expect(page.locator("#steps form:visible")).to_have_count(1)
    expect(page.locator("#step-1 form")).to_be_visible()
    for step in (2, 3, 4):
        expect(page.locator(f"#step-{step}")).to_contain_text("Locked: complete step 1 first")


def test_an_out_of_order_submission_shows_the_not_eligible_message(
    page: Page, server: Server, user: str
) -> None:
    # given a client that sends step 3 (with metadata step 3 accepts) although step 1 is not done
    def send_step_3(route: Route) -> None:
        body = route.request.post_data_json
        if body["operationName"] == "CompleteOnboardingStep":
            body["variables"]["input"] |= {"step": 3, "metadata": valid_metadata(DEFAULT_FLOW, 3)}
        route.continue_(post_data=json.dumps(body))

    open_signed_in(page, server, user)
    page.route("**/graphql", send_step_3)

    complete_profile(page)

    expect(page.get_by_role("alert")).to_have_text(
        "Step 3 is not available yet: complete earlier steps first."
    )
    expect(page.locator("#step-1 form")).to_be_visible()
    assert server.completions(user) == []
    assert server.kpi_events(user) == []


def test_a_stale_tab_learns_the_step_is_already_completed(
    page: Page, server: Server, user: str
) -> None:
    # given two tabs of the same user, both offering step 1
    open_signed_in(page, server, user)
    stale = page.context.new_page()
    stale.goto("/")
    expect(stale.locator("#step-1 form")).to_be_visible()

    # when the first tab completes step 1 and the stale one submits it again
    complete_profile(page)
    expect(page.get_by_role("status")).to_contain_text("Step 1 completed.")
    complete_profile(stale, name="Someone else")

    # then the stale tab says so, catches up, and nothing was recorded twice
    expect(stale.get_by_role("alert")).to_have_text("Step 1 is already completed.")
    expect(stale.locator("#step-2 form")).to_be_visible()
    assert len(server.completions(user)) == 1
    assert len(server.kpi_events(user)) == 1


def test_the_host_application_provides_the_token(page: Page, server: Server, user: str) -> None:
    token = server.token(user)
    page.context.add_init_script(
        f"window.onboardingKpi = {{ getToken: async () => {json.dumps(token)} }};"
    )
    page.goto("/")

    expect(page.get_by_text(f"Signed in as {user}")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    complete_profile(page)
    expect(page.get_by_role("status")).to_contain_text("Step 1 completed.")
    assert len(server.kpi_events(user)) == 1
