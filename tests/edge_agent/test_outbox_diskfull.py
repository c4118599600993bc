"""A full disk, for real: the outbox on a few-MiB tmpfs (mounting needs root, as CI runs).

With its reserve the outbox recovers by dropping the lowest-priority records and keeps
appending at a steady size; without room even to drop, an append raises OutboxFullError, the
data already stored stays intact, and appends work again once space is freed.
"""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.sync import OutboxDropped
from common.telemetry import HeatmapRollup
from edge_agent.outbox import Outbox, OutboxFullError, OutboxLimits
from tests.edge_agent.test_outbox import DEVICE, STORE, T0, all_pending, query_one, rollup

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs mounted for the test."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs as root: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def noisy_heatmap(i: int, rng: random.Random) -> HeatmapRollup:
    """A 32x18 heatmap of random values: ~1.5 kB stored, so the disk fills quickly."""
    return HeatmapRollup(
        store_id=STORE,
        camera_id="cam-1",
        bucket_start=1_699_999_980 + 60 * i,
        interval_s=60,
        grid_w=32,
        grid_h=18,
        person_seconds=[round(rng.random() * 10, 3) for _ in range(576)],
    )


def test_full_disk_drops_heatmaps_to_make_room_and_keeps_rollups(small_disk: Path) -> None:
    rng = random.Random(5)
    path = small_disk / "outbox.sqlite3"
    heat: list[int] = []
    kept: list[int] = []
    limits = OutboxLimits(max_bytes=10**9)
    with Outbox.open(path, DEVICE, STORE, limits, reserve_bytes=512 * 1024) as ob:
        for i in range(3000):  # ~4.5 MB of heatmaps onto a 3 MiB disk
            seqs = ob.append([noisy_heatmap(i, rng), rollup(i)], T0 + i)
            heat.append(seqs[0])
            kept.append(seqs[1])
        st = ob.stats(T0 + 3000)
        pending = all_pending(ob)
    assert st.disk_full_bound_bytes is not None  # it did hit the full disk
    notices = [OutboxDropped.model_validate(r.body) for r in pending if r.kind == "outbox_dropped"]
    dropped = {s for n in notices for a, b in n.seq_ranges for s in range(a, b + 1)}
    assert notices and all(n.reason == "size" for n in notices)
    assert dropped <= set(heat)  # only the lower-priority kind went
    assert st.dropped_total == {"heatmap": len(dropped)}
    seqs = {r.seq for r in pending}
    assert set(kept) <= seqs  # every rollup survived
    notice_seqs = {r.seq for r in pending if r.kind == "outbox_dropped"}
    assert seqs == (set(heat) | set(kept) | notice_seqs) - dropped
    assert query_one(path, "PRAGMA integrity_check") == "ok"


def test_no_room_even_to_drop_raises_outbox_full_and_recovers_once_space_is_freed(
    small_disk: Path,
) -> None:
    rng = random.Random(6)
    path = small_disk / "outbox.sqlite3"
    filler = small_disk / "other-program.log"
    filler.write_bytes(os.urandom(1024 * 1024))
    stored: list[int] = []
    with Outbox.open(path, DEVICE, STORE, reserve_bytes=0) as ob:
        with pytest.raises(OutboxFullError, match="disk is full") as err:
            for i in range(3000):
                stored += ob.append([noisy_heatmap(i, rng)], T0 + i)
        assert "free space" in str(err.value)
        before = ob.stats(T0)
        assert len(stored) > 100 and before.dropped_total == {}
        # the failed append stored nothing, and what was there is all still readable
        assert [r.seq for r in all_pending(ob)] == stored
        assert query_one(path, "PRAGMA integrity_check") == "ok"
        filler.unlink()
        assert ob.append([rollup(1)], T0 + 5000) == [stored[-1] + 1]
        assert ob.stats(T0).pending_count == len(stored) + 1
