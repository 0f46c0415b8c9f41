"""Pipelined JetStream publishing: many publishes in flight, each with its own ack future.

nats-py 2.16 has ``JetStreamContext.publish_async`` for this, but an error answer (JetStream
refusing a message) raises inside its reply callback, so the publish's future never
resolves: a refusal looks like a lost ack. The relay must tell the two apart (a refused
``Nats-Expected-Last-Msg-Id`` is routine), so this does the same with the errors delivered.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import PubAck
from nats.js.errors import APIError, NoStreamResponseError

NO_RESPONDERS = "503"


class PublishRefused(APIError):
    """JetStream answered a publish with an error (its ``err_code`` says which)."""


class PipelinedPublisher:
    """Publishes to JetStream over one connection without waiting for each ack; acks arrive
    on one reply subscription and resolve the futures :meth:`publish` returned."""

    def __init__(self, connection: Client) -> None:
        self.connection = connection
        self._prefix = ""
        self._subscription: Subscription | None = None
        self._pending: dict[str, asyncio.Future[PubAck]] = {}
        self._next = 0

    async def publish(
        self, subject: str, payload: bytes, headers: dict[str, str]
    ) -> asyncio.Future[PubAck]:
        """Send now; the future resolves with the ack, or fails with :class:`PublishRefused`
        or :class:`NoStreamResponseError`. It has no timeout of its own: the caller bounds
        the wait (a publish lost with a broken connection is never answered)."""
        if self._subscription is None:
            self._prefix = self.connection.new_inbox()
            self._subscription = await self.connection.subscribe(
                f"{self._prefix}.*", cb=self._on_reply
            )
        self._next += 1
        token = str(self._next)
        future: asyncio.Future[PubAck] = asyncio.get_running_loop().create_future()
        self._pending[token] = future
        future.add_done_callback(lambda _: self._pending.pop(token, None))
        await self.connection.publish(
            subject, payload, reply=f"{self._prefix}.{token}", headers=headers
        )
        return future

    async def _on_reply(self, msg: Msg) -> None:
        future = self._pending.get(msg.subject.rsplit(".", 1)[-1])
        if future is None or future.done():
            return
        if msg.headers and msg.headers.get("Status") == NO_RESPONDERS:
            future.set_exception(NoStreamResponseError())
            return
        try:
            answer: dict[str, Any] = json.loads(msg.data)
        except ValueError as exc:
            future.set_exception(exc)
            return
        if "error" in answer:
            error = answer["error"]
            future.set_exception(
                PublishRefused(
                    code=error.get("code"),
                    err_code=error.get("err_code"),
                    description=error.get("description"),
                )
            )
            return
        future.set_result(PubAck.from_response(answer))

    async def close(self) -> None:
        for future in list(self._pending.values()):
            future.cancel()
        if self._subscription is not None and not self.connection.is_closed:
            await self._subscription.unsubscribe()
        self._subscription = None
