"""Batches to the hub over HTTP: ``POST /api/v1/ingest/telemetry``, gzip body, ack in reply.

The hub answers 200 with the ``BatchAck`` only after its database commit; 400 with a
``BatchRejected`` it kept as a dead letter; 413 when the body is too large (nothing kept);
503 while its database is down. Anything but 200, 400 and 413 is retryable.
"""

from __future__ import annotations

import logging
from types import TracebackType

import httpx
from pydantic import ValidationError

from common.sync import BatchAck, BatchRejected, TelemetryBatch, encode_batch
from edge_agent.sync.errors import BatchRejectedError, TransportError
from edge_agent.sync.transport import LateAckHandler

log = logging.getLogger(__name__)

INGEST_PATH = "/api/v1/ingest/telemetry"


class HttpTransport:
    """POSTs batches to the hub at ``base_url`` (e.g. ``https://hub.example.com``).

    ``timeout_s`` bounds connecting, sending and waiting for the ack (seconds); ``headers``
    go with every request (a device token, say).
    """

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 30.0,
        headers: dict[str, str] | None = None,
        verify: bool | str = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url, timeout=timeout_s, headers=headers, verify=verify
        )

    def send(self, batch: TelemetryBatch) -> BatchAck:
        """POST ``batch`` and return the hub's ack.

        Raises:
            TransportError: the hub is unreachable, timed out, answered 5xx or another
                unexpected status, or an ack that does not match the batch.
            BatchRejectedError: 400 or 413 (the BatchRejected says why).
        """
        url = self.base_url + INGEST_PATH
        try:
            resp = self._client.post(
                INGEST_PATH,
                content=encode_batch(batch),
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            )
        except httpx.HTTPError as exc:
            raise TransportError(f"hub {url} unreachable: {type(exc).__name__}: {exc}") from exc
        if resp.status_code == 200:
            try:
                ack = BatchAck.model_validate_json(resp.content)
            except ValidationError as exc:
                raise TransportError(f"hub {url} answered 200 without a BatchAck: {exc}") from exc
            if ack.batch_id != batch.batch_id or ack.device_id != batch.device_id:
                raise TransportError(
                    f"hub {url} acked batch {ack.batch_id} of device {ack.device_id}, "
                    f"not batch {batch.batch_id} of device {batch.device_id}"
                )
            return ack
        if resp.status_code in (400, 413):
            raise BatchRejectedError(_rejection(resp, batch.batch_id))
        raise TransportError(f"hub {url} answered HTTP {resp.status_code}: {resp.text[:200]}")

    def hub_max_seq(self, device_id: str) -> int:
        """The highest seq the hub holds of ``device_id`` (0 when it has none), for
        ``Outbox.resume_above`` at start.

        Raises:
            TransportError: the hub is unreachable or answers something unexpected.
        """
        path = f"/api/v1/devices/{device_id}/sync"
        try:
            resp = self._client.get(path)
        except httpx.HTTPError as exc:
            raise TransportError(f"hub {self.base_url} unreachable: {exc}") from exc
        if resp.status_code == 404:
            return 0
        try:
            resp.raise_for_status()
            value = resp.json()["max_seq"]
        except (httpx.HTTPStatusError, ValueError, KeyError, TypeError) as exc:
            raise TransportError(
                f"hub {self.base_url}{path} answered {resp.status_code}: {resp.text[:200]}"
            ) from exc
        if not isinstance(value, int) or value < 0:
            raise TransportError(f"hub {self.base_url}{path}: max_seq {value!r} is not a seq")
        return value

    def set_late_ack_handler(self, handler: LateAckHandler | None) -> None:
        """HTTP has no late acks: the reply is the ack."""

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> HttpTransport:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _rejection(resp: httpx.Response, batch_id: str) -> BatchRejected:
    """The BatchRejected body of a 400/413, or one made from the status when the body is not
    one (a proxy's 413 page, say)."""
    try:
        return BatchRejected.model_validate_json(resp.content)
    except ValidationError:
        return BatchRejected(
            batch_id=batch_id, reason=f"HTTP {resp.status_code}: {resp.text[:200]}"
        )
