"""What the syncer needs from a way of reaching the hub (HTTP or MQTT)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from common.sync import BatchAck, TelemetryBatch

LateAckHandler = Callable[[BatchAck], None]


class Transport(Protocol):
    """Sends one batch and returns the hub's ack, given only after the hub's commit."""

    def send(self, batch: TelemetryBatch) -> BatchAck:
        """Send ``batch`` and wait for its ack.

        Raises:
            TransportError: no ack this time (retryable).
            BatchRejectedError: the hub refused the batch.
        """
        ...

    def set_late_ack_handler(self, handler: LateAckHandler | None) -> None:
        """Where acks go that arrive after ``send`` gave up waiting (MQTT); HTTP has none."""
        ...
