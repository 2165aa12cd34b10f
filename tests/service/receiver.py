"""A real webhook receiver for the publishing tests: a threaded HTTP server on loopback.

It checks every signature with the Standard Webhooks reference verifier (the
`standardwebhooks` package; 401 when wrong), de-duplicates on ``webhook-id``,
fails the first attempts of each delivery on purpose (HTTP 500, the first ones slowly enough
for the client to time out), can be taken down and brought back, and counts accepted
deliveries by delivery id - a duplicate would count 2.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from service.publish.signing import ID_HEADER


@dataclass
class Receiver:
    secret: str
    fail_first: int = 0  # attempts of each delivery answered 500 ...
    slow_first: int = 0  # ... of which the first ones only after `slow_s` (client timeout)
    slow_s: float = 0.0
    down: bool = False  # every attempt answered 503
    url: str = ""
    accepted: Counter[str] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)
    bodies: dict[str, bytes] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        """The status code to answer with (may sleep first)."""
        try:
            Webhook(self.secret).verify(body, headers, json_parse=False)
        except WebhookVerificationError:
            with self.lock:
                self.bad_signatures += 1
            return 401
        delivery_id = headers.get(ID_HEADER, "")
        with self.lock:
            self.attempts[delivery_id] += 1
            attempt = self.attempts[delivery_id]
        if self.down:
            return 503
        if attempt <= self.fail_first:
            if attempt <= self.slow_first:
                time.sleep(self.slow_s)
            return 500
        with self.lock:
            self.accepted[delivery_id] += 1
            self.bodies[delivery_id] = body
            self.headers[delivery_id] = headers
        return 200


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        status = self.server.receiver.handle(headers, body)
        try:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): nothing was accepted

    def log_message(self, format: str, *args: object) -> None:
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver


@contextmanager
def receiving(receiver: Receiver) -> Iterator[Receiver]:
    """Serve ``receiver`` on 127.0.0.1 (a free port); sets ``receiver.url``."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.receiver = receiver
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
