"""What goes from a camera's analytics into the outbox, for ``process`` and the live agent."""

from __future__ import annotations

import time
from collections.abc import Callable

from edge_agent.analytics.camera import AnalyticsOutput
from edge_agent.outbox.records import OutboxBody
from edge_agent.outbox.store import Outbox


class OutboxFeed:
    """Appends analytics output (events, closed rollups, heatmaps, shelf statuses) to
    ``outbox``, counts every
    record appended (gated snapshots too, through ``snapshot_appended``) and calls
    ``on_records`` after each append (to wake the syncer)."""

    def __init__(self, outbox: Outbox, on_records: Callable[[], None] | None = None) -> None:
        self.outbox = outbox
        self.on_records = on_records
        self.appended = 0

    def analytics(self, out: AnalyticsOutput) -> None:
        """Append what one analytics update produced (nothing when it produced nothing)."""
        records: list[OutboxBody] = [*out.events, *out.rollups, *out.heatmaps, *out.shelves]
        if records:
            self.appended += len(self.outbox.append(records, time.time()))
            self._notify()

    def snapshot_appended(self) -> None:
        """A snapshot sink appended one record."""
        self.appended += 1
        self._notify()

    def _notify(self) -> None:
        if self.on_records is not None:
            self.on_records()
