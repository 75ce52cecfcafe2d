"""The onboarding page on a flow of our own (tests/flows/team_trial.toml), in a real browser.

Nothing in the page knows this flow: its steps, forms and rules all come from
``onboardingFlow`` of a server started with ``ONBOARDING_KPI_FLOW_FILE``. What the page
says about invalid values is compared with what that server answers for the same
metadata, sent as any client would with the page's own CompleteOnboardingStep document.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, Request, expect

from tests.e2e.conftest import ARTIFACTS, Server, web_document
from tests.e2e.test_onboarding_page import mutations, open_signed_in

pytestmark = pytest.mark.e2e

COMPLETE_STEP = web_document("CompleteOnboardingStep")
SHOWN_ERRORS = """form => Object.fromEntries(
    [...form.querySelectorAll("[aria-invalid=true]")].map(
        (control) => [
            control.dataset.field, document.getElementById(`${control.id}-error`).textContent
        ]
    )
)"""


@pytest.fixture(scope="module")
def server(team_trial_server: Server) -> Server:
    """Overrides the package's default-flow server: every page here opens the team trial."""
    return team_trial_server


def shown_errors(page: Page, step: int) -> dict[str, str]:
    """The field errors the page shows in a step's form: {metadata key: message}."""
    errors: dict[str, str] = page.locator(f"#step-{step}-form").evaluate(SHOWN_ERRORS)
    return errors


def server_answer(server: Server, user: str, step: int, metadata: dict[str, Any]) -> dict[str, str]:
    """What the server answers for this metadata: {metadata key: message} of its fieldErrors."""
    variables = {
        "input": {
            "step": step,
            "idempotencyKey": str(uuid.uuid4()),
            "source": "web",
            "metadata": metadata,
        }
    }
    result = server.graphql(COMPLETE_STEP, variables, user=user)["completeOnboardingStep"]
    assert result["__typename"] == "ValidationError", result
    assert all(e["path"][:2] == ["input", "metadata"] for e in result["fieldErrors"])
    return {e["path"][-1]: e["message"] for e in result["fieldErrors"]}


def submit(page: Page, step: int) -> None:
    page.get_by_role("button", name=f"Complete step {step}").click()


def test_the_flows_steps_render_with_their_fields(page: Page, server: Server, user: str) -> None:
    open_signed_in(page, server, user)

    # every step of the file, in order, with its description and KPI
    titles = page.locator("#steps h2")
    expect(titles).to_have_text(
        [
            "Step 1: Create your account",
            "Step 2: Pick a plan",
            "Step 3: Connect a data source",
            "Step 4: Set a monthly budget",
            "Step 5: Take the tour",
            "Step 6: Launch your first dashboard",
        ]
    )
    step_1 = page.locator("#step-1")
    expect(step_1).to_contain_text("Who you are and how big your team is.")
    expect(page.locator("#step-1-form")).to_have_accessible_description(
        "Who you are and how big your team is."
    )
    expect(step_1).to_contain_text("Counts toward the KPI trial.account_created")
    expect(page.locator("#step-2 .kpi")).to_have_count(0)
    expect(page.locator("#progress")).to_have_text("0 of 6 steps completed.")

    # step 1 (the one offered): text with its length hint, email, integer with bounds
    full_name = page.get_by_label("Full name")
    expect(full_name).to_have_attribute("type", "text")
    expect(full_name).to_have_attribute("aria-required", "true")
    expect(full_name).to_have_accessible_description("From 2 to 40 characters.")
    expect(page.get_by_label("Work email")).to_have_attribute("type", "email")
    team_size = page.get_by_label("Team size")
    for name, value in {"type": "number", "step": "1", "min": "1", "max": "500"}.items():
        expect(team_size).to_have_attribute(name, value)
    expect(team_size).to_have_accessible_description("From 1 to 500.")

    # the later steps' forms are built too, hidden until their turn
    forms = {n: page.locator(f"#step-{n}-form") for n in range(1, 7)}
    for n in range(2, 7):
        expect(forms[n]).to_be_hidden()
    expect(forms[2].locator("select[data-field=plan] option")).to_have_text(
        ["Choose…", "Starter", "Pro"]
    )
    expect(forms[2].locator("input[data-field=annualBilling]")).to_have_attribute(
        "type", "checkbox"
    )
    expect(forms[3].locator("select[data-field=connector] option")).to_have_text(
        ["Choose…", "PostgreSQL", "BigQuery", "CSV upload"]
    )
    budget = forms[4].locator("input[data-field=monthlyBudget]")
    for name, value in {"type": "number", "step": "any", "min": "0.5", "max": "10000"}.items():
        expect(budget).to_have_attribute(name, value)
    expect(forms[4].locator("#step-4-field-note-hint")).to_have_text(
        "Optional. Up to 120 characters."
    )
    expect(forms[5].locator("input, select")).to_have_count(0)  # the tour has no fields


