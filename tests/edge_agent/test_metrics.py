"""The box's Prometheus metrics, scraped over HTTP from a real agent on real footage (one live
camera, one dead) with a real outbox."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from edge_agent.agent import EdgeAgent
from edge_agent.config import parse_config
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import Outbox
from edge_agent.process import open_detector
from tests.services import free_port


def _value(text: str, name: str, labels: str = "") -> float:
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.M)
    assert m is not None, f"{name}{labels} not in the scrape"
    return float(m.group(1))


def test_scrape_reports_cameras_inference_and_outbox(tmp_path: Path, assets: Path) -> None:
    video = str(assets / "videos/one-by-one-person-detection.mp4")
    cfg = parse_config(
        {
            "store_id": "s1",
            "device_id": "d1",
            "model": {"path": str(assets / "models/person/yolox_nano.onnx")},
            "cameras": [
                {
                    "id": "door",
                    "source": video,
                    "fps": 3,
                    "lines": [
                        {"id": "entry", "points": [[0, 0.6], [1, 0.6]], "inside": [0.5, 0.9]}
                    ],
                },
                {"id": "dead", "source": f"tcp://127.0.0.1:{free_port()}", "fps": 3},
            ],
        },
        assets,
    )
    with Outbox.open(tmp_path / "o.sqlite3", "d1", "s1") as outbox:
        agent = EdgeAgent(cfg, open_detector(cfg, max_batch=2), outbox=outbox)
        metrics = EdgeMetrics(agent.health, agent.stats, outbox.stats)
        port = free_port()
        metrics.start(port)
        try:
            with agent:
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline and agent.stats().frames < 30:
                    agent.step(wait_s=0.5)
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
                stats = agent.stats()
                pending = outbox.stats(time.time()).pending_count
        finally:
            metrics.stop()
    assert _value(text, "retail_edge_inference_frames_total") == stats.frames >= 30
    assert 0 < _value(text, "retail_edge_inference_seconds_total") <= stats.inference_s
    assert _value(text, "retail_edge_camera_up", '{camera="door"}') == 1.0
    assert _value(text, "retail_edge_camera_up", '{camera="dead"}') == 0.0
    assert _value(text, "retail_edge_camera_input_fps", '{camera="door"}') > 0
    assert _value(text, "retail_edge_outbox_pending_records") == pending
    assert _value(text, "retail_edge_camera_reconnects_total", '{camera="dead"}') >= 1
