"""What the plain ASGI middlewares of every service share (plain ASGI rather than
``@app.middleware("http")``, whose wrapper runs the app in a task of its own and re-streams
every response: a cost on each request of a busy intake)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HttpMiddleware:
    """A middleware that acts on HTTP requests only: lifespan and websocket traffic pass
    through untouched. A subclass says what it does in :meth:`http`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class ResponseStatus:
    """A ``send`` that passes every message on and notes the response's status code: 500
    until the response starts (the app failed before answering)."""

    def __init__(self, send: Send) -> None:
        self.code = 500
        self._send = send

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.code = message["status"]
        await self._send(message)
