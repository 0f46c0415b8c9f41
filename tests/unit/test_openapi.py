"""Each service's OpenAPI document tells the truth: the bearer scheme the authentication
middleware enforces, the JSON error body every refusal really has, an example for every
request body that its own schema accepts; and /docs is served without a CDN."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from services.notify.bootstrap import SERVICE as NOTIFY
from services.plans.bootstrap import SERVICE as PLANS
from services.reports.bootstrap import SERVICE as REPORTS
from shared import openapi
from shared.security import PUBLIC_PATHS
from shared.service import ServiceDefinition

SERVICES = [PLANS, REPORTS, NOTIFY]
METHODS = ("get", "post", "put", "patch", "delete")
BINARY = {"type": "string", "format": "binary"}
CONFLICTS = {
    ("post", "/units"),
    ("post", "/plans/{plan_id}/sub-plans"),
    ("post", "/deliveries/{key}/redeliver"),
}


async def _client(
    definition: ServiceDefinition, auth: str, database: Path | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    url = f"sqlite+aiosqlite:///{database}" if database else "sqlite+aiosqlite://"
    runtime = definition.runtime(definition.settings_type(database_url=url, auth=auth))
    if database:
        await runtime.migrate()
    transport = httpx.ASGITransport(app=definition.app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        yield client
    await runtime.engine.dispose()


@pytest.fixture(params=SERVICES, ids=lambda d: d.name)
async def client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """A service in its default mode (tokens) with its database (SQLite), without its bus:
    enough for the document, the public pages and a refusal by the middleware (audited)."""
    async for made in _client(request.param, "tokens", tmp_path / "service.sqlite3"):
        yield made


@pytest.fixture(params=SERVICES, ids=lambda d: d.name)
def document(request: pytest.FixtureRequest) -> dict[str, Any]:
    definition: ServiceDefinition = request.param
    settings = definition.settings_type(database_url="sqlite+aiosqlite://")
    return definition.app(definition.runtime(settings)).openapi()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for a schema of the document, its $refs resolved within the document."""
    return Draft202012Validator({**schema, "components": document["components"]})


def _resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        return document["components"]["schemas"][ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]
    return schema


def test_the_bearer_scheme_is_declared_and_public_paths_are_exempt(
    document: dict[str, Any],
) -> None:
    scheme = document["components"]["securitySchemes"][openapi.BEARER]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert document["security"] == [{openapi.BEARER: []}]
    public = {path for path, _, op in _operations(document) if op.get("security") == []}
    assert public == {"/healthz", "/asyncapi.yaml"}
    assert public <= PUBLIC_PATHS
    protected = [op for path, _, op in _operations(document) if path not in public]
    assert protected and all("security" not in op for op in protected)  # the global one


def test_every_request_body_has_an_example_its_schema_accepts(
    document: dict[str, Any],
) -> None:
    with_body = [(p, m, op) for p, m, op in _operations(document) if "requestBody" in op]
    assert with_body
    missing: list[str] = []
    for path, method, operation in with_body:
        for media_type, media in operation["requestBody"]["content"].items():
            schema = media["schema"]
            if schema == BINARY:  # raw file bytes (an attachment): nothing to show
                continue
            examples = [e["value"] for e in media.get("examples", {}).values()]
            examples += [media["example"]] if "example" in media else []
            examples += _resolved(document, schema).get("examples", [])
            if not examples:
                missing.append(f"{method.upper()} {path} {media_type}")
            for example in examples:
                errors = [e.message for e in _validator(document, schema).iter_errors(example)]
                assert not errors, f"{method.upper()} {path}: {example!r}: {errors}"
    assert not missing, "request bodies without an example:\n" + "\n".join(missing)


@pytest.mark.parametrize("definition", SERVICES, ids=lambda d: d.name)
async def test_every_request_body_example_passes_the_services_own_validation(
    definition: ServiceDefinition,
) -> None:
    """The schema cannot say everything a model checks (no control characters, NFC text,
    a CSV file's rows): each example is sent to the route, which must not refuse it. The
    service has no database here, so what follows validation fails, as a 5xx."""
    settings = definition.settings_type(database_url="sqlite+aiosqlite://", auth="open")
    app = definition.app(definition.runtime(settings))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        document = (await client.get("/openapi.json")).json()
        for path, method, operation in _operations(document):
            for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
                if media["schema"] == BINARY:
                    continue
                examples = _resolved(document, media["schema"]).get("examples", [])
                examples += [media["example"]] if "example" in media else []
                for example in examples:
                    content = example if isinstance(example, str) else json.dumps(example)
                    answer = await client.request(
                        method,
                        re.sub(r"\{[^}]+\}", "x", path),
                        content=content.encode(),
                        headers={"content-type": media_type},
                    )
                    assert answer.status_code not in (400, 413, 415, 422), (
                        f"{method.upper()} {path}: {answer.text}"
                    )


