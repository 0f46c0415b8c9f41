"""A webhook receiver for QCDC notifications, verified with the ``standardwebhooks`` package.

notify POSTs each event as a CloudEvent (structured JSON) signed by the Standard Webhooks
specification; any of its published verifiers checks it. This one uses only the standard
library besides ``standardwebhooks``:

- verify the signature over the raw body, and the timestamp (at most 5 minutes off), before
  parsing anything; answer 401 to a request that fails;
- drop a repeat by ``webhook-id`` (the delivery key: the same on every attempt), then by the
  event's ``id``, and answer 2xx for it, so notify stops retrying;
- answer 2xx quickly: notify gives the whole exchange 10 s.

    pip install standardwebhooks
    QCDC_WEBHOOK_SECRET=whsec_… python webhook_receiver.py --port 8080

Each accepted event is printed as one JSON line: ``{"webhook_id", "id", "type", "subject"}``.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class Receiver(ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], secret: str) -> None:
        super().__init__(address, Handler)
        self.webhook = Webhook(secret)
        self.seen: set[str] = set()  # in production: your database, in the handling's transaction
        self.lock = threading.Lock()

    def first_time(self, *keys: str) -> bool:
        with self.lock:
            if any(key in self.seen for key in keys):
                return False
            self.seen.update(keys)
            return True


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # the name http.server calls
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            event: Any = self.server.webhook.verify(body, dict(self.headers.items()))
        except WebhookVerificationError as exc:
            self._answer(401, f"signature: {exc}")
            return
        webhook_id = self.headers["webhook-id"]
        if self.server.first_time(webhook_id, str(event.get("id"))):
            line = {
                "webhook_id": webhook_id,
                "id": event.get("id"),
                "type": event.get("type"),
                "subject": event.get("subject"),
            }
            print(json.dumps(line, ensure_ascii=False), flush=True)
        self._answer(204, "")

    def _answer(self, status: int, text: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(text.encode())))
        self.end_headers()
        self.wfile.write(text.encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass  # stdout carries the accepted events only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    secret = os.environ["QCDC_WEBHOOK_SECRET"]
    with Receiver((args.host, args.port), secret) as server:
        print(json.dumps({"listening": server.server_address[1]}), flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
