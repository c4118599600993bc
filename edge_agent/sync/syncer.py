"""The sync loop: pending outbox records to the hub in batches, marked delivered on its ack.

Delivery is at least once: a record leaves the outbox only when a hub ack names it (committed
or dead-lettered). A batch that got no ack is sent again, possibly over another transport
(switching MQTT <-> HTTP is a new ``Syncer`` over the same outbox); the hub's ledger answers
the re-sent records as duplicates, so the effect is exactly once.

``run`` drains as fast as the hub acks while there is a backlog, polls every ``idle_s`` when
the outbox is empty (``notify()`` wakes it early) and, after a failure, backs off
exponentially with full jitter (a uniform draw in ``[0, min(cap, initial * factor**n)]``), so
a fleet of boxes coming back after a hub outage does not retry in step. Each change between
working and failing is logged once, not every retry.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from common.sync import (
    MAX_BATCH_RECORDS,
    MAX_COMPRESSED_BATCH_BYTES,
    BatchAck,
    SyncRecord,
    TelemetryBatch,
    encode_batch,
    seq_ranges,
)
from edge_agent.outbox import Outbox, OutboxError
from edge_agent.sources.backoff import BackoffPolicy, backoff_delay
from edge_agent.sync.errors import BatchRejectedError, SyncError, TransportError
from edge_agent.sync.transport import Transport

log = logging.getLogger(__name__)

DEFAULT_BACKOFF = BackoffPolicy(initial_s=1.0, factor=2.0, cap_s=60.0, jitter_s=0.0)
# A batch is split until its gzip payload is at most this: well under what the hub accepts.
TARGET_COMPRESSED_BYTES = MAX_COMPRESSED_BATCH_BYTES // 2
_RECORD_ENVELOPE_BYTES = 80  # {"seq":..,"kind":"..","created_at":..,"body":} around a body


def full_jitter_delay(attempt: int, policy: BackoffPolicy, draw: float) -> float:
    """Seconds before retry ``attempt`` (0-based): ``draw`` (uniform in [0, 1]) times the
    capped exponential delay. ``policy.jitter_s`` is not used: the jitter is the whole delay."""
    return draw * backoff_delay(attempt, policy, 0.0)


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What one batch did.

    Attributes:
        sent: records in the batch (0: nothing was pending).
        delivered: records the ack let the outbox delete.
        duplicates: records of the batch the hub already had.
        dead_lettered: records the hub stored as dead letters (delivered, logged).
    """

    sent: int = 0
    delivered: int = 0
    duplicates: int = 0
    dead_lettered: int = 0

    def __add__(self, other: SyncResult) -> SyncResult:
        return SyncResult(
            self.sent + other.sent,
            self.delivered + other.delivered,
            self.duplicates + other.duplicates,
            self.dead_lettered + other.dead_lettered,
        )


