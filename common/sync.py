"""Sync wire contracts: what the edge outbox sends and what the hub answers.

A **record** is one outbox row: ``(device_id, seq)`` identifies it for ever (seq strictly
increases per device), ``kind`` says what its ``body`` is. A **batch** carries records of one
device; the hub answers with a **batch ack** only after the records are committed to its
database (a broker's PUBACK or an HTTP 200 before commit is not enough), naming every seq it now
holds: ``committed`` (ingested now or earlier, so a re-sent record is acknowledged again and
changes nothing) and ``dead_lettered`` (stored in the hub's dead-letter table with the reason,
because the hub cannot parse them). The edge marks both as delivered; nothing is lost, because
the hub keeps what it cannot parse.

The body is kept as a plain JSON object on the wire (not a parsed model) so that one record the
hub cannot parse (a newer schema version, say) dead-letters alone instead of failing its batch.
``parse_record_body`` turns a body into its typed model.

On the wire a batch is JSON, gzip-compressed (``encode_batch`` / ``decode_batch``): the same
bytes are an MQTT payload or an HTTP body with ``Content-Encoding: gzip``.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
from enum import StrEnum
from typing import Any, Literal

try:  # in the hub and edge extras; common/ itself needs only pydantic
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from common.telemetry import AnalyticsEvent, HeatmapRollup, Rollup, ShelfStatus, Snapshot

SYNC_SCHEMA_VERSION: Literal[1] = 1
MAX_BATCH_RECORDS = 5000
MAX_BATCH_BYTES = 8 * 1024 * 1024  # decompressed; the hub refuses larger batches
MAX_COMPRESSED_BATCH_BYTES = 2 * 1024 * 1024  # as sent (HTTP body or MQTT payload)

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class RecordKind(StrEnum):
    """What a record's body is, and so how the hub stores it."""

    ROLLUP = "rollup"  # common.telemetry.Rollup
    HEATMAP = "heatmap"  # common.telemetry.HeatmapRollup
    EVENT = "event"  # common.telemetry.AnalyticsEvent (crossings, visits, alerts)
    OUTBOX_DROPPED = "outbox_dropped"  # OutboxDropped: what the edge's bounds policy discarded
    SNAPSHOT = "snapshot"  # common.telemetry.Snapshot: a gated image (alert snapshot, heatmap)
    SHELF_STATUS = "shelf_status"  # common.telemetry.ShelfStatus: latest slot states of a shelf


class OutboxDropped(BaseModel):
    """The edge discarded records to stay within its outbox bounds (full disk, too old).

    Sent like any other record so the hub knows the seqs it will never receive are not lost in
    transit but were dropped on purpose, and how many of each kind.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SYNC_SCHEMA_VERSION
    reason: Literal["size", "age"]
    seq_ranges: list[tuple[int, int]] = Field(
        description="inclusive [first, last] seq ranges that were dropped, ascending"
    )
    counts: dict[str, int] = Field(description="dropped records per RecordKind value")
    dropped_at: float = Field(description="UNIX seconds UTC")

    @model_validator(mode="after")
    def _ranges_ascend(self) -> OutboxDropped:
        last = 0
        for a, b in self.seq_ranges:
            if a < 1 or b < a or a <= last:
                raise ValueError(f"seq_ranges must be ascending, disjoint, >= 1: {self.seq_ranges}")
            last = b
        total = sum(b - a + 1 for a, b in self.seq_ranges)
        if total != sum(self.counts.values()):
            raise ValueError(f"seq_ranges cover {total} seqs but counts add up to a different sum")
        return self


_BODY_MODEL: dict[RecordKind, type[BaseModel]] = {
    RecordKind.ROLLUP: Rollup,
    RecordKind.HEATMAP: HeatmapRollup,
    RecordKind.EVENT: AnalyticsEvent,
    RecordKind.OUTBOX_DROPPED: OutboxDropped,
    RecordKind.SNAPSHOT: Snapshot,
    RecordKind.SHELF_STATUS: ShelfStatus,
}

RecordBody = Rollup | HeatmapRollup | AnalyticsEvent | OutboxDropped | Snapshot | ShelfStatus


class SyncRecord(BaseModel):
    """One outbox record as sent: its seq, kind, creation time and raw JSON body."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = Field(ge=1)
    kind: str = Field(description="a RecordKind value; unknown kinds dead-letter at the hub")
    created_at: float = Field(description="UNIX seconds UTC when the edge wrote it")
    body: dict[str, Any]


class TelemetryBatch(BaseModel):
    """Records of one device, in ascending seq order, sent together."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SYNC_SCHEMA_VERSION
    batch_id: str = Field(min_length=1, max_length=64)
    store_id: str = Field(pattern=_ID)
    device_id: str = Field(pattern=_ID)
    sent_at: float = Field(description="UNIX seconds UTC")
    records: list[SyncRecord] = Field(max_length=MAX_BATCH_RECORDS)

    @model_validator(mode="after")
    def _ascending(self) -> TelemetryBatch:
        seqs = [r.seq for r in self.records]
        if any(b <= a for a, b in itertools.pairwise(seqs)):
            raise ValueError("records must be in strictly ascending seq order")
        return self


class DeadLetterNotice(BaseModel):
    """One record the hub stored in its dead-letter table instead of ingesting, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int
    reason: str


