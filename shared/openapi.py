"""The OpenAPI document as the services really answer, and ``/docs`` without a CDN.

FastAPI's generated document knows only what routes declare. Three things happen outside
them, and are added here to every service's document:

- authentication is an ASGI middleware (:class:`shared.security.Authentication`), so no
  route declares it: the document declares the bearer scheme globally (API tokens and, when
  an identity provider is set up, its JWTs) and exempts the public paths;
- every refusal and fault is the JSON error of :mod:`shared.http` (``{"error": {"message",
  "field", "errors"}}``), not FastAPI's ``HTTPValidationError``: 4xx and 5xx answers
  reference :class:`ErrorBody`, for the statuses the middlewares and the handlers give;
- Swagger UI is served from files vendored in ``shared/static/swagger-ui`` (npm
  ``swagger-ui-dist``), so the documentation works on a network without Internet access.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

SWAGGER_UI_VERSION = "5.35.0"
STATIC_DIR = Path(__file__).parent / "static" / "swagger-ui"
STATIC_PREFIX = "/docs/static"
DOCS_PATH = "/docs"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
OPENAPI_PATH = "/openapi.json"
BEARER = "bearer"
ERROR_SCHEMA = "ErrorBody"
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}


class FieldError(BaseModel):
    """One problem with one field (or, for a file import, one line)."""

    model_config = ConfigDict(extra="allow")

    field: str = Field(description="Where: a dotted path into the body, or a parameter name.")
    message: str
    line: int | SkipJsonSchema[None] = Field(None, description="A file import's line number.")


class ErrorDetail(BaseModel):
    message: str = Field(description="What was refused and why, for a person to read.")
    field: str | SkipJsonSchema[None] = Field(
        None, description="The one field the refusal concerns, when there is one."
    )
    errors: list[FieldError] | SkipJsonSchema[None] = Field(
        None, description="Several problems at once (a request that is not valid, a file)."
    )


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer of every service (shared/http.py)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "message": "the request is not valid",
                        "errors": [{"field": "unit_code", "message": "Field required"}],
                    }
                },
                {"error": {"message": "send an API token: Authorization: Bearer <token>"}},
            ]
        }
    )

    error: ErrorDetail


BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": (
        "`Authorization: Bearer <token>`: an API token of this system (`qcdc_…`, made with "
        "`qcdc tokens create` or `POST /tokens` on plans), or a JWT of the identity provider "
        "the service trusts (OpenID Connect, `QCDC_OIDC_ISSUER`). Every path needs one "
        "except health and the API's own description."
    ),
}

ERRORS: dict[str, str] = {
    "401": "No token, or one that is unknown, expired or revoked (`WWW-Authenticate: Bearer`).",
    "403": "The token's role or unit may not do this (an integrator token only reads).",
    "404": "What the request names does not exist (or is outside the caller's units).",
    "409": "The command clashes with what exists.",
    "413": "The request body is larger than the service accepts.",
    "422": "The request is not valid, or the rules refuse it: the message names the field.",
    "500": "A fault of the service: the message gives the correlation id it logged it under.",
    "503": "The database is unavailable; retry after `Retry-After` seconds.",
}


def conflict(description: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route whose handler raises :class:`shared.errors.Conflict`: the
    one status no middleware gives, so the route says it (in the error body's shape)."""
    return {409: {"description": description}}


def statuses(path: str, operation: dict[str, Any]) -> list[str]:
    """The error statuses every operation of its kind can answer, from what the middlewares
    and the exception handlers of shared/http.py do with it (409: see :func:`conflict`)."""
    has_params = any(p.get("in") in ("path", "query") for p in operation.get("parameters", []))
    has_path_params = "{" in path
    has_body = "requestBody" in operation
    found = ["401", "403", "500", "503"]
    if has_path_params or has_body:
        found.append("404")
    if has_body:
        found.append("413")
    if has_params or has_body:
        found.append("422")
    return found


def describe(app: FastAPI, public_paths: frozenset[str]) -> dict[str, Any]:
    """The app's OpenAPI document with security and errors as they really are."""
    document = get_openapi(  # what FastAPI's own app.openapi() passes
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=app.servers,
        separate_input_output_schemas=app.separate_input_output_schemas,
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas[ERROR_SCHEMA] = error_schema
    components["securitySchemes"] = {BEARER: BEARER_SCHEME}
    document["security"] = [{BEARER: []}]
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            if path in public_paths:
                operation["security"] = []  # answers without a token
                continue
            _document_errors(path, operation)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def _document_errors(path: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    for status in statuses(path, operation):
        responses.setdefault(status, {"description": ERRORS[status]})
    for status, response in responses.items():
        if not status.startswith(("4", "5")):
            continue
        if response.get("description") in (None, "", "Validation Error"):
            response["description"] = ERRORS.get(status, "Refused.")
        media = response.setdefault("content", {}).setdefault("application/json", {})
        media["schema"] = ERROR_REF  # replaces FastAPI's HTTPValidationError
    operation["responses"] = dict(sorted(responses.items()))


def install(app: FastAPI, public_paths: frozenset[str]) -> None:
    """Serve the true document at /openapi.json and Swagger UI, from our own files, at
    /docs. The app must be created with ``docs_url=None, redoc_url=None``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = describe(app, public_paths)
            refine = getattr(app.state, "refine_openapi", None)
            if refine is not None:
                refine(document)  # what differs by instance (ServiceDefinition.refine_openapi)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="swagger-ui")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_PATH,
            title=f"{app.title}: API",
            swagger_js_url=f"{STATIC_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PREFIX}/favicon-32x32.png",
            oauth2_redirect_url=OAUTH2_REDIRECT_PATH,
            # No badge fetched from validator.swagger.io: nothing leaves the network.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        )

    @app.get(OAUTH2_REDIRECT_PATH, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
