"""The page's validator (web/onboarding/validator.js) and the server's rules agree.

Each input is checked in the browser by ``validateCompleteStepInput`` and on the server side
by ``app.services.onboarding.parse_complete_step``, fed exactly what the browser would send
(``JSON.stringify`` of the input, parsed by Python). Both must report the same fields with
the same messages.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from app.errors import RequestValidationError
from app.services.onboarding import IDEMPOTENCY_KEY_PATTERN, parse_complete_step
from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e

VALIDATOR = "/static/onboarding/validator.js"
KEY = "6f1c2a9e-2b1d-4a8e-9c55-0d9e4b7a1c33"
PAD = "pad"


def server_size(metadata: dict[str, Any]) -> int:
    """Bytes of metadata as the server measures it."""
    return len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())


def sized(size: int, **values: Any) -> dict[str, Any]:
    """``values`` plus an ASCII padding string that makes the server measure ``size`` bytes."""
    metadata = {**values, PAD: ""}
    metadata[PAD] = "x" * (size - server_size(metadata))
    assert server_size(metadata) == size
    return metadata


def case(id: str, **overrides: Any) -> Any:
    fields: dict[str, Any] = {"step": 1, "idempotencyKey": KEY, "source": "web", "metadata": None}
    return pytest.param({**fields, **overrides}, id=id)


CASES = [
    case("valid"),
    case("valid-with-metadata", metadata={"displayName": "Ada", "role": "engineer"}),
    # step
    *(case(f"step-{n}", step=n) for n in (-1, 0, 1, 10_000, 10_001)),
    # idempotencyKey
    case("key-15", idempotencyKey="a" * 15),
    case("key-16", idempotencyKey="a" * 16),
    case("key-255", idempotencyKey="a" * 255),
    case("key-256", idempotencyKey="a" * 256),
    case("key-every-allowed-char", idempotencyKey="AZaz09-_:.AZaz09"),
    case("key-space", idempotencyKey="a" * 8 + " " + "a" * 8),
    case("key-slash", idempotencyKey="a" * 16 + "/"),
    case("key-non-ascii", idempotencyKey="é" * 16),
    case("key-trailing-newline", idempotencyKey="a" * 16 + "\n"),
    case("key-empty", idempotencyKey=""),
    # source
    case("source-omitted", source=None),
    case("source-empty", source=""),
    case("source-32", source="a" * 32),
    case("source-33", source="a" * 33),
    case("source-allowed-chars", source="ios-app_2"),
    case("source-uppercase", source="Web"),
    case("source-non-ascii", source="wéb"),
    # metadata: shape
    case("metadata-empty", metadata={}),
    case("metadata-array", metadata=[1, 2]),
    case("metadata-string", metadata="plan=pro"),
    case("metadata-number", metadata=5),
    case("metadata-32-keys", metadata={f"k{i}": i for i in range(32)}),
    case("metadata-33-keys", metadata={f"k{i}": i for i in range(33)}),
    case("metadata-empty-key", metadata={"a": 1, "": 2}),
    case("metadata-nested-object", metadata={"a": 1, "b": {"c": 1}}),
    case("metadata-nested-array", metadata={"b": [1]}),
    case("metadata-integer-like-keys", metadata={"b": "x", "2": [], "1": {}}),
    case("metadata-scalars", metadata={"s": "x", "i": -3, "f": 1.5, "t": True, "n": None}),
    case("metadata-nan", metadata={"a": math.nan}),
    case("metadata-infinity", metadata={"a": -math.inf}),
    # metadata: size, counted in UTF-8 bytes of compact JSON
    case("size-4096", metadata=sized(4096)),
    case("size-4097", metadata=sized(4097)),
    case("size-4096-two-byte-chars", metadata=sized(4096, name="é" * 100)),
    case("size-4097-two-byte-chars", metadata=sized(4097, name="é" * 100)),
    case("size-4096-emoji", metadata=sized(4096, name="🚀" * 50)),
    case("size-4097-emoji", metadata=sized(4097, name="🚀" * 50)),
    case("size-4096-escapes", metadata=sized(4096, q='"\\\n\t\u0001\u2028' * 20)),
    case("size-4097-escapes", metadata=sized(4097, q='"\\\n\t\u0001\u2028' * 20)),
    case("size-4096-small-floats", metadata=sized(4096, a=1e-7, b=0.00001, c=-1.5e-10)),
    case("size-4097-small-floats", metadata=sized(4097, a=1e-7, b=0.00001, c=-1.5e-10)),
    case("size-4096-big-floats", metadata=sized(4096, a=1e21, b=1.5e300, c=123.456)),
    case("size-4097-big-floats", metadata=sized(4097, a=1e21, b=1.5e300, c=123.456)),
    case("size-4096-big-ints", metadata=sized(4096, a=10**15, b=-(2**53))),
    case("size-4097-big-ints", metadata=sized(4097, a=10**15, b=-(2**53))),
    case("size-huge", metadata={"k": "x" * 10_000}),
    case("metadata-nul-value", metadata={"k": "a\x00b"}),
    case("metadata-nul-key", metadata={"a\x00": 1}),
    # several problems at once are all reported, in the same order
    case("everything-wrong", step=0, idempotencyKey="short", source="WEB", metadata=[]),
]


def server_errors(sent: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        parse_complete_step(
            step=sent["step"],
            idempotency_key=sent["idempotencyKey"],
            source=sent["source"],
            metadata=sent["metadata"],
        )
    except RequestValidationError as exc:
        return [{"path": list(e.path), "message": e.message} for e in exc.field_errors]
    return []


def has_non_finite(value: Any) -> bool:
    if isinstance(value, dict):
        return any(has_non_finite(v) for v in value.values())
    return isinstance(value, float) and not math.isfinite(value)


@pytest.fixture(scope="module")
def validator_page(browser: Browser, server: Server) -> Iterator[Page]:
    """One page for the whole module: these tests only call the validator module."""
    context = browser.new_context(base_url=server.base_url)
    page = context.new_page()
    page.goto("/")
    yield page
    context.close()


def call(page: Page, function: str, *args: Any, module: str = VALIDATOR) -> Any:
    """Call a function exported by a module of the page, in the browser."""
    return page.evaluate(
        "async ([module, name, args]) => (await import(module))[name](...args)",
        [module, function, list(args)],
    )


@pytest.mark.parametrize("given", CASES)
def test_client_and_server_agree(validator_page: Page, given: dict[str, Any]) -> None:
    client = call(validator_page, "validateCompleteStepInput", given)

    # The server sees what the browser sends; JSON cannot carry NaN or Infinity, so for
    # those the server's rule is checked on the value itself (as a Python client sends it).
    wire = validator_page.evaluate("(input) => JSON.stringify(input)", given)
    sent = given if has_non_finite(given["metadata"]) else json.loads(wire)
    assert client == server_errors(sent)


def test_lone_surrogates_are_refused_by_client_and_server(validator_page: Page) -> None:
    errors = validator_page.evaluate(
        """async ([module, key]) => {
            const { validateCompleteStepInput: check } = await import(module);
            const input = { step: 1, idempotencyKey: key, source: "web" };
            return [
                check({ ...input, metadata: { k: "\\ud800" } }),
                check({ ...input, metadata: { "\\udfff": 1 } }),
                check({ ...input, metadata: { k: "\\ud83d\\ude80" } }),
            ];
        }""",
        [VALIDATOR, KEY],
    )
    lone_surrogate = {
        "path": ["input", "metadata"],
        "message": "value of 'k' must be valid Unicode text",
    }
    assert errors[0] == [lone_surrogate]
    assert errors[1][0]["path"] == ["input", "metadata"]
    assert errors[2] == []  # a surrogate pair is fine
    base = {"step": 1, "idempotencyKey": KEY, "source": "web"}
    assert server_errors({**base, "metadata": {"k": "\ud800"}}) == [lone_surrogate]
    assert server_errors({**base, "metadata": {"\udfff": 1}})[0]["path"] == ["input", "metadata"]
    assert server_errors({**base, "metadata": {"k": "\U0001f680"}}) == []


# --- the step forms -------------------------------------------------------------------------

LONGEST_VALID = {
    "profile": {"displayName": "é" * 64, "role": "product"},
    "workspace": {"workspaceName": "🚀" * 64},
    "invite": {"teammateEmail": "a" * 64 + "@" + ("b" * 60 + ".") * 3 + "c" * 6},  # 254
    "first_project": {"projectName": "P" * 80},
}


@pytest.mark.parametrize(("key", "values"), LONGEST_VALID.items())
def test_the_longest_valid_form_values_make_metadata_the_server_accepts(
    validator_page: Page, key: str, values: dict[str, str]
) -> None:
    result = call(validator_page, "validateStepFields", key, values)

    assert result["errors"] == []
    assert result["metadata"] == values
    valid = {"step": 1, "idempotencyKey": KEY, "source": "web"}
    assert server_errors({**valid, "metadata": result["metadata"]}) == []


def field_case(key: str, values: dict[str, str], **expected: str) -> Any:
    return pytest.param(key, values, expected, id=f"{key}-{'-'.join(expected) or 'valid'}")


NOT_AN_EMAIL = "Enter an email address like name@example.com."
FIELD_CASES = [
    field_case("profile", {"displayName": "Ada", "role": "engineer"}),
    field_case(
        "profile",
        {"displayName": "  ", "role": "x"},
        displayName="Enter your display name.",
        role="Choose one of the listed options.",
    ),
    field_case(
        "profile",
        {"displayName": "x" * 65, "role": "other"},
        displayName="Use at most 64 characters.",
    ),
    field_case(
        "profile",
        {"displayName": "a\u0007b", "role": "other"},
        displayName="Remove the special characters.",
    ),
    field_case("profile", {"displayName": "Ada"}, role="Choose your role."),
    field_case(
        "workspace", {"workspaceName": ""}, workspaceName="Enter a name for your workspace."
    ),
    field_case("invite", {"teammateEmail": " grace.hopper+ob@navy.example.org "}),
    *(
        field_case("invite", {"teammateEmail": bad}, teammateEmail=NOT_AN_EMAIL)
        for bad in (
            "grace",
            "grace@",
            "@example.com",
            "grace@example",
            "gr ace@example.com",
            "grace@-example.com",
            "grace@example..com",
            "grace@exa_mple.com",
        )
    ),
    field_case("first_project", {"projectName": "Apollo"}),
    field_case("unknown_step", {}),
]


@pytest.mark.parametrize(("key", "values", "expected"), FIELD_CASES)
def test_form_field_rules(
    validator_page: Page, key: str, values: dict[str, str], expected: dict[str, str]
) -> None:
    errors = call(validator_page, "validateStepFields", key, values)["errors"]

    assert {e["field"]: e["message"] for e in errors} == expected


def test_generated_idempotency_keys_are_accepted_by_the_server(validator_page: Page) -> None:
    keys = validator_page.evaluate(
        """async () => {
            const { newKey } = await import("/static/onboarding/flow.js");
            const secure = newKey();
            Object.defineProperty(crypto, "randomUUID", { value: undefined, configurable: true });
            return [secure, newKey(), newKey()];  // the fallback for insecure contexts
        }"""
    )
    assert len(set(keys)) == 3
    for key in keys:
        assert IDEMPOTENCY_KEY_PATTERN.fullmatch(key)
        assert uuid.UUID(key).version == 4
        assert re.fullmatch(r"[0-9a-f-]{36}", key)
