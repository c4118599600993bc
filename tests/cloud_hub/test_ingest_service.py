"""The ingest service on a real SQLite file and a real PostgreSQL database (migrated by Alembic).

Each test feeds batches through ``ingest_payload`` (the entry point of both transports) and
reads back what the tables hold.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading

from pydantic import BaseModel
from sqlalchemy import Engine

from cloud_hub.services.dead_letters import RAW_LIMIT_BYTES
from cloud_hub.services.payloads import ingest_payload
from common.sync import (
    BatchAck,
    BatchRejected,
    OutboxDropped,
    SyncRecord,
    TelemetryBatch,
    encode_batch,
)
from tests.cloud_hub.batches import (
    T0,
    batch,
    count,
    counter,
    crossing,
    dead_letters,
    device,
    heatmap,
    heatmaps,
    numbered,
    record,
    rollups,
    samples,
)

NOW = float(T0 + 120)


def ingest(engine: Engine, b: TelemetryBatch, now: float = NOW) -> BatchAck:
    """Ingest ``b`` gzip-encoded; the ack (fails the test on a rejection)."""
    result = ingest_payload(engine, encode_batch(b), now)
    assert isinstance(result, BatchAck), result
    return result


def test_new_batch_lands_in_every_table_and_the_ack_names_every_seq(hub_db: Engine) -> None:
    dropped = OutboxDropped(reason="age", seq_ranges=[(1, 3)], counts={"rollup": 3}, dropped_at=5.0)
    bodies = [
        counter(4),
        samples([1.5, 2.5, 8.0], edges=[2.0, 5.0]),
        heatmap([1.0, 0.0, 2.5, 0.5]),
        crossing(7, T0 + 3.5),
        dropped,
    ]
    ack = ingest(hub_db, batch(numbered(bodies, first_seq=4)))

    assert ack.committed == [(4, 8)]
    assert ack.duplicates == 0 and ack.dead_lettered == []
    stored = rollups(hub_db)
    assert stored[("door", "line_in", T0)]["count"] == 4
    till = stored[("till", "dwell_s", T0)]
    assert (till["count"], till["sum"], till["min"], till["max"]) == (3, 12.0, 1.5, 8.0)
    assert till["histogram"] == [1, 1, 1] and till["histogram_edges"] == [2.0, 5.0]
    assert heatmaps(hub_db) == {("cam1", T0): [1.0, 0.0, 2.5, 0.5]}
    assert count(hub_db, "events", "track_id = 7 AND occurred_at = :t", t=T0 + 3.5) == 1
    assert count(hub_db, "outbox_drops", "seq = 8") == 1
    dev = device(hub_db)
    assert (dev["records_received"], dev["max_seq"], dev["dropped_at_edge"]) == (5, 8, 3)
    assert (dev["store_id"], dev["last_seen"], dev["last_batch_at"]) == ("s1", NOW, T0 + 60)


def test_the_same_batch_twice_is_acknowledged_again_and_changes_nothing(hub_db: Engine) -> None:
    b = batch(numbered([counter(4), samples([3.0]), heatmap([1.0, 1.0]), crossing(1, T0 + 1)]))
    first = ingest(hub_db, b)
    before = (rollups(hub_db), heatmaps(hub_db), count(hub_db, "events"))

    again = ingest(hub_db, b, now=NOW + 30)

    assert again.committed == first.committed == [(1, 4)]
    assert again.duplicates == 4 and first.duplicates == 0
    assert (rollups(hub_db), heatmaps(hub_db), count(hub_db, "events")) == before
    dev = device(hub_db)
    assert (dev["records_received"], dev["duplicates_received"]) == (4, 4)
    assert dev["last_seen"] == NOW + 30


def test_partial_buckets_merge_across_batches_and_within_one(hub_db: Engine) -> None:
    # An agent restarted mid-minute: two partials of each bucket under different seqs.
    edges = [2.0, 5.0]
    ingest(hub_db, batch(numbered([counter(3), samples([1.0, 6.0], edges), heatmap([1, 2, 3, 4])])))
    ingest(
        hub_db,
        batch(
            numbered(
                [
                    counter(4),
                    counter(2),  # a third partial in the same batch: pre-merged
                    samples([0.5, 3.0, 9.5], edges),
                    heatmap([0.5, 0.5, 0.5, 0.5]),
                ],
                first_seq=10,
            )
        ),
    )
    stored = rollups(hub_db)
    assert stored[("door", "line_in", T0)]["count"] == 3 + 4 + 2
    till = stored[("till", "dwell_s", T0)]
    values = [1.0, 6.0, 0.5, 3.0, 9.5]
    assert till["count"] == len(values) and till["sum"] == sum(values)
    assert (till["min"], till["max"]) == (min(values), max(values))
    assert till["histogram"] == samples(values, edges).histogram
    assert heatmaps(hub_db)[("cam1", T0)] == [1.5, 2.5, 3.5, 4.5]


def test_partials_that_cannot_merge_are_dead_lettered_and_the_stored_bucket_kept(
    hub_db: Engine,
) -> None:
    ingest(hub_db, batch(numbered([counter(3), samples([1.0], [2.0]), heatmap([1, 1, 1, 1])])))
    ack = ingest(
        hub_db,
        batch(
            numbered(
                [
                    samples([4.0], target="door", metric="line_in"),  # a counter at the hub
                    samples([1.0], [3.0]),  # other histogram edges
                    heatmap([1, 1, 1, 1], grid_w=4),  # other grid
                    counter(5, target="exit"),  # fine
                ],
                first_seq=10,
            )
        ),
    )
    reasons = {n.seq: n.reason for n in ack.dead_lettered}
    assert set(reasons) == {10, 11, 12}
    assert "counter" in reasons[10] and "samples" in reasons[10]
    assert "histogram_edges" in reasons[11]
    assert "grid" in reasons[12]
    assert ack.committed == [(13, 13)]
    stored = rollups(hub_db)
    assert stored[("door", "line_in", T0)]["count"] == 3
    assert stored[("till", "dwell_s", T0)]["histogram_edges"] == [2.0]
    assert stored[("exit", "line_in", T0)]["count"] == 5
    assert heatmaps(hub_db)[("cam1", T0)] == [1, 1, 1, 1]
    assert [d["seq"] for d in dead_letters(hub_db)] == [10, 11, 12]
    assert device(hub_db)["dead_lettered"] == 3


def test_unreadable_records_are_dead_lettered_while_the_rest_of_the_batch_lands(
    hub_db: Engine,
) -> None:
    v2 = {**counter(1).model_dump(mode="json"), "schema_version": 2}
    invalid = {**counter(1).model_dump(mode="json"), "count": -1}
    b = batch(
        [
            record(1, counter(2)),
            record(2, {"anything": 1}, kind="shelf_gap"),
            record(3, v2, kind="rollup"),
            record(4, invalid, kind="rollup"),
            record(5, crossing(3, T0 + 2)),
        ]
    )
    ack = ingest(hub_db, b)

    reasons = {n.seq: n.reason for n in ack.dead_lettered}
    assert set(reasons) == {2, 3, 4}
    assert "unknown record kind 'shelf_gap'" in reasons[2]
    assert "schema_version" in reasons[3]
    assert "count" in reasons[4]
    assert ack.committed == [(1, 1), (5, 5)]
    assert rollups(hub_db)[("door", "line_in", T0)]["count"] == 2
    assert count(hub_db, "events") == 1
    letters = dead_letters(hub_db)
    assert [(d["seq"], d["device_id"], d["raw_encoding"]) for d in letters] == [
        (2, "d1", "json"),
        (3, "d1", "json"),
        (4, "d1", "json"),
    ]
    assert json.loads(letters[1]["raw"])["body"]["schema_version"] == 2

    # A re-send is a duplicate: same answer, no second dead letter.
    again = ingest(hub_db, b)
    assert again.dead_lettered == ack.dead_lettered and again.committed == ack.committed
    assert again.duplicates == 5
    assert count(hub_db, "dead_letters") == 3


def test_records_for_another_store_are_dead_lettered(hub_db: Engine) -> None:
    ack = ingest(hub_db, batch([record(1, counter(2, store_id="s2")), record(2, counter(1))]))
    assert [n.seq for n in ack.dead_lettered] == [1]
    assert "s2" in ack.dead_lettered[0].reason
    assert rollups(hub_db)[("door", "line_in", T0)]["store_id"] == "s1"


def test_late_buckets_land_in_their_own_rows_after_newer_ones(hub_db: Engine) -> None:
    hours = [T0 + 3600 * h for h in range(3)]
    ingest(
        hub_db, batch(numbered([counter(10 + i, bucket_start=t) for i, t in enumerate(hours)], 100))
    )
    # After an outage the edge sends the older backlog (lower seqs, older buckets) later.
    old = [T0 - 3600 * h for h in (2, 1)]
    ingest(
        hub_db, batch(numbered([counter(1, bucket_start=old[0]), counter(2, bucket_start=old[1])]))
    )
    ingest(hub_db, batch(numbered([counter(5, bucket_start=hours[1])], 200)))

    stored = {k[2]: v["count"] for k, v in rollups(hub_db).items()}
    assert stored == {old[0]: 1, old[1]: 2, hours[0]: 10, hours[1]: 11 + 5, hours[2]: 12}
    assert device(hub_db)["max_seq"] == 200


def test_undecodable_payloads_are_kept_truncated_with_their_size(hub_db: Engine) -> None:
    garbage = b"\x00\xffnot a batch" * 10_000  # binary, larger than the raw bound
    result = ingest_payload(hub_db, garbage, NOW)
    assert isinstance(result, BatchRejected) and result.dead_letter_id is not None
    assert "not JSON" in result.reason

    bad_envelope = gzip.compress(json.dumps({"schema_version": 1, "batch_id": "x9"}).encode())
    env_result = ingest_payload(hub_db, bad_envelope, NOW)
    assert isinstance(env_result, BatchRejected) and env_result.batch_id == "x9"

    letters = {d["id"]: d for d in dead_letters(hub_db)}
    big = letters[result.dead_letter_id]
    assert big["raw_size"] == len(garbage) and big["raw_encoding"] == "base64"
    assert big["seq"] is None and big["reason"] == result.reason
    assert base64.b64decode(big["raw"]) == garbage[:RAW_LIMIT_BYTES]
    assert letters[env_result.dead_letter_id]["batch_id"] == "x9"


def test_concurrent_overlapping_batches_give_exact_totals(hub_db: Engine) -> None:
    """Two workers ingest overlapping batches of two devices at once (redeliveries, and partial
    buckets of the same rows from both devices): every record counts once, every partial merges.
    On PostgreSQL this needs the row locks; on SQLite the IMMEDIATE write transactions."""
    engine = hub_db
    edges = [1.0, 2.0, 4.0]
    per_device: dict[str, list[SyncRecord]] = {}
    want_counts: dict[tuple[str, int], int] = {}  # (line, bucket) -> events, as generated
    want_values: dict[int, list[float]] = {}  # bucket -> samples
    want_cells: dict[int, list[float]] = {}  # bucket -> heatmap cells
    for dev in ("d1", "d2"):
        bodies: list[BaseModel] = []
        for i in range(120):
            bucket, line, n = T0 + 60 * (i % 6), f"l{i % 4}", 1 + i % 3
            values = [0.5 * (i % 9), 3.0 + i % 2]
            cells = [1.0, 0.5, 0.25, float(i % 2)]
            want_counts[(line, bucket)] = want_counts.get((line, bucket), 0) + n
            want_values.setdefault(bucket, []).extend(values)
            old = want_cells.get(bucket, [0.0] * 4)
            want_cells[bucket] = [a + b for a, b in zip(old, cells, strict=True)]
            bodies.append(counter(n, bucket_start=bucket, target=line))
            bodies.append(samples(values, edges, bucket_start=bucket))
            bodies.append(heatmap(cells, bucket_start=bucket))
        per_device[dev] = numbered(bodies)
    # Batches of 40 records starting every 20: most records are sent twice, by both threads.
    batches = [
        batch(recs[s : s + 40], device_id=dev)
        for dev, recs in per_device.items()
        for s in range(0, len(recs), 20)
    ]
    payloads = [encode_batch(b) for b in batches]
    halves = [payloads[0::2], payloads[1::2]]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(mine: list[bytes]) -> None:
        try:
            start.wait()
            for p in mine:
                assert isinstance(ingest_payload(engine, p, NOW), BatchAck)
        except BaseException as exc:  # handed to the main thread, which fails the test
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(h,)) for h in halves]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []

    stored = rollups(engine)
    got_counts = {(k[0], k[2]): v["count"] for k, v in stored.items() if v["kind"] == "counter"}
    assert got_counts == want_counts
    got_samples = {k[2]: v for k, v in stored.items() if v["kind"] == "samples"}
    assert set(got_samples) == set(want_values)
    for bucket, values in want_values.items():
        row, want = got_samples[bucket], samples(values, edges)
        assert (row["count"], row["sum"], row["min"], row["max"]) == (
            want.count,
            want.sum,
            want.min,
            want.max,
        )
        assert row["histogram"] == want.histogram
    assert {k[1]: v for k, v in heatmaps(engine).items()} == want_cells
    for dev, recs in per_device.items():
        sent = sum(len(b.records) for b in batches if b.device_id == dev)
        d = device(engine, dev)
        assert (d["records_received"], d["duplicates_received"]) == (len(recs), sent - len(recs))
    assert count(engine, "received_records") == sum(len(r) for r in per_device.values())


def test_a_value_the_database_cannot_hold_rejects_the_batch_instead_of_blocking_it(
    hub_db: Engine,
) -> None:
    """A seq beyond BIGINT would fail the transaction on every re-send and block the device's
    outbox for ever: the hub keeps the payload as a dead letter and rejects it instead."""
    poison = batch([record(2**63, counter(1))])
    result = ingest_payload(hub_db, encode_batch(poison), NOW)
    assert isinstance(result, BatchRejected) and "refused" in result.reason
    assert [d["batch_id"] for d in dead_letters(hub_db)] == [poison.batch_id]
    assert count(hub_db, "received_records") == 0  # the failed transaction left nothing
    assert ingest(hub_db, batch([record(1, counter(2))])).committed == [(1, 1)]


def test_a_non_finite_number_dead_letters_its_record(hub_db: Engine) -> None:
    bad = {**crossing(1, T0 + 1).model_dump(mode="json"), "occurred_at": float("nan")}
    b = batch([record(1, bad, kind="event"), record(2, crossing(2, T0 + 2))])
    # Python's json writes NaN literally; an edge built on it could send that.
    result = ingest_payload(hub_db, json.dumps(b.model_dump(mode="python")).encode(), NOW)
    assert isinstance(result, BatchAck)
    assert [(n.seq, "non-finite" in n.reason) for n in result.dead_lettered] == [(1, True)]
    assert count(hub_db, "events") == 1
