"""Hostile input is refused clearly and harms nothing: body size limits, strict command
schemas (and lenient events), printable identifiers, NFC names without control characters,
attachment names that cannot choose where a file is stored.

The HTTP parts run each service's real app in process (httpx's ASGI transport) on a
migrated SQLite database without the bus: every refusal here happens before any event.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from services.notify.bootstrap import SERVICE as NOTIFY
from services.plans.bootstrap import SERVICE as PLANS
from services.reports.adapters.storage import AttachmentStore
from services.reports.bootstrap import SERVICE as REPORTS
from services.reports.domain.model import ReportRefused
from services.reports.handlers.intake import Attach, AttachmentRules, check_attachment
from shared.events import CATALOGUE
from shared.limits import BodySizeLimit, _printable, too_large_message
from shared.service import ServiceDefinition
from shared.units import _nfc_name, _nfc_text

SERVICES = {"plans": PLANS, "reports": REPORTS, "notify": NOTIFY}
BODY_LIMIT = 4096
ATTACHMENT_LIMIT = 16384
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
async def app_factory(tmp_path: Path) -> AsyncIterator[Callable[[str], Any]]:
    """Each service's real app on its migrated SQLite database, without the bus."""
    contexts: list[Any] = []

    async def make(name: str) -> FastAPI:
        definition: ServiceDefinition = SERVICES[name]
        settings_ = definition.settings_type(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/{name}.db",
            data_dir=str(tmp_path / name),
            max_body_bytes=BODY_LIMIT,
            attachment_max_bytes=ATTACHMENT_LIMIT,
            auth="open",  # the trust boundary is tested elsewhere; here, what gets through
        )
        context = definition.offline(settings_)
        runtime = await context.__aenter__()
        contexts.append(context)
        return definition.app(runtime)

    yield make
    for context in contexts:
        await context.__aexit__(None, None, None)


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://qcdc")


def assert_explained(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["message"]
    return error


# --- body size ---------------------------------------------------------------------------


async def test_a_declared_huge_body_is_refused_before_it_is_read(
    app_factory: Callable[[str], Any],
) -> None:
    app = await app_factory("plans")
    async with client(app) as http:
        response = await http.post(
            "/plans",
            content=b"{" + b" " * BODY_LIMIT + b"}",
            headers={"content-type": "application/json", "X-Correlation-Id": "c-413"},
        )
    error = assert_explained(response, 413)
    assert error["message"] == too_large_message(BODY_LIMIT)
    assert response.headers["X-Correlation-Id"] == "c-413"


async def test_the_middleware_reads_nothing_when_the_length_is_too_large() -> None:
    reads = 0
    sent: list[dict[str, Any]] = []

    async def body_reader(_scope: Any, receive: Any, send: Any) -> None:
        try:
            await receive()
        except Exception as exc:  # the 413 raised where the app reads the body
            sent.append({"refused": str(exc)})

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 10, "more_body": True}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": "POST", "headers": [(b"content-length", b"999999")]}
    await BodySizeLimit(body_reader, max_bytes=100)(scope, receive, send)
    assert reads == 0
    assert sent == [{"refused": "413: " + too_large_message(100)}]


async def test_a_chunked_body_is_refused_once_it_grows_past_the_limit(
    app_factory: Callable[[str], Any],
) -> None:
    app = await app_factory("reports")
    produced = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal produced
        for _ in range(100):
            produced += 1024
            yield b" " * 1024

    async with client(app) as http:
        response = await http.post(
            "/reports", content=chunks(), headers={"content-type": "application/json"}
        )
    assert_explained(response, 413)


async def test_a_body_under_the_limit_is_validated_as_usual(
    app_factory: Callable[[str], Any],
) -> None:
    app = await app_factory("plans")
    async with client(app) as http:
        response = await http.post("/units", json={"code": "T89", "surprise": "x" * 1000})
    error = assert_explained(response, 422)
    assert {"field": "surprise", "message": "Extra inputs are not permitted"} in error["errors"]


async def test_attachments_keep_their_own_limit(app_factory: Callable[[str], Any]) -> None:
    app = await app_factory("reports")
    async with client(app) as http:
        # Larger than a command body may be, within the attachment limit: not a 413.
        typed = await http.put(
            "/reports/r-1/attachments/bien-ban.txt",
            content=b"x" * (BODY_LIMIT * 2),
            headers={"content-type": "text/plain"},
        )
        huge = await http.put(
            "/reports/r-1/attachments/bien-ban.pdf",
            content=PDF + b"x" * ATTACHMENT_LIMIT,
            headers={"content-type": "application/pdf"},
        )
    assert assert_explained(typed, 422)["field"] == "content_type"
    assert "the file is larger than" in assert_explained(huge, 413)["message"]


# --- strict commands, lenient events -----------------------------------------------------


