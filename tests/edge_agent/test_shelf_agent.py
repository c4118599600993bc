"""The live agent (``retail-edge run``) monitors shelves too: the detector keeps the shelf's
product class, the tracker sees only people, and shelf statuses reach the outbox."""

from __future__ import annotations

import time
from pathlib import Path

from common.sync import parse_record_body
from common.telemetry import Metric, Rollup, ShelfStatus
from edge_agent.agent import EdgeAgent
from edge_agent.config import load_config
from edge_agent.outbox import Outbox
from edge_agent.process import open_detector

CONFIG = Path(__file__).resolve().parents[2] / "examples/bottle-shelf.yaml"


def test_agent_reports_the_bottle_shelf(tmp_path: Path, assets: Path) -> None:
    cfg = load_config(CONFIG)
    assert cfg.cameras[0].source == str((assets / "videos/bottle-detection.mp4").resolve())
    detector = open_detector(cfg)
    assert [c for c in detector.settings.classes or ()] == ["person", "bottle"]
    with Outbox.open(tmp_path / "outbox.db", cfg.device_id, cfg.store_id, reserve_bytes=0) as ob:
        agent = EdgeAgent(cfg, detector, loop_files=False, outbox=ob)
        pipeline = agent.pipelines["shelf-cam"]
        with agent:
            deadline = time.monotonic() + 120
            # 3.5 s of video: past the 2 s hold, before the first hand (5.8 s)
            while time.monotonic() < deadline and (pipeline.last_t or 0.0) < 3.5:
                agent.step(wait_s=0.5)
        records = ob.pending(10_000, 2**30)
    bodies = [parse_record_body(r) for r in records]
    statuses = [b for b in bodies if isinstance(b, ShelfStatus)]
    assert statuses[0].status == "unknown"  # first frame: nothing held yet
    assert statuses[-1].status == "ok" and statuses[-1].stock_level == 1.0  # at stop
    assert [s.state for s in statuses[-1].slots] == ["stocked"] * 3
    people = [b for b in bodies if isinstance(b, Rollup) and b.metric == Metric.PEOPLE]
    assert people and all(r.max == 0 for r in people)  # three bottles are no people
    levels = [b for b in bodies if isinstance(b, Rollup) and b.metric == Metric.STOCK_LEVEL]
    assert levels and levels[-1].max == 1.0
