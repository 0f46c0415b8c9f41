"""Limits on what a request may carry: the body's size, and what an identifier may contain.

Request body size: a huge body is refused with 413 before it is read into memory.

FastAPI reads a whole JSON body into memory before validating it, whatever its declared
content type, so without a limit one request can exhaust a service's memory. The limit is
checked when the app first asks for the body, against ``Content-Length`` (413 before a byte
is read), and again as the body streams in (a ``Content-Length`` may be absent with chunked
encoding, or lie). A request whose route never reads its body is not refused.

A route that streams its body itself under a larger limit of its own (an attachment, a unit
import file) calls :func:`allow_body` before reading. The limit is per request and lives in
the ASGI scope, so the middleware needs to know nothing about routes.

Identifiers: an id in a path, a query or a body (a plan id, a report id, a schedule key) is
printable text of bounded length. Anything else is refused with 422 before it reaches the
database: PostgreSQL refuses a NUL in text, which would otherwise surface as a 500.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, StringConstraints
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.asgi import HttpMiddleware

SCOPE_KEY = "qcdc.body_limit"
MAX_IDENTIFIER_LENGTH = 128


def _printable(value: str) -> str:
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise ValueError("must not contain control characters")
    return value


Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_IDENTIFIER_LENGTH),
    AfterValidator(_printable),
]
"""An id or key as clients send it: 1–128 characters, none of them a control character."""

PrintableText = Annotated[str, AfterValidator(_printable)]
"""Text of one line a client sends (an address, a secret): no control character."""


@dataclass
class BodyLimit:
    """The largest body this request may have; a route may raise it (:func:`allow_body`)."""

    max_bytes: int


def too_large_message(max_bytes: int) -> str:
    return f"the request body is larger than {max_bytes} bytes"


def allow_body(request: Request, max_bytes: int) -> None:
    """Let this request's body be up to ``max_bytes``: for a route that streams a file and
    enforces that limit itself, with its own message."""
    limit = request.scope.get(SCOPE_KEY)
    if isinstance(limit, BodyLimit):
        limit.max_bytes = max_bytes


async def read_limited(request: Request, limit: int) -> bytes:
    """A streamed file's body, refused with 413 as soon as it is known to exceed ``limit``
    (files may be larger than command bodies: :func:`allow_body` lets them through)."""
    allow_body(request, limit)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the file is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the file is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class BodySizeLimit(HttpMiddleware):
    """ASGI middleware refusing request bodies larger than ``max_bytes`` with a 413.

    The refusal is an ``HTTPException`` raised where the app reads the body: FastAPI passes
    it on, and the app's handler answers it as JSON like every other error."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = BodyLimit(self.max_bytes)
        scope[SCOPE_KEY] = limit
        declared = _content_length(scope)
        received = 0

        async def limited() -> Message:
            nonlocal received
            if declared is not None and declared > limit.max_bytes:
                raise HTTPException(413, too_large_message(limit.max_bytes))
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    raise HTTPException(413, too_large_message(limit.max_bytes))
            return message

        await self.app(scope, limited, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we get here
    return None
