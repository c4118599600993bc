"""The outbox on real SQLite files: seqs, pending order, delivery, bounds and drop notices, and
a hypothesis state machine over appends, deliveries, drops and reopenings."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from common.sync import OutboxDropped, RecordKind, SyncRecord, parse_record_body
from common.telemetry import (
    AlertPayload,
    AnalyticsEvent,
    EventKind,
    HeatmapRollup,
    LineCrossingPayload,
    Rollup,
    RollupKind,
    VisitPayload,
)
from edge_agent.outbox import Outbox, OutboxError, OutboxLimits
from edge_agent.outbox.policy import MAX_RANGES_PER_NOTICE, DroppedRow, drop_notices
from edge_agent.outbox.records import OutboxBody

STORE, DEVICE = "store-1", "edge-1"
T0 = 1_700_000_000.0


# -- record builders (also used by the sync tests) -----------------------------------------


def rollup(i: int, camera: str = "cam-1") -> Rollup:
    """A distinct counter rollup: bucket i of line ``door``."""
    return Rollup(
        store_id=STORE,
        camera_id=camera,
        target_id="door",
        metric="line_in",
        bucket_start=1_699_999_980 + 60 * i,
        interval_s=60,
        kind=RollupKind.COUNTER,
        count=i % 7,
    )


def dwell_rollup(i: int) -> Rollup:
    """A distinct samples rollup with a histogram."""
    return Rollup(
        store_id=STORE,
        camera_id="cam-1",
        target_id="promo",
        metric="dwell_s",
        bucket_start=1_699_999_980 + 60 * i,
        interval_s=60,
        kind=RollupKind.SAMPLES,
        count=3,
        sum=3.0 * (i + 1),
        min=0.5 * (i + 1),
        max=2.0 * (i + 1),
        histogram_edges=[2.0, 5.0],
        histogram=[1, 1, 1],
    )


def heatmap(i: int, grid: tuple[int, int] = (8, 4)) -> HeatmapRollup:
    """A distinct heatmap of a small grid."""
    w, h = grid
    return HeatmapRollup(
        store_id=STORE,
        camera_id="cam-1",
        bucket_start=1_699_999_980 + 60 * i,
        interval_s=60,
        grid_w=w,
        grid_h=h,
        person_seconds=[((i * 31 + k * 7) % 13) / 3 for k in range(w * h)],
    )


def crossing(i: int) -> AnalyticsEvent:
    """A distinct line-crossing event (priority: raw event)."""
    return AnalyticsEvent(
        kind=EventKind.LINE_CROSSING,
        store_id=STORE,
        camera_id="cam-1",
        target_id="door",
        occurred_at=T0 + i,
        track_id=i,
        payload=LineCrossingPayload(direction="in" if i % 2 else "out"),
    )


def visit(i: int) -> AnalyticsEvent:
    """A distinct visit event (priority: raw event)."""
    return AnalyticsEvent(
        kind=EventKind.VISIT,
        store_id=STORE,
        camera_id="cam-1",
        target_id="promo",
        occurred_at=T0 + i + 12.5,
        track_id=i,
        payload=VisitPayload(zone_kind="dwell", entered_at=T0 + i, dwell_s=12.5, engaged=True),
    )


def alert(i: int) -> AnalyticsEvent:
    """A distinct alert event (priority: summary, kept like rollups)."""
    return AnalyticsEvent(
        kind=EventKind.ALERT_RAISED,
        store_id=STORE,
        camera_id="cam-1",
        target_id="till-1",
        occurred_at=T0 + i,
        payload=AlertPayload(
            rule_id="queue-long", metric="queue_length", op=">=", threshold=5, clear_threshold=3,
            value=5 + i,
        ),
    )  # fmt: skip


BUILDERS = {
    "rollup": rollup,
    "dwell": dwell_rollup,
    "heatmap": heatmap,
    "crossing": crossing,
    "visit": visit,
    "alert": alert,
}


def wire(body: OutboxBody) -> dict[str, object]:
    """The body as the outbox hands it back (JSON, nulls left out)."""
    return body.model_dump(mode="json", exclude_none=True)


def query_one(path: Path, sql: str, params: Sequence[object] = ()) -> object:
    """The first column of the first row of ``sql``, on a connection of its own (closed)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, params).fetchone()[0]


def all_pending(ob: Outbox) -> list[SyncRecord]:
    """Every pending record."""
    return ob.pending(10**6, 10**12)


def open_outbox(path: Path, **limits: float) -> Outbox:
    """An outbox with ``limits`` (defaults generous), no disk reserve."""
    return Outbox.open(path, DEVICE, STORE, OutboxLimits(**limits), reserve_bytes=0)  # type: ignore[arg-type]