def _lenient_objects(schema: dict[str, Any], node: Any, seen: set[str]) -> Iterator[str]:
    """Names (or titles) of the request-body objects that accept unknown fields."""
    if isinstance(node, list):
        for item in node:
            yield from _lenient_objects(schema, item, seen)
    if not isinstance(node, dict):
        return
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            yield from _lenient_objects(schema, schema["components"]["schemas"][name], seen)
        return
    if "properties" in node and node.get("additionalProperties") is not False:
        yield node.get("title", "an inline object")
    for value in node.values():
        yield from _lenient_objects(schema, value, seen)


@pytest.mark.parametrize("name", ["plans", "reports", "notify"])
async def test_every_command_refuses_unknown_fields(
    app_factory: Callable[[str], Any], name: str
) -> None:
    schema = (await app_factory(name)).openapi()
    lenient = []
    for route, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            body = content.get("application/json", {}).get("schema")
            for model in _lenient_objects(schema, body, set()):
                lenient.append(f"{method.upper()} {route}: {model}")
    assert not lenient, "commands that take unknown fields:\n" + "\n".join(lenient)


def _models_in(node: Any, seen: set[type[BaseModel]]) -> None:
    if isinstance(node, type) and issubclass(node, BaseModel):
        if node in seen:
            return
        seen.add(node)
        for field in node.model_fields.values():
            _models_in(field.annotation, seen)
    for arg in getattr(node, "__args__", ()):
        _models_in(arg, seen)


def test_events_and_their_parts_ignore_unknown_fields() -> None:
    # Within v1 a newer publisher adds fields; an older consumer must not refuse them.
    models: set[type[BaseModel]] = set()
    for event in CATALOGUE:
        _models_in(event, models)
    assert len(models) > len(CATALOGUE)  # the nested parts too
    assert {m.__name__ for m in models if m.model_config.get("extra") != "ignore"} == set()


# --- every free text of a command is printable; names are NFC one-liners -----------------

GUARDS = {_nfc_name: "name", _nfc_text: "text"}
NAME_FIELDS = {
    "name",
    "title",
    "topic",
    "place",
    "position",
    "issuer",
    "number",
    "doc_number",
    "published_by",
    "submitted_by",
    "distribution",
}


def _strings(
    schema: dict[str, Any], defs: dict[str, Any], path: str, guard: str | None
) -> Iterator[tuple[str, str | None, bool]]:
    """(field path, guard, has pattern) for every string a model accepts."""
    kind = schema.get("type")
    if kind == "definitions":
        defs = {**defs, **{d["ref"]: d for d in schema["definitions"]}}
        yield from _strings(schema["schema"], defs, path, guard)
    elif kind == "definition-ref":
        yield from _strings(defs[schema["schema_ref"]], defs, path, guard)
    elif kind == "str":
        yield path, guard, bool(schema.get("pattern"))
    elif kind == "function-after":
        function = schema["function"]["function"]
        inner = GUARDS.get(function) or ("id" if function is _printable else guard)
        yield from _strings(schema["schema"], defs, path, inner)
    elif kind == "model":
        yield from _strings(schema["schema"], defs, path, guard)
    elif kind == "model-fields":
        for name, field in schema["fields"].items():
            yield from _strings(field["schema"], defs, f"{path}.{name}", guard)
    elif kind == "dict":
        yield from _strings(schema["keys_schema"], defs, f"{path}.<key>", guard)
        yield from _strings(schema["values_schema"], defs, f"{path}.<value>", guard)
    elif kind == "list":
        yield from _strings(schema["items_schema"], defs, f"{path}[]", guard)
    elif kind == "union":
        for choice in schema["choices"]:
            yield from _strings(
                choice[0] if isinstance(choice, tuple) else choice, defs, path, guard
            )
    else:  # nullable, default, chain, lax-or-strict …: whatever they wrap
        for key in ("schema", "lax_schema", "strict_schema", "python_schema"):
            if isinstance(schema.get(key), dict):
                yield from _strings(schema[key], defs, path, guard)
        for step in schema.get("steps", []):
            yield from _strings(step, defs, path, guard)


def _command_models(name: str) -> dict[str, type[BaseModel]]:
    package = importlib.import_module(f"services.{name}.entrypoints")
    found: dict[str, type[BaseModel]] = {}
    modules = [package.__name__] + [
        m.name for m in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
    ]
    for module_name in modules:
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseModel):
                found.setdefault(value.__name__, value)
    return found


def _body_model_names(schema: dict[str, Any]) -> set[str]:
    names = set()
    for operations in schema["paths"].values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            ref = content.get("application/json", {}).get("schema", {}).get("$ref")
            if ref:
                names.add(ref.rsplit("/", 1)[-1])
    return names


