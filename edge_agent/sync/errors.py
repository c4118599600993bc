"""Errors of sending records to the hub."""

from __future__ import annotations

from common.sync import BatchRejected
from edge_agent.errors import RetailCVError


class TransportError(RetailCVError):
    """A batch did not get an ack this time (network down, broker or hub unreachable, 5xx,
    timeout, no ack within the ack timeout). Retryable: the records stay pending and are sent
    again; the hub's ledger makes the re-send harmless."""


class BatchRejectedError(RetailCVError):
    """The hub refused a whole batch (it could not read the envelope, or it was too large).

    ``rejected.dead_letter_id`` is set when the hub kept the batch as a dead letter.
    """

    def __init__(self, rejected: BatchRejected) -> None:
        kept = (
            f"kept as dead letter {rejected.dead_letter_id}"
            if rejected.dead_letter_id is not None
            else "not kept"
        )
        super().__init__(f"hub rejected batch {rejected.batch_id}: {rejected.reason} ({kept})")
        self.rejected = rejected


class SyncError(RetailCVError):
    """Sync could not finish what it was asked to (e.g. drain the outbox in time)."""