# -- basics ---------------------------------------------------------------------------------


def test_append_gives_increasing_seqs_and_pending_returns_bodies_in_order(tmp_path: Path) -> None:
    bodies: list[OutboxBody] = [rollup(1), heatmap(2), crossing(3), dwell_rollup(4), alert(5)]
    with open_outbox(tmp_path / "o.sqlite3") as ob:
        assert ob.append(bodies[:2], T0) == [1, 2]
        assert ob.append(bodies[2:], T0 + 1) == [3, 4, 5]
        got = all_pending(ob)
    assert [r.seq for r in got] == [1, 2, 3, 4, 5]
    assert [r.kind for r in got] == ["rollup", "heatmap", "event", "rollup", "event"]
    assert [r.created_at for r in got] == [T0, T0, T0 + 1, T0 + 1, T0 + 1]
    assert [parse_record_body(r) for r in got] == bodies


def test_pending_honours_limit_and_byte_budget_but_returns_at_least_one(tmp_path: Path) -> None:
    with open_outbox(tmp_path / "o.sqlite3") as ob:
        ob.append([rollup(i) for i in range(10)], T0)
        assert [r.seq for r in ob.pending(3, 10**9)] == [1, 2, 3]
        one = len(rollup(0).model_dump_json(exclude_none=True))
        assert [r.seq for r in ob.pending(100, 2 * one + 5)] == [1, 2]
        assert [r.seq for r in ob.pending(100, 1)] == [1]


def test_mark_delivered_deletes_once_and_is_idempotent(tmp_path: Path) -> None:
    with open_outbox(tmp_path / "o.sqlite3") as ob:
        ob.append([rollup(i) for i in range(6)], T0)
        assert ob.mark_delivered([2, 4, 4, 99]) == 2
        assert ob.mark_delivered([2, 4]) == 0
        assert [r.seq for r in all_pending(ob)] == [1, 3, 5, 6]
        st = ob.stats(T0 + 30)
    assert (st.pending_count, st.last_seq, st.oldest_pending_age_s) == (4, 6, 30.0)


def test_seqs_keep_increasing_after_deleting_everything_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with open_outbox(path) as ob:
        ob.append([rollup(i) for i in range(5)], T0)
        ob.mark_delivered([1, 2, 3, 4, 5])
        assert ob.stats(T0).pending_count == 0
    with open_outbox(path) as ob:
        assert ob.append([rollup(9)], T0) == [6]
        assert ob.stats(T0).last_seq == 6


