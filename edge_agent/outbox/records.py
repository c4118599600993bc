"""How an outbox row stores a record: its kind, drop priority and compressed JSON body.

Bodies are compact JSON (``None`` fields left out: every optional field defaults to null, so
the hub parses the same model) compressed with raw deflate and a preset dictionary of the
field names and values every body repeats. Small bodies (rollups, events: ~200 bytes of JSON)
shrink about five-fold, where plain zlib gains little on them; heatmaps shrink about
eight-fold. Each row names its codec, so a later dictionary is a new codec and old rows stay
readable.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from common.sync import OutboxDropped, RecordKind
from common.telemetry import (
    AnalyticsEvent,
    EventKind,
    HeatmapRollup,
    Rollup,
    ShelfStatus,
    Snapshot,
)

OutboxBody = Rollup | HeatmapRollup | AnalyticsEvent | OutboxDropped | Snapshot | ShelfStatus


class Priority(IntEnum):
    """Drop order when the outbox is over its size bound: lowest first, oldest first within."""

    SNAPSHOT = -1  # gated images: the largest records, and the numbers do not need them
    RAW_EVENT = 0  # line crossings and visits: the rollups already count them
    HEATMAP = 1
    SUMMARY = 2  # rollups, alert events and shelf statuses
    DROP_NOTICE = 3  # OutboxDropped: how the hub learns what is gone


class Codec(IntEnum):
    """How a row's body bytes encode its JSON."""

    JSON = 0  # plain UTF-8 JSON
    DEFLATE_DICT_V1 = 1  # raw deflate (wbits -15) with PRESET_DICTIONARY_V1


# Fragments every body repeats, most frequent last (deflate codes nearer matches shorter).
# Never edit: rows written with Codec.DEFLATE_DICT_V1 need these exact bytes to decompress.
PRESET_DICTIONARY_V1 = (
    b'"grid_w":32,"grid_h":18,"person_seconds":[0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,'
    b"0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,"
    b'{"schema_version":1,"reason":"size","seq_ranges":[[1,2]],"counts":{"event":1,'
    b'"heatmap":1,"rollup":1,"outbox_dropped":1},"dropped_at":1700000000.0}'
    b'"kind":"alert_raised","kind":"alert_cleared","payload":{"rule_id":"","op":">=",'
    b'"threshold":5.0,"clear_threshold":3.0,"value":'
    b'"kind":"visit","payload":{"zone_kind":"queue","zone_kind":"dwell","entered_at":'
    b'1700000000.0,"dwell_s":1.0,"engaged":false},"engaged":true}'
    b'{"schema_version":1,"kind":"line_crossing","store_id":"store-1","camera_id":"cam-1",'
    b'"target_id":"door","occurred_at":1700000000.0,"track_id":1,"payload":{"direction":"out"}}'
    b'"payload":{"direction":"in"}}'
    b'"metric":"people","metric":"line_in","metric":"line_out","metric":"occupancy",'
    b'"metric":"queue_length","metric":"queue_wait_s","metric":"served","metric":"engaged",'
    b'"metric":"visits","metric":"pass_bys","metric":"dwell_s",'
    b'"histogram_edges":[2.0,5.0,10.0,30.0,60.0,120.0,300.0,600.0],"histogram":[0,0,0,0,0,0,0,'
    b"0,0]}"
    b'"kind":"samples","count":1,"sum":0.0,"min":0.0,"max":0.0}'
    b'{"schema_version":1,"store_id":"store-1","camera_id":"cam-1","target_id":"cam-1",'
    b'"metric":"line_in","bucket_start":1700000000,"interval_s":60,"kind":"counter","count":0}'
)


def classify(body: OutboxBody) -> tuple[RecordKind, Priority]:
    """The record kind of ``body`` and its drop priority."""
    if isinstance(body, Rollup):
        return RecordKind.ROLLUP, Priority.SUMMARY
    if isinstance(body, HeatmapRollup):
        return RecordKind.HEATMAP, Priority.HEATMAP
    if isinstance(body, OutboxDropped):
        return RecordKind.OUTBOX_DROPPED, Priority.DROP_NOTICE
    if isinstance(body, Snapshot):
        return RecordKind.SNAPSHOT, Priority.SNAPSHOT
    if isinstance(body, ShelfStatus):
        return RecordKind.SHELF_STATUS, Priority.SUMMARY
    if body.kind in (EventKind.ALERT_RAISED, EventKind.ALERT_CLEARED):
        return RecordKind.EVENT, Priority.SUMMARY
    return RecordKind.EVENT, Priority.RAW_EVENT


@dataclass(frozen=True, slots=True)
class EncodedRecord:
    """One record ready for its row: kind, priority, codec, stored bytes, JSON length."""

    kind: RecordKind
    priority: Priority
    codec: Codec
    blob: bytes
    json_size: int  # bytes of the uncompressed JSON body (what a batch carries)


def encode(body: OutboxBody, codec: Codec = Codec.DEFLATE_DICT_V1) -> EncodedRecord:
    """Compact JSON of ``body``, compressed with ``codec``."""
    kind, priority = classify(body)
    raw = body.model_dump_json(exclude_none=True).encode()
    return EncodedRecord(kind, priority, codec, compress(raw, codec), len(raw))


def compress(raw: bytes, codec: Codec) -> bytes:
    """``raw`` JSON bytes as stored under ``codec``."""
    if codec is Codec.JSON:
        return raw
    c = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, PRESET_DICTIONARY_V1)
    return c.compress(raw) + c.flush()


_loads: Callable[[bytes], Any]
try:  # orjson: several times faster on the drain of a long backlog; json otherwise
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is in the edge extra
    _loads = json.loads


def decode(blob: bytes, codec: int) -> dict[str, Any]:
    """The JSON object a row stores.

    Raises:
        ValueError: unknown codec, or bytes that do not decompress to a JSON object.
    """
    if codec == Codec.JSON:
        raw = blob
    elif codec == Codec.DEFLATE_DICT_V1:
        try:
            d = zlib.decompressobj(-15, PRESET_DICTIONARY_V1)
            raw = d.decompress(blob) + d.flush()
        except zlib.error as exc:
            raise ValueError(f"body does not decompress: {exc}") from None
    else:
        raise ValueError(f"unknown body codec {codec} (written by a newer edge agent?)")
    value = _loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"body is JSON {type(value).__name__}, not an object")
    return value