class Syncer:
    """Sends one outbox's records through one transport; a thread with ``start``/``stop``.

    ``clock`` gives UNIX seconds (the batches' ``sent_at``); ``batch_records`` and
    ``batch_bytes`` (JSON bytes of the bodies) bound a batch; ``idle_s`` is the poll interval
    when nothing is pending.
    """

    def __init__(
        self,
        outbox: Outbox,
        transport: Transport,
        clock: Callable[[], float] = time.time,
        batch_records: int = 1000,
        batch_bytes: int = 1024 * 1024,
        backoff: BackoffPolicy = DEFAULT_BACKOFF,
        idle_s: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        if not 1 <= batch_records <= MAX_BATCH_RECORDS:
            raise ValueError(f"batch_records must be 1-{MAX_BATCH_RECORDS}, got {batch_records}")
        if batch_bytes < 1:
            raise ValueError(f"batch_bytes must be >= 1, got {batch_bytes}")
        self.outbox = outbox
        self.transport = transport
        self.clock = clock
        self.batch_records = batch_records
        self.batch_bytes = batch_bytes
        self.backoff = backoff
        self.idle_s = idle_s
        self._rng = rng or random.Random()
        self._limit = batch_records  # shrinks while the hub rejects batches as too large
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.totals = SyncResult()
        transport.set_late_ack_handler(self._on_late_ack)

    # -- one batch ------------------------------------------------------------------------

    def sync_once(self) -> SyncResult:
        """Send one batch of the oldest pending records; mark what the ack names delivered.

        Raises:
            TransportError: no ack this time; the records stay pending.
            BatchRejectedError: the hub refused the batch. When it kept the batch as a dead
                letter of a single record, that record is marked delivered (the hub holds it);
                otherwise the records stay pending and later batches are halved, down to one
                record, so a batch that is too large or holds one bad record gets through or
                is isolated.
            OutboxError: the outbox cannot be read or written.
        """
        records, json_bytes = self.outbox.pending_sized(self._limit, self.batch_bytes)
        if not records:
            return SyncResult()
        batch = self._batch(records, json_bytes)
        try:
            ack = self.transport.send(batch)
        except BatchRejectedError as exc:
            self._on_rejected(batch, exc)
            raise
        result = self._apply(ack, batch)
        self._limit = min(self.batch_records, self._limit * 2)
        self.totals = self.totals + result
        return result

    def _batch(self, records: list[SyncRecord], json_bytes: int | None = None) -> TelemetryBatch:
        """A batch of the first of ``records`` (whose bodies are ``json_bytes`` of JSON, when
        known), halved until its payload is small enough."""
        while True:
            batch = TelemetryBatch(
                batch_id=uuid.uuid4().hex,
                store_id=self.outbox.store_id,
                device_id=self.outbox.device_id,
                sent_at=self.clock(),
                records=records,
            )
            if json_bytes is not None:  # gzip never grows JSON by more than ~0.1 %
                bound = int((json_bytes + len(records) * _RECORD_ENVELOPE_BYTES) * 1.002) + 64
                json_bytes = None  # unknown once halved
            else:
                bound = self._estimate(records)
            if len(records) == 1 or bound <= TARGET_COMPRESSED_BYTES:
                return batch
            if len(encode_batch(batch)) <= TARGET_COMPRESSED_BYTES:
                return batch
            records = records[: len(records) // 2]

    @staticmethod
    def _estimate(records: list[SyncRecord]) -> int:
        """Upper bound of the JSON bytes (gzip only shrinks JSON this size)."""
        return sum(len(str(r.body)) + _RECORD_ENVELOPE_BYTES for r in records)

    def _apply(self, ack: BatchAck, batch: TelemetryBatch) -> SyncResult:
        """Mark what ``ack`` names delivered; log dead letters and anything left out."""
        delivered = ack.delivered_seqs()
        for d in ack.dead_lettered:
            log.warning(
                "device %s: hub dead-lettered record seq %d: %s",
                self.outbox.device_id,
                d.seq,
                d.reason,
            )
        missing = sorted({r.seq for r in batch.records} - set(delivered))
        if missing:
            log.warning(
                "device %s: hub ack of batch %s leaves out seqs %s; they stay pending",
                self.outbox.device_id,
                batch.batch_id,
                seq_ranges(missing),
            )
        n = self.outbox.mark_delivered(delivered)
        return SyncResult(len(batch.records), n, ack.duplicates, len(ack.dead_lettered))

    def _on_rejected(self, batch: TelemetryBatch, exc: BatchRejectedError) -> None:
        seqs = [r.seq for r in batch.records]
        kept = exc.rejected.dead_letter_id is not None
        if kept and len(seqs) == 1:
            self.outbox.mark_delivered(seqs)
            log.error(
                "device %s: hub refused record seq %d and kept it as dead letter %d: %s; "
                "marked delivered",
                self.outbox.device_id,
                seqs[0],
                exc.rejected.dead_letter_id,
                exc.rejected.reason,
            )
            return
        self._limit = max(1, len(seqs) // 2)
        log.error(
            "device %s: hub refused batch %s (%d records, seqs %s): %s; retrying in batches of %d",
            self.outbox.device_id,
            batch.batch_id,
            len(seqs),
            seq_ranges(seqs),
            exc.rejected.reason,
            self._limit,
        )

    def _on_late_ack(self, ack: BatchAck) -> None:
        """An ack of a batch ``send`` gave up on (network thread): mark its records."""
        if ack.device_id != self.outbox.device_id:
            log.error(
                "ack of batch %s names device %s, not %s: ignored",
                ack.batch_id,
                ack.device_id,
                self.outbox.device_id,
            )
            return
        n = self.outbox.mark_delivered(ack.delivered_seqs())
        log.info("late ack of batch %s: %d more records delivered", ack.batch_id, n)

    # -- loops ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Sync until ``stop`` is set: drain while there is a backlog, poll when idle, back
        off after failures."""
        failures = 0
        failing: str | None = None  # the kind of error we are failing with, for the log
        while not stop.is_set():
            try:
                result = self.sync_once()
            except (TransportError, BatchRejectedError, OutboxError) as exc:
                kind = type(exc).__name__
                if kind != failing:
                    log.warning(
                        "device %s: sync failing: %s (retrying with backoff)",
                        self.outbox.device_id,
                        exc,
                    )
                else:
                    log.debug("sync retry %d failed: %s", failures, exc)
                failing = kind
                delay = full_jitter_delay(failures, self.backoff, self._rng.random())
                failures += 1
                stop.wait(delay)
                continue
            if failing is not None:
                log.warning(
                    "device %s: sync working again after %d failed attempts",
                    self.outbox.device_id,
                    failures,
                )
                failing, failures = None, 0
            if result.sent == 0:
                self._wake.wait(self.idle_s)
                self._wake.clear()

    def drain(self, timeout_s: float) -> SyncResult:
        """Sync until nothing is pending (retrying failures with backoff); the totals sent.

        Raises:
            SyncError: records are still pending after ``timeout_s`` seconds (the message
                says how many and the last error).
        """
        deadline = time.monotonic() + timeout_s
        total = SyncResult()
        failures = 0
        last_error: Exception | None = None
        while True:
            try:
                result = self.sync_once()
            except (TransportError, BatchRejectedError) as exc:
                last_error = exc
                delay = full_jitter_delay(failures, self.backoff, self._rng.random())
                failures += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(delay, left))
                continue
            total = total + result
            failures = 0
            if result.sent == 0:
                return total
            if time.monotonic() >= deadline:
                break
        pending = self.outbox.stats(self.clock()).pending_count
        raise SyncError(
            f"device {self.outbox.device_id}: {pending} records still pending after "
            f"{timeout_s} s; last error: {last_error}"
        )

    def notify(self) -> None:
        """Records were appended: end an idle wait now."""
        self._wake.set()

    def start(self) -> None:
        """Run in a background thread until ``stop()``."""
        if self._thread is not None:
            raise RuntimeError("syncer already started")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, args=(self._stop,), name=f"sync-{self.outbox.device_id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the thread (after the batch in flight, at most ``timeout_s`` seconds)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("sync thread still busy after %.0f s; left to finish", timeout_s)
            self._thread = None
        self.transport.set_late_ack_handler(None)
