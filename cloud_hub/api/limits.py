"""Request limits in front of the API: body size and per-caller rate (pure ASGI middleware).

Telemetry ingest is left alone: it has its own, larger, body limit (answered with a
``BatchRejected``), and its callers are enrolled devices that back off by themselves.

* **Body size.** Every other route refuses a body over ``max_request_bytes`` with 413, whether
  the ``Content-Length`` says so or the body only turns out larger while it streams.
* **Rate.** A token bucket per caller: the bearer credential's hash when there is one (an API
  key, a device secret), else the client address. ``rate_limit_per_minute`` tokens a minute,
  bursts up to the same number; an empty bucket answers 429 with ``Retry-After``. Buckets live
  in the process: with N API replicas behind a balancer a caller gets up to N times the rate,
  which is what a per-replica guard against a runaway client needs (a shared limit would need a
  shared store, e.g. Redis; not worth a dependency yet). Health checks are never limited.

Time comes from ``clock`` (monotonic seconds), so tests drive it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LIMITED_PREFIX = "/api/"
EXEMPT_SUFFIXES = ("/health", "/health/ready", "/ingest/telemetry")
# Uploads with their own, larger, streamed body limit (rate-limited like the rest).
OWN_BODY_LIMIT_PATHS = frozenset({"/api/v1/models", "/api/v1/video/upload"})
MAX_TRACKED_CALLERS = 100_000  # least recently seen callers are forgotten beyond this


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets by caller: ``per_minute`` tokens a minute, holding at most ``per_minute``."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, caller: str) -> float:
        """Take one token for ``caller``: 0.0 when allowed, else seconds until one is due."""
        now = self.clock()
        b = self._buckets.pop(caller, None)
        if b is None:
            b = _Bucket(self.capacity, now)
        b.tokens = min(self.capacity, b.tokens + (now - b.at) * self.rate)
        b.at = now
        self._buckets[caller] = b
        if len(self._buckets) > MAX_TRACKED_CALLERS:
            self._buckets.popitem(last=False)
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / self.rate


def _caller_key(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return "cred:" + hashlib.sha256(value).hexdigest()
    client = scope.get("client")
    return f"addr:{client[0] if client else '?'}"


async def _send_json(
    send: Send, status: int, body: dict[str, str], headers: list[tuple[bytes, bytes]]
) -> None:
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


class RequestLimits:
    """ASGI middleware applying the body cap and the rate limit to ``/api/...`` requests."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_request_bytes: int,
        rate_limit_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.max_bytes = max_request_bytes
        self.limiter = RateLimiter(rate_limit_per_minute, clock) if rate_limit_per_minute else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        limited = path.startswith(LIMITED_PREFIX) and not path.endswith(EXEMPT_SUFFIXES)
        if scope["type"] != "http" or not limited:
            await self.app(scope, receive, send)
            return
        if self.limiter is not None:
            wait = self.limiter.take(_caller_key(scope))
            if wait > 0:
                retry = str(max(1, int(wait + 0.999)))
                await _send_json(
                    send,
                    429,
                    {"detail": f"too many requests; retry in {retry} s"},
                    [(b"retry-after", retry.encode())],
                )
                return
        if path in OWN_BODY_LIMIT_PATHS:
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(send)
                return
        # Bodies here are small (at most max_bytes): read the whole body first, so an oversize
        # one is refused before any route sees a byte of it, then hand it on in one message.
        parts: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._too_large(send)
                return
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(parts)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        await _send_json(
            send, 413, {"detail": f"request body larger than {self.max_bytes} bytes"}, []
        )