def test_every_refusal_is_documented_with_the_error_body(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in str(document)
    for path, method, operation in _operations(document):
        if operation.get("security") == []:
            continue
        responses = operation["responses"]
        assert {"401", "403", "500", "503"} <= set(responses), f"{method} {path}"
        if "requestBody" in operation:
            assert {"413", "422"} <= set(responses), f"{method} {path}"
        if "{" in path:
            assert "404" in responses, f"{method} {path}"
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == openapi.ERROR_REF, f"{method} {path} {status}"
    conflicts = {(m, p) for p, m, op in _operations(document) if "409" in op["responses"]}
    # exactly where a handler raises shared.errors.Conflict
    assert conflicts == {(m, p) for m, p in CONFLICTS if p in document["paths"]}
    body = document["components"]["schemas"][openapi.ERROR_SCHEMA]
    for example in body["examples"]:
        assert not list(_validator(document, body).iter_errors(example))


async def test_real_refusals_match_the_documented_error_body(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    validator = _validator(document, openapi.ERROR_REF)
    path, method, _ = next(
        (p, m, op) for p, m, op in _operations(document) if op.get("security") != []
    )
    refused = await client.request(method, re.sub(r"\{[^}]+\}", "x", path))
    assert refused.status_code == 401
    assert not list(validator.iter_errors(refused.json())), refused.json()


@pytest.mark.parametrize("definition", SERVICES, ids=lambda d: d.name)
async def test_a_body_that_is_not_valid_gets_the_documented_422(
    definition: ServiceDefinition,
) -> None:
    async for client in _client(definition, "open"):  # no token: validation is reached
        document = (await client.get("/openapi.json")).json()
        validator = _validator(document, openapi.ERROR_REF)
        path, method, _ = next(
            (p, m, op)
            for p, m, op in _operations(document)
            if "application/json" in op.get("requestBody", {}).get("content", {})
        )
        answer = await client.request(method, re.sub(r"\{[^}]+\}", "x", path), json=[1])
        assert answer.status_code == 422, answer.text
        assert not list(validator.iter_errors(answer.json())), answer.json()


async def test_docs_are_served_without_a_cdn(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")  # no token: public
    assert page.status_code == 200
    assert not re.search(r"https?://", page.text), "the page reaches outside the service"
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert {a.rsplit("/", 1)[1] for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for asset in assets:
        assert asset.startswith(openapi.STATIC_PREFIX + "/"), asset
        served = await client.get(asset)
        assert served.status_code == 200 and served.content, asset
    assert "'/openapi.json'" in page.text or '"/openapi.json"' in page.text
    assert (await client.get("/openapi.json")).status_code == 200
    assert (await client.get("/docs/oauth2-redirect")).status_code == 200
    # The static folder is public, nothing else is: a path beside it still needs a token.
    assert (await client.get("/docs/static/../plans")).status_code in (401, 404)
    assert (await client.get("/docs/static/missing.js")).status_code == 404
    assert (await client.get("/redoc")).status_code in (401, 404)  # ReDoc needs a CDN: gone


@pytest.mark.parametrize("definition", SERVICES, ids=lambda d: d.name)
async def test_a_fault_is_answered_with_the_documented_500(definition: ServiceDefinition) -> None:
    """A fault nothing handles (here: the database has no tables) is a 500 in the error
    shape, with the correlation id the log has, not Starlette's plain text."""
    settings = definition.settings_type(database_url="sqlite+aiosqlite://", auth="open")
    app = definition.app(definition.runtime(settings))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        document = (await client.get("/openapi.json")).json()
        path = next(
            p
            for p, m, op in _operations(document)
            if m == "get" and "{" not in p and op.get("security") != []
        )
        answer = await client.get(path, headers={"X-Correlation-Id": "fault-1"})
    assert answer.status_code == 500, answer.text
    assert not list(_validator(document, openapi.ERROR_REF).iter_errors(answer.json()))
    assert "fault-1" in answer.json()["error"]["message"]
    assert answer.headers["X-Correlation-Id"] == "fault-1"