def test_invalid_values_get_the_servers_messages_then_step_1_records_one_kpi_event(
    page: Page, server: Server, user: str
) -> None:
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    open_signed_in(page, server, user)

    # when step 1 is submitted with a name too short, an email without a dot and no team
    page.get_by_label("Full name").fill(" A ")
    page.get_by_label("Work email").fill("ada@example")
    page.get_by_label("Team size").fill("0")
    submit(page, 1)

    # then each field shows what the server answers for the same metadata, focus is on the
    # first, and nothing was sent
    expect(page.get_by_label("Full name")).to_be_focused()
    shown = shown_errors(page, 1)
    sent_by_hand = {"fullName": "A", "workEmail": "ada@example", "teamSize": 0}
    assert shown == server_answer(server, user, 1, sent_by_hand)
    assert shown == {
        "fullName": "Full name must be at least 2 characters.",
        "workEmail": "Work email must be an email address like name@example.com.",
        "teamSize": "Team size must be at least 1.",
    }
    expect(page.get_by_label("Team size")).to_have_accessible_description(
        "Team size must be at least 1. From 1 to 500."
    )
    assert mutations(requests) == []

    # when the team size is text a number input cannot read ("1e"), typed by a user
    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label("Work email").fill("ada@example.com")
    page.get_by_label("Team size").fill("")
    page.get_by_label("Team size").press_sequentially("1e")
    submit(page, 1)

    # then it is "not a whole number", as the server says of text, not "required"
    expect(page.get_by_label("Team size")).to_be_focused()
    shown = shown_errors(page, 1)
    assert shown == {"teamSize": "Team size must be a whole number."}
    valid = {"fullName": "Ada Lovelace", "workEmail": "ada@example.com"}
    assert shown == server_answer(server, user, 1, {**valid, "teamSize": "1e"})
    assert mutations(requests) == []

    # when the values are valid, step 1 completes
    page.get_by_label("Team size").fill("12")
    submit(page, 1)
    status = page.get_by_role("status")
    expect(status).to_contain_text("Step 1 completed.")
    expect(status).to_contain_text("KPI recorded: trial.account_created")
    expect(page.get_by_label("Plan", exact=True)).to_be_focused()
    expect(page.locator("#progress")).to_have_text("1 of 6 steps completed.")

    # and one submission was sent, and exactly one KPI event exists, with that metadata
    assert [m["metadata"] for m in mutations(requests)] == [{**valid, "teamSize": 12}]
    events = server.kpi_events(user)
    assert len(events) == 1
    assert (events[0]["kpi_id"], events[0]["step"]) == ("trial.account_created", 1)
    assert json.loads(events[0]["metadata"]) == {**valid, "teamSize": 12}
    assert [c["step"] for c in server.completions(user)] == [1]


def test_every_control_type_completes_its_step(page: Page, server: Server, user: str) -> None:
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    open_signed_in(page, server, user)
    page.get_by_label("Full name").fill("Grace Hopper")
    page.get_by_label("Work email").fill("grace@navy.example.org")
    page.get_by_label("Team size").fill("500")
    submit(page, 1)

    # a select left at "Choose…", then chosen; a checkbox left unchecked sends false
    expect(page.get_by_label("Plan", exact=True)).to_be_focused()
    submit(page, 2)
    assert shown_errors(page, 2) == {"plan": "Plan: choose one of the options."}
    page.get_by_label("Plan", exact=True).select_option("pro")
    submit(page, 2)
    expect(page.get_by_role("status")).to_contain_text("Step 2 completed.")

    # a choice on a step that would keep extra keys
    page.get_by_label("Connector").select_option("csv")
    submit(page, 3)
    expect(page.get_by_role("status")).to_contain_text("KPI recorded: trial.data_connected")

    # a number below a fractional bound, then within it; an optional note left blank
    page.get_by_label("Monthly budget", exact=True).fill("0.4")
    page.get_by_label("Note").fill("   ")
    submit(page, 4)
    shown = shown_errors(page, 4)
    assert shown == {"monthlyBudget": "Monthly budget must be at least 0.5."}
    assert shown == server_answer(server, user, 4, {"monthlyBudget": 0.4})
    page.get_by_label("Monthly budget", exact=True).fill("99.5")
    submit(page, 4)
    expect(page.get_by_role("status")).to_contain_text("Step 4 completed.")

    # a step without fields, then the last one
    expect(page.get_by_role("button", name="Complete step 5")).to_be_focused()
    submit(page, 5)
    expect(page.get_by_role("status")).to_contain_text("Step 5 completed.")
    page.get_by_label("Dashboard name").fill("Trial KPIs")
    submit(page, 6)
    expect(page.locator("#progress")).to_have_text("Onboarding complete: all 6 steps done.")

    # the server received exactly the typed metadata, and counted the three KPI steps
    assert [(m["step"], m["metadata"]) for m in mutations(requests)] == [
        (1, {"fullName": "Grace Hopper", "workEmail": "grace@navy.example.org", "teamSize": 500}),
        (2, {"plan": "pro", "annualBilling": False}),
        (3, {"connector": "csv"}),
        (4, {"monthlyBudget": 99.5}),
        (5, {}),
        (6, {"dashboardName": "Trial KPIs"}),
    ]
    assert sorted(e["kpi_id"] for e in server.kpi_events(user)) == [
        "trial.account_created",
        "trial.activated",
        "trial.data_connected",
    ]


def test_a_checked_checkbox_sends_true(page: Page, server: Server, user: str) -> None:
    open_signed_in(page, server, user)
    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label("Work email").fill("ada@example.com")
    page.get_by_label("Team size").fill("3")
    submit(page, 1)
    expect(page.get_by_label("Plan", exact=True)).to_be_focused()

    page.get_by_label("Plan", exact=True).select_option("starter")
    page.get_by_label("Annual billing").check()
    ARTIFACTS.mkdir(exist_ok=True)  # the generated form of a custom flow, for people to look at
    page.screenshot(path=ARTIFACTS / "onboarding-team-trial-step-2.png", full_page=True)
    submit(page, 2)

    expect(page.get_by_role("status")).to_contain_text("Step 2 completed.")
    metadata = [json.loads(c["metadata"]) for c in server.completions(user)]
    assert metadata[1] == {"plan": "starter", "annualBilling": True}
