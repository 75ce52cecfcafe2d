"""Field names are the flow's to choose: names a form element already has still work.

A form exposes each control's ``name`` (and ``id``) as a property, so a field called
``length`` or ``addEventListener`` would shadow the form's own; and an id built from the
step and a name like ``title`` would collide with the step's heading. The page names its
controls so that neither can happen, which this flow proves in a real browser.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Server, _serve
from tests.e2e.test_custom_flow import shown_errors, submit
from tests.e2e.test_onboarding_page import open_signed_in

pytestmark = pytest.mark.e2e

FLOW = """
[[kpis]]
id = "names.done"
name = "Names done"
description = "A user got through a form of awkward names."
kind = "LEADING"

[[steps]]
key = "names"
title = "Awkward names"
kpi = "names.done"

  [[steps.fields]]
  name = "length"
  label = "Length"
  type = "string"
  required = true

  [[steps.fields]]
  name = "title"
  label = "Title"
  type = "string"
  required = true
  max_length = 5

  [[steps.fields]]
  name = "addEventListener"
  label = "Listen"
  type = "boolean"

  [[steps.fields]]
  name = "submit"
  label = "Submit"
  type = "choice"
  choices = [{ value = "yes", label = "Yes" }]

  [[steps.fields]]
  name = "state"
  label = "State"
  type = "integer"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("e2e-field-names")
    flow_file = data_dir / "flow.toml"
    flow_file.write_text(FLOW)
    with _serve(data_dir, flow_file=str(flow_file)) as running:
        yield running


def test_fields_named_like_form_properties_render_validate_and_complete(
    page: Page, server: Server, user: str
) -> None:
    open_signed_in(page, server, user)
    expect(page.locator("#step-1-title")).to_have_text("Step 1: Awkward names")

    # when the form is sent with a title too long and no length
    page.get_by_label("Title").fill("Doctor")
    submit(page, 1)

    # then each error sits on its own field, and focus is on the first
    expect(page.get_by_label("Length")).to_be_focused()
    assert shown_errors(page, 1) == {
        "length": "Length is required.",
        "title": "Title must be at most 5 characters.",
    }

    # when it is fixed, every control's value is sent under its field's name
    page.get_by_label("Length").fill("42 m")
    page.get_by_label("Title").fill("Dr")
    page.get_by_label("Listen").check()
    page.get_by_label("Submit").select_option("yes")
    page.get_by_label("State").fill("7")
    submit(page, 1)

    expect(page.get_by_role("status")).to_contain_text("KPI recorded: names.done")
    [event] = server.kpi_events(user)
    assert json.loads(event["metadata"]) == {
        "length": "42 m",
        "title": "Dr",
        "addEventListener": True,
        "submit": "yes",
        "state": 7,
    }
