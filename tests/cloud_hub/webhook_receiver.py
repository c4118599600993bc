"""A real HTTP server on loopback that receives the hub's webhooks, as an external system would:
it checks each request's signature on its own (plain ``hmac``, not the hub's code) and answers
with scripted status codes."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.services import free_port


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    timestamp: int
    answered: int
    at: float


class WebhookReceiver:
    """``with WebhookReceiver() as r:`` serves on ``r.url``. Set ``secret`` to check
    signatures; ``script`` holds the status codes of the next answers (then ``default``)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.secret: str | None = None
        self.script: deque[int] = deque()
        self.default = 200
        self.got: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok, ts = receiver._verify(self.headers.get("X-Retail-Signature", ""), body)
                with receiver._lock:
                    status = receiver.script.popleft() if receiver.script else receiver.default
                    if not ok:
                        status = 401
                    receiver.got.append(
                        Received(dict(self.headers), body, ok, ts, status, time.time())
                    )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"no" if status >= 300 else b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Where to POST."""
        return f"http://127.0.0.1:{self.port}/hooks/retail"

    def _verify(self, header: str, body: bytes) -> tuple[bool, int]:
        """The receiver's own check: ``t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>``."""
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            ts = int(parts["t"])
        except (KeyError, ValueError):
            return False, 0
        if self.secret is None:
            return False, ts
        want = hmac.new(self.secret.encode(), f"{ts}.".encode() + body, hashlib.sha256)
        return hmac.compare_digest(want.hexdigest(), parts.get("v1", "")), ts

    def received(self) -> list[Received]:
        """The requests so far."""
        with self._lock:
            return list(self.got)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