def test_resume_above_moves_the_next_seq_for_good(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with open_outbox(path) as ob:
        ob.append([rollup(i) for i in range(5)], T0)
        ob.mark_delivered([1, 2, 3, 4, 5])
        assert ob.resume_above(100)
        assert not ob.resume_above(50)
        assert ob.append([rollup(9)], T0) == [101]
    with open_outbox(path) as ob:
        assert ob.append([rollup(10)], T0) == [102]


def test_a_file_of_another_device_or_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    open_outbox(path).close()
    with pytest.raises(OutboxError, match="device_id 'edge-1', not 'edge-2'"):
        Outbox.open(path, "edge-2", STORE, reserve_bytes=0)
    with pytest.raises(OutboxError, match="store_id 'store-1', not 'store-9'"):
        Outbox.open(path, DEVICE, "store-9", reserve_bytes=0)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(OutboxError, match="not usable"):
        Outbox.open(path, DEVICE, STORE, reserve_bytes=0)


def test_file_is_wal_mode_and_counted_bytes_track_the_file_size(tmp_path: Path) -> None:
    """max_bytes bounds what the file takes on disk: for a store-like mix (per camera-minute
    18 rollups, a 32x18 heatmap, 5 events) the counted bytes (compressed bodies plus the
    per-row estimate) are within 25% of the checkpointed file."""
    path = tmp_path / "o.sqlite3"
    with open_outbox(path) as ob:
        for m in range(300):
            minute: list[OutboxBody] = [rollup(m * 18 + k, f"cam-{k % 4}") for k in range(18)]
            minute += [heatmap(m, (32, 18))] + [crossing(m * 5 + k) for k in range(5)]
            ob.append(minute, T0 + 60 * m)
        st = ob.stats(T0)
        mode = query_one(path, "PRAGMA journal_mode")
    assert mode == "wal"
    assert st.pending_count == 300 * 24
    on_disk = path.stat().st_size  # closing checkpointed the WAL into the file
    assert 0.75 * on_disk < st.pending_bytes < 1.25 * on_disk


# -- bounds and drops -----------------------------------------------------------------------


def test_size_bound_drops_raw_events_then_heatmaps_then_rollups_and_reports_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Priorities: over the size bound, all raw events go before any heatmap, heatmaps before
    any rollup or alert; the drop notice names the exact seqs and counts per kind."""
    path = tmp_path / "o.sqlite3"
    with open_outbox(path, max_bytes=10**9) as ob:
        seqs: dict[str, list[int]] = {k: [] for k in BUILDERS}
        for i in range(40):  # interleaved, so every kind has old and new records
            for name, build in BUILDERS.items():
                seqs[name] += ob.append([build(i)], T0 + i)
        sizes = {r.seq: r for r in all_pending(ob)}
        total = ob.stats(T0).pending_bytes
    raw = sorted(seqs["crossing"] + seqs["visit"])
    raw_bytes = _stored_bytes(path, raw)
    heat_bytes = _stored_bytes(path, seqs["heatmap"])
    # A bound such that dropping to 90% of it needs all raw events and some heatmaps.
    max_bytes = int((total - raw_bytes - heat_bytes / 2) / 0.9)
    caplog.set_level(logging.WARNING, logger="edge_agent.outbox.store")
    with open_outbox(path, max_bytes=max_bytes) as ob:
        notices = ob.enforce(T0 + 100)
        left = {r.seq for r in all_pending(ob)}
        st = ob.stats(T0 + 100)
    assert len(notices) == 1 and notices[0].reason == "size"
    dropped = {s for a, b in notices[0].seq_ranges for s in range(a, b + 1)}
    heat_dropped = sorted(dropped & set(seqs["heatmap"]))
    assert set(raw) <= dropped
    assert 0 < len(heat_dropped) < len(seqs["heatmap"])
    assert heat_dropped == seqs["heatmap"][: len(heat_dropped)]  # oldest heatmaps first
    assert dropped == set(raw) | set(heat_dropped)
    assert notices[0].counts == {"event": len(raw), "heatmap": len(heat_dropped)}
    kept = seqs["rollup"] + seqs["dwell"] + seqs["alert"]
    assert set(kept) <= left and not (dropped & left)
    notice_seq = max(left)
    assert notice_seq == max(sizes) + 1  # the notice itself is the newest record
    assert st.dropped_total == {"event": len(raw), "heatmap": len(heat_dropped)}
    assert st.pending_bytes <= max_bytes
    assert any("dropped" in r.message and "size bound" in r.message for r in caplog.records)


def test_age_bound_drops_old_records_of_every_priority_and_counts_persist(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with open_outbox(path, max_age_s=1000) as ob:
        old = ob.append([rollup(1), alert(2), crossing(3)], T0)
        mid = ob.append([rollup(4)], T0 + 50)
        ob.append([heatmap(5)], T0 + 950)
        assert ob.enforce(T0 + 999) == []  # nothing older than the bound yet
        # An append past the bound drops everything older than 90% of it (900 s): 1-4.
        new = ob.append([rollup(6)], T0 + 1001)
        pending = all_pending(ob)
    with open_outbox(path, max_age_s=1000) as ob:
        st = ob.stats(T0 + 1001)
    notice = OutboxDropped.model_validate(pending[-1].body)
    assert pending[-1].kind == RecordKind.OUTBOX_DROPPED
    assert notice.reason == "age"
    assert notice.seq_ranges == [(old[0], mid[0])]
    assert notice.counts == {"rollup": 2, "event": 2}
    assert [r.seq for r in pending] == [5, *new, new[0] + 1]
    assert st.dropped_total == {"rollup": 2, "event": 2}


def test_new_records_can_be_dropped_by_their_own_append_and_are_reported(tmp_path: Path) -> None:
    """A tiny bound: the append's own raw events go, the notice says so."""
    with open_outbox(tmp_path / "o.sqlite3", max_bytes=4096) as ob:
        ob.append([rollup(i) for i in range(20)], T0)
        seqs = ob.append([crossing(i) for i in range(60)], T0 + 1)
        pending = all_pending(ob)
    notices = [OutboxDropped.model_validate(r.body) for r in pending if r.kind == "outbox_dropped"]
    dropped = {s for n in notices for a, b in n.seq_ranges for s in range(a, b + 1)}
    assert dropped and dropped <= set(seqs)
    assert {r.seq for r in pending} & dropped == set()
    assert [r.seq for r in pending if r.kind == "rollup"] == list(range(1, 21))


def test_scattered_drops_split_into_notices_small_enough_for_a_batch() -> None:
    rows = [DroppedRow(seq=2 * i + 1, kind="event", size=100) for i in range(5000)]
    notices = drop_notices(rows, "size", T0)
    assert [len(n.seq_ranges) for n in notices] == [MAX_RANGES_PER_NOTICE] * 2 + [1000]
    covered = [s for n in notices for a, b in n.seq_ranges for s in range(a, b + 1)]
    assert covered == [r.seq for r in rows]
    assert sum(n.counts["event"] for n in notices) == 5000
    assert all(len(n.model_dump_json()) < 64_000 for n in notices)


def _stored_bytes(path: Path, seqs: list[int]) -> int:
    marks = ",".join("?" * len(seqs))
    total = query_one(path, f"SELECT SUM(size) FROM records WHERE seq IN ({marks})", seqs)
    assert isinstance(total, int)
    return total


# -- property: the outbox never loses, reorders or reuses -----------------------------------


class OutboxMachine(RuleBasedStateMachine):
    """Appends, partial deliveries, bounds enforcement (tight size and age bounds, so drops
    happen) and reopenings. The model: every record appended is pending until delivered or
    named by a drop notice; seqs strictly increase across everything, reopenings included."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self._dir = tempfile.TemporaryDirectory()
        self.path = Path(self._dir.name) / "o.sqlite3"
        self.limits = {"max_bytes": 6000, "max_age_s": 300.0}
        self.ob = open_outbox(self.path, **self.limits)
        self.now = T0
        self.bodies: dict[int, dict[str, object]] = {}  # seq -> body, every record ever stored
        self.kinds: dict[int, str] = {}
        self.gone: set[int] = set()  # delivered or dropped
        self.dropped_counts: dict[str, int] = {}
        self.last_seq = 0

    def _observe(self) -> None:
        """Learn the drop notices the last operation added (they are always still pending:
        a pass never drops its own notice)."""
        for r in all_pending(self.ob):
            if r.seq in self.bodies:
                continue
            assert r.kind == RecordKind.OUTBOX_DROPPED, f"unknown record {r.seq} appeared"
            assert r.seq > self.last_seq
            self.last_seq = r.seq
            self.bodies[r.seq], self.kinds[r.seq] = r.body, r.kind
            notice = OutboxDropped.model_validate(r.body)
            for a, b in notice.seq_ranges:
                for s in range(a, b + 1):
                    assert s in self.bodies and s not in self.gone, f"seq {s} dropped twice"
                    self.gone.add(s)
            for kind, n in notice.counts.items():
                self.dropped_counts[kind] = self.dropped_counts.get(kind, 0) + n

    @rule(
        specs=st.lists(
            st.tuples(st.sampled_from(sorted(BUILDERS)), st.integers(0, 10**6)),
            min_size=1,
            max_size=6,
        ),
        dt=st.floats(0, 60),
    )
    def append(self, specs: list[tuple[str, int]], dt: float) -> None:
        self.now += dt
        bodies = [BUILDERS[name](i) for name, i in specs]
        seqs = self.ob.append(bodies, self.now)
        assert seqs == sorted(seqs) and seqs[0] > self.last_seq
        assert len(set(seqs)) == len(seqs)
        for s, b in zip(seqs, bodies, strict=True):
            self.bodies[s], self.kinds[s] = wire(b), _kind_of(b)
        self.last_seq = seqs[-1]
        self._observe()

    @rule(data=st.data())
    def deliver_some(self, data: st.DataObject) -> None:
        pending = [r.seq for r in all_pending(self.ob)]
        chosen = data.draw(st.lists(st.sampled_from(pending), unique=True)) if pending else []
        gone = sorted(self.gone)
        extra = data.draw(st.lists(st.sampled_from(gone), max_size=3)) if gone else []
        assert self.ob.mark_delivered(chosen + extra) == len(chosen)
        self.gone |= set(chosen)

    @rule(dt=st.floats(0, 200))
    def enforce(self, dt: float) -> None:
        self.now += dt
        self.ob.enforce(self.now)
        self._observe()

    @rule()
    def reopen(self) -> None:
        self.ob.close()
        self.ob = open_outbox(self.path, **self.limits)

    @invariant()
    def pending_is_exactly_what_is_not_gone(self) -> None:
        pending = all_pending(self.ob)
        seqs = [r.seq for r in pending]
        assert seqs == sorted(seqs)
        assert set(seqs) == set(self.bodies) - self.gone
        for r in pending:
            assert r.body == self.bodies[r.seq]
            assert r.kind == self.kinds[r.seq]
        st_ = self.ob.stats(self.now)
        assert st_.pending_count == len(seqs)
        assert st_.last_seq == self.last_seq
        assert st_.dropped_total == self.dropped_counts

    def teardown(self) -> None:
        self.ob.close()
        self._dir.cleanup()


def _kind_of(body: OutboxBody) -> str:
    if isinstance(body, Rollup):
        return "rollup"
    if isinstance(body, HeatmapRollup):
        return "heatmap"
    return "event"


TestOutboxMachine = OutboxMachine.TestCase
TestOutboxMachine.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
