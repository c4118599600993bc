"""Errors the outbox raises at its boundary."""

from __future__ import annotations

from edge_agent.errors import RetailCVError


class OutboxError(RetailCVError):
    """The outbox database cannot be opened, read or written (wrong device, corrupt file)."""


class OutboxFullError(OutboxError):
    """The disk holding the outbox is full, even after dropping records by the bounds policy.

    Nothing already in the outbox is lost or corrupted; the records of the failed append were
    not stored. Free space on the disk (or lower ``outbox.max_bytes``) to recover.
    """
