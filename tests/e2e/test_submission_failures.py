"""What the page does when a submission gets no answer, or a typed error, back."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from tests.e2e.conftest import TOKEN_KEY, Server, sign_in_with_token
from tests.e2e.test_onboarding_page import complete_profile, open_signed_in

pytestmark = pytest.mark.e2e

SESSION_EXPIRED = "Your session has expired. Sign in again to continue."


class Mutations:
    """Route handler for /graphql: lets queries through, hands mutations to ``plan``."""

    def __init__(self, *plan: str) -> None:
        self.plan = list(plan)  # per mutation: "drop-after-commit", "hang", "pass", or a body
        self.inputs: list[dict[str, Any]] = []
        self.hung: list[Route] = []

    def __call__(self, route: Route) -> None:
        body = route.request.post_data_json
        if body["operationName"] != "CompleteOnboardingStep":
            route.continue_()
            return
        self.inputs.append(body["variables"]["input"])
        action = self.plan.pop(0) if self.plan else "pass"
        if action == "drop-after-commit":
            route.fetch().dispose()  # the server commits and answers ...
            route.abort()  # ... but the answer never reaches the page
        elif action == "hang":
            self.hung.append(route)  # never answered: the page's timeout fires
        elif action == "pass":
            route.continue_()
        else:
            route.fulfill(json={"data": {"completeOnboardingStep": json.loads(action)}})

    @property
    def keys(self) -> list[str]:
        return [i["idempotencyKey"] for i in self.inputs]


def test_a_response_lost_after_commit_is_retried_with_the_same_key(
    page: Page, server: Server, user: str
) -> None:
    # given a first answer that is dropped after the server committed
    mutations = Mutations("drop-after-commit")
    open_signed_in(page, server, user)
    page.route("**/graphql", mutations)

    complete_profile(page)

    # then the page shows a generic error and offers a retry
    expect(page.get_by_role("alert")).to_have_text(
        "Something went wrong, so step 1 may not have been saved. Retrying is safe."
    )
    retry = page.get_by_role("button", name="Retry")
    expect(retry).to_be_focused()
    assert len(server.completions(user)) == 1  # it did commit

    # when the user retries, the server answers with the stored result
    with page.expect_response("**/graphql") as answer:
        retry.click()
    assert answer.value.json()["data"]["completeOnboardingStep"]["replayed"] is True
    expect(page.get_by_role("status")).to_contain_text("Step 1 completed.")
    expect(page.get_by_role("status")).to_contain_text("KPI recorded")
    expect(retry).to_be_hidden()

    # and one key was used for both requests; nothing was recorded twice
    assert len(mutations.keys) == 2
    assert mutations.keys[0] == mutations.keys[1]
    assert len(server.completions(user)) == 1
    assert len(server.kpi_events(user)) == 1


def test_a_timeout_offers_a_retry_with_the_same_key(page: Page, server: Server, user: str) -> None:
    page.context.add_init_script("window.onboardingKpi = {};")
    mutations = Mutations("hang")
    open_signed_in(page, server, user)
    page.evaluate("window.onboardingKpi.timeoutMs = 300")  # read before every request
    page.route("**/graphql", mutations)

    complete_profile(page)
    expect(page.get_by_role("alert")).to_contain_text("The server did not answer in time")
    page.evaluate("delete window.onboardingKpi.timeoutMs")  # back to the default 10 s
    page.get_by_role("button", name="Retry").click()

    expect(page.get_by_role("status")).to_contain_text("Step 1 completed.")
    assert len(set(mutations.keys)) == 1
    assert len(server.kpi_events(user)) == 1


def test_a_new_attempt_gets_a_new_key(page: Page, server: Server, user: str) -> None:
    # given an attempt that got no answer
    mutations = Mutations("drop-after-commit")
    open_signed_in(page, server, user)
    page.route("**/graphql", mutations)
    complete_profile(page, name="Ada")
    expect(page.get_by_role("button", name="Retry")).to_be_visible()

    # when the user submits the same values again, it is the same attempt: same key
    complete_profile(page, name="Ada")
    expect(page.get_by_role("status")).to_contain_text("Step 1 completed.")
    assert mutations.keys[0] == mutations.keys[1]

    # and the next step's submission is a new attempt with a new key
    page.get_by_label("Workspace name").fill("Analytical Engines")
    page.get_by_role("button", name="Complete step 2").click()
    expect(page.get_by_role("status")).to_contain_text("Step 2 completed.")
    assert len(set(mutations.keys)) == 2


def test_an_expired_session_asks_to_sign_in_again(page: Page, server: Server, user: str) -> None:
    # given a page signed in whose token has expired by the time the step is submitted
    open_signed_in(page, server, user)
    expired = server.token(user, ttl=-timedelta(hours=1))
    page.evaluate("([key, token]) => sessionStorage.setItem(key, token)", [TOKEN_KEY, expired])

    complete_profile(page)

    # then the page says so, offers the sign-in form, and nothing was recorded
    expect(page.get_by_role("alert")).to_have_text(SESSION_EXPIRED)
    expect(page.get_by_label("User id")).to_be_focused()
    expect(page.locator("#steps form:visible")).to_have_count(0)
    assert server.completions(user) == []

    # when the user signs in again, step 1 can be completed
    page.get_by_label("User id").fill(user)
    page.get_by_role("button", name="Sign in").click()
    complete_profile(page)
    expect(page.get_by_role("status")).to_contain_text("Step 1 completed.")
    assert len(server.kpi_events(user)) == 1


def test_a_session_expired_before_the_page_loads(page: Page, server: Server, user: str) -> None:
    sign_in_with_token(page, server.token(user, ttl=-timedelta(hours=1)))
    page.goto("/")

    expect(page.get_by_role("alert")).to_have_text(SESSION_EXPIRED)
    expect(page.get_by_label("User id")).to_be_visible()


PERSISTENCE_ERROR = {
    "__typename": "PersistenceError",
    "message": "The database could not save the submission.",
    "code": "PERSISTENCE_FAILED",
    "retryable": True,
}
REQUEST_IN_PROGRESS = {
    "__typename": "IdempotencyConflictError",
    "message": "The first request with this key is still running.",
    "code": "IDEMPOTENCY_CONFLICT",
    "conflictReason": "REQUEST_IN_PROGRESS",
    "retryable": True,
}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        pytest.param(PERSISTENCE_ERROR, "could not be saved now. Try again later.", id="persist"),
        pytest.param(REQUEST_IN_PROGRESS, "is still being saved. Retry in a moment.", id="busy"),
    ],
)
def test_a_retryable_typed_error_is_retried_with_the_same_key(
    page: Page, server: Server, user: str, answer: dict[str, Any], message: str
) -> None:
    mutations = Mutations(json.dumps(answer))
    open_signed_in(page, server, user)
    page.route("**/graphql", mutations)

    complete_profile(page)
    expect(page.get_by_role("alert")).to_have_text(f"Step 1 {message}")
    page.get_by_role("button", name="Retry").click()

    expect(page.get_by_role("status")).to_contain_text("Step 1 completed.")
    assert len(set(mutations.keys)) == 1
    assert len(server.kpi_events(user)) == 1


def test_a_server_validation_error_is_shown_without_a_retry(
    page: Page, server: Server, user: str
) -> None:
    rejected = {
        "__typename": "ValidationError",
        "message": "The request is invalid: input.metadata.",
        "code": "VALIDATION_FAILED",
        "fieldErrors": [{"path": ["input", "metadata"], "message": "must be a JSON object"}],
    }
    open_signed_in(page, server, user)
    page.route("**/graphql", Mutations(json.dumps(rejected)))

    complete_profile(page)

    expected = "The server rejected this step (metadata: must be a JSON object)."
    expect(page.get_by_role("alert")).to_have_text(expected)
    expect(page.locator("#step-1-form-error")).to_have_text(expected)
    expect(page.get_by_role("button", name="Retry")).to_be_hidden()


def test_the_servers_field_errors_land_next_to_their_controls(
    page: Page, server: Server, user: str
) -> None:
    # given a client whose submission the real server refuses field by field: a name past
    # the limit the page checked, and a key step 1 does not declare
    def tamper(route: Route) -> None:
        body = route.request.post_data_json
        if body["operationName"] == "CompleteOnboardingStep":
            body["variables"]["input"]["metadata"] |= {"displayName": "x" * 65, "plan": "pro"}
        route.continue_(post_data=json.dumps(body))

    open_signed_in(page, server, user)
    page.route("**/graphql", tamper)

    complete_profile(page)

    # then the step's own field shows its message and gets focus; the unknown key, which has
    # no control, is in the text; nothing is retried or recorded
    name = page.get_by_label("Display name")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(name).to_have_accessible_description(
        "Display name must be at most 64 characters. Up to 64 characters."
    )
    expect(name).to_be_focused()
    expect(page.get_by_label("Your role")).not_to_have_attribute("aria-invalid", "true")
    expected = (
        "The server rejected this step (plan: 'plan' is not a field of step 1 (profile); "
        "its fields are: displayName, role.)."
    )
    expect(page.locator("#step-1-form-error")).to_have_text(expected)
    expect(page.get_by_role("alert")).to_have_text(expected)
    expect(page.get_by_role("button", name="Retry")).to_be_hidden()
    assert server.completions(user) == []