@pytest.mark.parametrize("name", ["plans", "reports", "notify"])
async def test_no_command_field_takes_control_characters_and_names_are_nfc(
    app_factory: Callable[[str], Any], name: str
) -> None:
    models = _command_models(name)
    names = _body_model_names((await app_factory(name)).openapi())
    assert names, "no command found"
    unguarded, not_names = [], []
    for model_name in sorted(names):
        model = models[model_name]
        core = dict(model.__pydantic_core_schema__)
        for path, guard, pattern in _strings(core, {}, model_name, None):
            if guard is None and not pattern:
                unguarded.append(path)
            field = path.split(".")[-1].removesuffix("[]")
            if field in NAME_FIELDS and guard != "name":
                not_names.append(path)
    assert not unguarded, "free text that takes control characters: " + ", ".join(unguarded)
    assert not not_names, "names and titles that are not NfcName: " + ", ".join(not_names)


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    for route, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield method, route, operation.get("parameters", [])


@pytest.mark.parametrize("name", ["plans", "reports", "notify"])
async def test_a_nul_in_any_path_or_query_parameter_is_refused_before_the_database(
    app_factory: Callable[[str], Any], name: str
) -> None:
    app = await app_factory(name)
    schema = app.openapi()
    accepted = []
    async with client(app) as http:
        for method, route, parameters in _operations(schema):
            strings = [
                p
                for p in parameters
                if p["in"] in ("path", "query")
                and "string"
                in {s.get("type") for s in [p["schema"], *p["schema"].get("anyOf", [])]}
                and not p["schema"].get("enum")
            ]
            for parameter in strings:
                path_values = {p["name"]: "T89" for p in parameters if p["in"] == "path"}
                query: dict[str, str] = {}
                if parameter["in"] == "path":
                    path_values[parameter["name"]] = "a\x00b"
                else:
                    query[parameter["name"]] = "a\x00b"
                url = route.format(**{k: quote(v, safe="") for k, v in path_values.items()})
                response = await http.request(method.upper(), url, params=query)
                fields = set()
                if response.status_code == 422:
                    error = response.json()["error"]
                    fields = {e["field"] for e in error.get("errors", [])} | {error.get("field")}
                # Refused for this very parameter, not for a missing body or another one.
                if not fields & {f"{parameter['in']}.{parameter['name']}", parameter["name"]}:
                    label = f"{method.upper()} {route} {parameter['name']}"
                    accepted.append(f"{label}: {response.status_code}")
    assert not accepted, "parameters that take a NUL:\n" + "\n".join(accepted)


# --- attachment names --------------------------------------------------------------------

RULES = AttachmentRules(1024, ("application/pdf",))


@settings(max_examples=300, deadline=None, database=None)
@given(filename=st.text(max_size=300) | st.sampled_from(["..", ".", "../../etc/passwd", "a\\b"]))
def test_an_accepted_attachment_name_cannot_name_a_folder(filename: str) -> None:
    try:
        name = check_attachment(Attach("r-1", filename, "application/pdf", PDF), RULES)
    except ReportRefused as exc:
        assert exc.field == "filename"
        return
    assert name == unicodedata.normalize("NFC", filename).strip()
    assert "/" not in name and "\\" not in name and name not in (".", "..")
    assert 0 < len(name) <= 255
    assert not any(unicodedata.category(ch).startswith("C") for ch in name)


@settings(max_examples=50, deadline=None, database=None)
@given(content=st.binary(min_size=1, max_size=256))
def test_where_an_attachment_is_stored_depends_only_on_its_content(
    tmp_path_factory: pytest.TempPathFactory, content: bytes
) -> None:
    root = tmp_path_factory.mktemp("store")
    stored = AttachmentStore(root).put(content)
    digest = hashlib.sha256(content).hexdigest()
    assert stored.relative_path == f"{digest[:2]}/{digest}"
    assert (root / stored.relative_path).resolve().is_relative_to(root.resolve())
    assert AttachmentStore(root).read(stored.relative_path) == content


@pytest.mark.parametrize(
    "raw_name",
    [
        "..%2F..%2Fetc%2Fpasswd",
        "%2E%2E",
        "%2Fetc%2Fpasswd",
        "a%00b.pdf",
        "a%5C..%5Cb.pdf",
        "x" * 300 + ".pdf",
        "%E2%80%AEfdp.exe",  # a right-to-left override, to disguise the extension
    ],
)
async def test_a_hostile_attachment_name_is_refused_and_nothing_is_stored(
    app_factory: Callable[[str], Any], tmp_path: Path, raw_name: str
) -> None:
    app = await app_factory("reports")
    async with client(app) as http:
        response = await http.put(
            f"/reports/r-1/attachments/{raw_name}",
            content=PDF,
            headers={"content-type": "application/pdf"},
        )
    assert response.status_code in (404, 422), response.text
    assert response.json()["error"]["message"]
    stored = [p for p in (tmp_path / "reports").rglob("*") if p.is_file()]
    assert [p for p in stored if "attachments" in p.parts] == []