class BatchAck(BaseModel):
    """The hub's answer once a batch's records are committed (or dead-lettered) for good."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SYNC_SCHEMA_VERSION
    batch_id: str
    device_id: str
    committed: list[tuple[int, int]] = Field(
        default_factory=list, description="inclusive seq ranges the hub now holds"
    )
    duplicates: int = Field(0, ge=0, description="records of this batch the hub already had")
    dead_lettered: list[DeadLetterNotice] = Field(default_factory=list)

    def delivered_seqs(self) -> list[int]:
        """Every seq the edge may now mark as delivered (committed or dead-lettered)."""
        seqs = [s for a, b in self.committed for s in range(a, b + 1)]
        seqs.extend(d.seq for d in self.dead_lettered)
        return sorted(seqs)


class BatchRejected(BaseModel):
    """The hub refused a whole batch (it could not even read the envelope); stored as a dead
    letter with this reason. Sent as the HTTP error body, or on the ack topic over MQTT."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SYNC_SCHEMA_VERSION
    batch_id: str | None = None
    reason: str
    dead_letter_id: int | None = None


def seq_ranges(seqs: list[int]) -> list[tuple[int, int]]:
    """Compress sorted, distinct seqs into inclusive ranges: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    out: list[tuple[int, int]] = []
    for s in seqs:
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def parse_record_body(record: SyncRecord) -> RecordBody:
    """The typed body of ``record``.

    Raises:
        ValueError: unknown kind, or the body does not validate (the message says which field).
    """
    try:
        kind = RecordKind(record.kind)
    except ValueError:
        raise ValueError(f"unknown record kind {record.kind!r}") from None
    model = _BODY_MODEL[kind]
    try:
        body = model.model_validate(record.body)
    except ValidationError as exc:
        raise ValueError(f"{kind.value} body does not validate: {_short(exc)}") from None
    assert isinstance(body, RecordBody)
    return body


def encode_batch(batch: TelemetryBatch) -> bytes:
    """gzip-compressed JSON of ``batch`` (the MQTT payload and HTTP body)."""
    return gzip.compress(batch.model_dump_json().encode(), compresslevel=5, mtime=0)


class BatchDecodeError(ValueError):
    """A payload is not a readable batch; ``batch_id`` is set when it could be recovered."""

    def __init__(self, reason: str, batch_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.batch_id = batch_id


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name}")


def _strict_loads(raw: bytes) -> Any:
    """JSON without NaN / Infinity (orjson when installed: the hub and edge extras have it)."""
    if orjson is None:
        return json.loads(raw, parse_constant=_reject_constant)
    return orjson.loads(raw)


def decode_batch(payload: bytes, max_bytes: int = MAX_BATCH_BYTES) -> TelemetryBatch:
    """Parse a (gzip-compressed or plain) JSON batch, refusing more than ``max_bytes`` once
    decompressed.

    Raises:
        BatchDecodeError: not gzip/JSON, too large, or an envelope that does not validate.
    """
    return decode_batch_checked(payload, max_bytes)[0]


def decode_batch_checked(
    payload: bytes, max_bytes: int = MAX_BATCH_BYTES
) -> tuple[TelemetryBatch, bool]:
    """``decode_batch``, and whether the payload was strict JSON (no NaN or Infinity anywhere,
    so no record body needs checking for them).

    Raises:
        BatchDecodeError: not gzip/JSON, too large, or an envelope that does not validate.
    """
    raw = payload
    if payload[:2] == b"\x1f\x8b":
        try:
            d = gzip.GzipFile(fileobj=io.BytesIO(payload))
            raw = d.read(max_bytes + 1)
        except (OSError, EOFError) as exc:
            raise BatchDecodeError(f"payload is not valid gzip: {exc}") from None
    if len(raw) > max_bytes:
        raise BatchDecodeError(f"batch is larger than {max_bytes} bytes decompressed")
    strict = True
    try:
        data = _strict_loads(raw)
    except (ValueError, RecursionError):
        # NaN/Infinity (dead-lettered per record by the hub), or beyond the fast parser.
        strict = False
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise BatchDecodeError(f"payload is not JSON: {exc}") from None
    batch_id = data.get("batch_id") if isinstance(data, dict) else None
    if not isinstance(batch_id, str):
        batch_id = None
    if isinstance(data, dict) and data.get("schema_version") != SYNC_SCHEMA_VERSION:
        raise BatchDecodeError(
            f"unknown batch schema_version {data.get('schema_version')!r} "
            f"(this hub reads {SYNC_SCHEMA_VERSION})",
            batch_id,
        )
    try:
        return TelemetryBatch.model_validate(data), strict
    except ValidationError as exc:
        reason = f"batch envelope does not validate: {_short(exc)}"
        raise BatchDecodeError(reason, batch_id) from None


def _short(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(x) for x in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - 3
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
