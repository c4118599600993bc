"""A stand-in edge agent for fault injection: appends numbered records and syncs them.

Run as ``python -m tests.integration.edge_producer CONFIG.yaml --total N --rate R``. It opens
the config's outbox, starts the config's sync (``SyncSession``: HTTP or MQTT, exactly what
``retail-edge run`` uses) and appends record k = 1, 2, ... N: a counter rollup of line ``door``
for bucket ``60 * k`` with count ``k % 7 + 1``, so the hub's totals are known in advance. It
resumes at k = (outbox's last seq) + 1, so it can be SIGKILLed at any moment and started again.
Each committed append is printed (``appended K``) before the next. When all N are appended it
drains (``--drain-timeout``), prints ``drained`` and exits 0.

Not a fake of anything: it drives the real outbox, syncer and transports; only the analytics
that would produce the records are replaced by a counter, so the expected totals are exact.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from common.telemetry import Rollup, RollupKind
from edge_agent.config import load_config
from edge_agent.outbox import Outbox
from edge_agent.sync.session import SyncSession


def record(k: int, store_id: str) -> Rollup:
    """The k-th record (1-based)."""
    return Rollup(
        store_id=store_id,
        camera_id="cam-1",
        target_id="door",
        metric="line_in",
        bucket_start=60 * k,
        interval_s=60,
        kind=RollupKind.COUNTER,
        count=expected_count(k),
    )


def expected_count(k: int) -> int:
    """The count carried by record k."""
    return k % 7 + 1


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("config", type=Path)
    p.add_argument("--total", type=int, required=True)
    p.add_argument("--rate", type=float, default=200.0, help="appends per second")
    p.add_argument("--drain-timeout", type=float, default=120.0)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = load_config(args.config)
    outbox = Outbox.open(cfg.outbox.path, cfg.device_id, cfg.store_id, cfg.outbox.limits())
    session = SyncSession(cfg, outbox)
    session.start()
    k = outbox.stats(time.time()).last_seq + 1
    period = 1.0 / args.rate
    next_at = time.monotonic()
    while k <= args.total:
        outbox.append([record(k, cfg.store_id)], time.time())
        print(f"appended {k}", flush=True)
        session.notify()
        k += 1
        next_at += period
        time.sleep(max(0.0, next_at - time.monotonic()))
    deadline = time.monotonic() + args.drain_timeout
    while outbox.stats(time.time()).pending_count and time.monotonic() < deadline:
        session.notify()
        time.sleep(0.1)
    pending = outbox.stats(time.time()).pending_count
    session.stop()
    outbox.close()
    if pending:
        print(f"still pending {pending}", flush=True)
        return 1
    print("drained", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
