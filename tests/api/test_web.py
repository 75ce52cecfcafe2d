"""The reference frontend as files and routes: served, signed in, and true to the contract."""

from __future__ import annotations

import importlib.util
import json
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from graphql import GraphQLInterfaceType, GraphQLUnionType, OperationDefinitionNode, parse, validate
from graphql import build_schema as build_schema_from_sdl
from starlette.applications import Starlette

from app.config import Settings
from app.main import create_app
from tests.conftest import Api

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
SCHEMA_SDL = (ROOT / "schema.graphql").read_text()
DOCUMENTS = sorted(WEB.rglob("*.graphql"))

MY_PROGRESS = "query { myOnboardingProgress { completedSteps nextStep } }"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def production_http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        env="production",
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'prod.sqlite3'}",
        jwt_secret=secrets.token_hex(20),  # 40 random characters
        log_format="json",
    )
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


# --- signing in -----------------------------------------------------------------------------


async def test_production_has_no_development_sign_in(production_http: httpx.AsyncClient) -> None:
    post = await production_http.post("/dev/sign-in", json={"userId": "eve", "roles": ["admin"]})
    get = await production_http.get("/dev/sign-in")
    page = await production_http.get("/")

    assert post.status_code in {404, 405}
    assert "token" not in post.text
    assert get.status_code == 404  # the page reads 404 as "sign in through the host"
    assert page.status_code == 200


async def test_development_sign_in_mints_a_token_the_api_accepts(
    http: httpx.AsyncClient, api: Api
) -> None:
    probe = await http.get("/dev/sign-in")
    response = await http.post("/dev/sign-in", json={"userId": "alice@example.com", "roles": []})

    assert probe.status_code == 405  # the page reads 405 as "development sign-in available"
    assert response.status_code == 200
    token = response.json()["token"]
    body = await api.execute(MY_PROGRESS, headers={"Authorization": f"Bearer {token}"})
    assert body["data"]["myOnboardingProgress"] == {"completedSteps": [], "nextStep": 1}


@pytest.mark.parametrize("body", [{"userId": ""}, {"userId": "a b"}, {"roles": []}, []])
async def test_development_sign_in_rejects_a_bad_user_id(
    http: httpx.AsyncClient, body: object
) -> None:
    response = await http.post("/dev/sign-in", json=body)

    assert response.status_code == 400
    assert "userId" in response.json()["error"]


# --- the page's files -------------------------------------------------------------------------


async def test_the_page_and_its_modules_are_served(http: httpx.AsyncClient) -> None:
    page = await http.get("/")
    assert '<script type="module" src="/static/onboarding/main.js">' in page.text

    for module in sorted((WEB / "onboarding").glob("*.js")):
        response = await http.get(f"/static/onboarding/{module.name}")
        assert response.status_code == 200
        assert "javascript" in response.headers["content-type"]
        for imported in re.findall(r'^import .* from "\./([\w.]+)";$', module.read_text(), re.M):
            assert (module.parent / imported).is_file(), f"{module.name} imports {imported}"


# --- the typed contract (api-q7v1) ------------------------------------------------------------


def test_the_page_loads_exactly_the_shipped_documents() -> None:
    contract = (WEB / "onboarding" / "contract.js").read_text()
    listed = re.search(r"const OPERATIONS = \[(.*?)\];", contract, re.S)
    assert listed
    names = set(re.findall(r'"(\w+)"', listed.group(1)))
    assert names == {p.stem for p in (WEB / "graphql").glob("*.graphql")}


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(WEB)))
def test_every_graphql_document_is_valid_against_the_schema(path: Path) -> None:
    document = parse(path.read_text())

    assert validate(build_schema_from_sdl(SCHEMA_SDL), document) == []
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    assert [op.name.value for op in operations if op.name] == [path.stem]


def test_there_are_graphql_documents_to_check() -> None:
    assert len(DOCUMENTS) >= 3


def test_possible_types_json_matches_the_schema() -> None:
    shipped = (WEB / "graphql" / "possibleTypes.json").read_text()
    script = load_script("possible_types")

    assert shipped == script.render(SCHEMA_SDL), "run scripts/possible_types.py"
    # and independently of the script: every abstract type, with all its object types
    schema = build_schema_from_sdl(SCHEMA_SDL)
    expected = {
        name: {t.name for t in schema.get_possible_types(gtype)}
        for name, gtype in schema.type_map.items()
        if isinstance(gtype, GraphQLUnionType | GraphQLInterfaceType)
    }
    assert {k: set(v) for k, v in json.loads(shipped).items()} == expected
    assert "CompleteOnboardingStepSuccess" in expected["CompleteOnboardingStepResult"]
    assert "StepNotEligibleError" in expected["UserError"]


async def test_dev_sign_in_is_only_offered_to_this_machine(app: Starlette) -> None:
    # a development server bound to 0.0.0.0 must not mint admin tokens for the network
    remote = httpx.ASGITransport(app=app, client=("192.0.2.7", 40000))
    async with httpx.AsyncClient(transport=remote, base_url="http://testserver") as client:
        response = await client.post("/dev/sign-in", json={"userId": "mallory", "roles": ["admin"]})

    assert response.status_code == 403
    assert "token" not in response.json()
