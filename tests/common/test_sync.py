"""Sync wire contracts: batch encoding, what decoding refuses, acks, body parsing, topics."""

from __future__ import annotations

import gzip
import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.sync import (
    MAX_BATCH_RECORDS,
    BatchAck,
    BatchDecodeError,
    DeadLetterNotice,
    OutboxDropped,
    RecordKind,
    SyncRecord,
    TelemetryBatch,
    decode_batch,
    encode_batch,
    parse_record_body,
    seq_ranges,
)
from common.telemetry import Rollup
from common.topics import DeviceTopics, hub_telemetry_subscription, parse_device_topic

ROLLUP = Rollup(
    store_id="s1",
    camera_id="cam",
    target_id="door",
    metric="line_in",
    bucket_start=1_700_000_040,
    interval_s=60,
    kind="counter",
    count=4,
)


def _batch(seqs: list[int], kind: str = "rollup", body: dict | None = None) -> TelemetryBatch:
    body = body if body is not None else ROLLUP.model_dump(mode="json")
    return TelemetryBatch(
        batch_id="b1",
        store_id="s1",
        device_id="d1",
        sent_at=1_700_000_100.0,
        records=[SyncRecord(seq=s, kind=kind, created_at=1.0, body=body) for s in seqs],
    )


def test_batch_round_trips_through_gzip_and_plain_json() -> None:
    batch = _batch([1, 2, 5])
    payload = encode_batch(batch)
    assert payload[:2] == b"\x1f\x8b"
    assert decode_batch(payload) == batch
    assert decode_batch(batch.model_dump_json().encode()) == batch
    assert parse_record_body(decode_batch(payload).records[2]) == ROLLUP


def test_decode_refuses_garbage_with_a_reason() -> None:
    with pytest.raises(BatchDecodeError, match="not JSON"):
        decode_batch(b"hello")
    with pytest.raises(BatchDecodeError, match="not valid gzip"):
        decode_batch(b"\x1f\x8b" + b"\x00" * 20)


def test_decode_names_unknown_schema_version_and_keeps_batch_id() -> None:
    data = json.loads(_batch([1]).model_dump_json()) | {"schema_version": 2}
    with pytest.raises(BatchDecodeError, match="schema_version 2") as err:
        decode_batch(json.dumps(data).encode())
    assert err.value.batch_id == "b1"


def test_decode_refuses_oversize_before_inflating_it_all() -> None:
    bomb = gzip.compress(b"[" + b" " * 50_000_000 + b"]")
    assert len(bomb) < 100_000
    with pytest.raises(BatchDecodeError, match="larger than"):
        decode_batch(bomb, max_bytes=1_000_000)


def test_batch_refuses_unordered_or_repeated_seqs() -> None:
    with pytest.raises(ValueError, match="ascending"):
        _batch([2, 1])
    with pytest.raises(ValueError, match="ascending"):
        _batch([3, 3])
    with pytest.raises(ValueError):
        _batch(list(range(1, MAX_BATCH_RECORDS + 2)))


def test_parse_record_body_names_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="unknown record kind 'selfie'"):
        parse_record_body(_batch([1], kind="selfie").records[0])
    newer = ROLLUP.model_dump(mode="json") | {"schema_version": 2}
    with pytest.raises(ValueError, match="schema_version"):
        parse_record_body(_batch([1], body=newer).records[0])
    bad = ROLLUP.model_dump(mode="json") | {"count": -1}
    with pytest.raises(ValueError, match="count"):
        parse_record_body(_batch([1], body=bad).records[0])


def test_outbox_dropped_counts_must_match_ranges() -> None:
    ok = OutboxDropped(
        reason="size", seq_ranges=[(3, 5), (9, 9)], counts={"event": 3, "heatmap": 1}, dropped_at=1
    )
    body = parse_record_body(
        SyncRecord(seq=10, kind=RecordKind.OUTBOX_DROPPED, created_at=1.0, body=ok.model_dump())
    )
    assert body == ok
    with pytest.raises(ValueError, match="cover 4 seqs"):
        OutboxDropped(reason="age", seq_ranges=[(3, 5), (9, 9)], counts={"event": 3}, dropped_at=1)
    with pytest.raises(ValueError, match="ascending"):
        OutboxDropped(reason="age", seq_ranges=[(9, 9), (3, 5)], counts={"event": 4}, dropped_at=1)


@given(st.sets(st.integers(min_value=1, max_value=500), max_size=60))
def test_seq_ranges_cover_exactly_the_seqs(seqs: set[int]) -> None:
    ranges = seq_ranges(sorted(seqs))
    covered = [s for a, b in ranges for s in range(a, b + 1)]
    assert covered == sorted(seqs)
    # ranges are maximal: two neighbours never touch
    assert all(start > end + 1 for (_, end), (start, _) in itertools.pairwise(ranges))


def test_ack_delivered_seqs_include_dead_letters() -> None:
    ack = BatchAck(
        batch_id="b1",
        device_id="d1",
        committed=[(1, 3), (6, 6)],
        dead_lettered=[DeadLetterNotice(seq=4, reason="unknown record kind 'x'")],
    )
    assert ack.delivered_seqs() == [1, 2, 3, 4, 6]


def test_topics_round_trip_and_shared_subscription() -> None:
    t = DeviceTopics("store-7", "box-1")
    assert parse_device_topic(t.telemetry) == ("store-7", "box-1", "telemetry")
    assert parse_device_topic(t.ack) == ("store-7", "box-1", "ack")
    assert hub_telemetry_subscription() == "$share/hub/retail/v1/+/+/telemetry"
    with pytest.raises(ValueError, match="not a device topic"):
        parse_device_topic("retail/v1/store-7/telemetry")
