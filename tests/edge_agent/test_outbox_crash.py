"""Crash safety: a child process appends in a loop and is SIGKILLed at random moments, over
and over, on the same outbox file (with synchronous FULL and NORMAL: both survive a process
crash). After each kill the file opens, passes SQLite's integrity check, holds every append
the child reported committed, holds seqs 1..N with no gap, and the next append gets N + 1."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

from edge_agent.outbox import Outbox
from tests.conftest import REPO_ROOT
from tests.edge_agent.test_outbox import (
    DEVICE,
    STORE,
    T0,
    all_pending,
    crossing,
    heatmap,
    query_one,
    rollup,
)
from tests.services import wait_for

KILLS = 6


def child_main(path: Path, synchronous: str) -> None:
    """Append 1-5 records at a time for ever, printing each append's seqs once it returned."""
    rng = random.Random(os.getpid())
    builders = (rollup, heatmap, crossing)
    with Outbox.open(path, DEVICE, STORE, synchronous=synchronous, reserve_bytes=0) as ob:  # type: ignore[arg-type]
        i = 0
        while True:
            n = rng.randint(1, 5)
            seqs = ob.append([builders[(i + k) % 3](i + k) for k in range(n)], T0 + i)
            i += n
            print(" ".join(map(str, seqs)), flush=True)


def test_sigkill_at_random_moments_loses_no_committed_append(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    rng = random.Random(20240611)
    reported: list[int] = []
    for round_ in range(KILLS):
        synchronous = "full" if round_ % 2 == 0 else "normal"
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.edge_agent.test_outbox_crash", str(path), synchronous],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []
        reader = threading.Thread(target=_read_lines, args=(proc, lines), daemon=True)
        reader.start()
        target = rng.randint(20, 400)  # appends before the kill: a random moment
        wait_for(lambda: len(lines) >= target, timeout_s=60, what=f"{target} appends")  # noqa: B023
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        reader.join(timeout=30)
        for line in lines:  # the last line may be cut by the kill: complete lines only
            if line.endswith("\n"):
                reported += [int(s) for s in line.split()]

        assert query_one(path, "PRAGMA integrity_check") == "ok"
        with Outbox.open(path, DEVICE, STORE, reserve_bytes=0) as ob:
            seqs = [r.seq for r in all_pending(ob)]
            last = ob.stats(T0).last_seq
            assert seqs == list(range(1, len(seqs) + 1)), "a gap or reordering among survivors"
            assert set(reported) <= set(seqs), "an append the child saw return is missing"
            assert last == seqs[-1]
            assert ob.append([rollup(10**6 + round_)], T0) == [last + 1]
            reported.append(last + 1)
    assert len(reported) > KILLS * 20


def _read_lines(proc: subprocess.Popen[str], out: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        out.append(line)


if __name__ == "__main__":
    child_main(Path(sys.argv[1]), sys.argv[2])
