"""The box's Prometheus metrics, scraped over HTTP from a real agent on real footage (one live
camera, one dead) with a real outbox."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from edge_agent.agent import EdgeAgent
from edge_agent.config import parse_config
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import Outbox
from edge_agent.process import open_detector
from tests.services import free_port, wait_for


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


def test_run_serves_metrics_on_the_configured_port(tmp_path: Path, assets: Path) -> None:
    port = free_port()
    config = tmp_path / "store.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "store_id": "s1",
                "device_id": "d1",
                "model": {"path": str(assets / "models/person/yolox_nano.onnx")},
                "cameras": [
                    {
                        "id": "aisle",
                        "source": str(assets / "videos/store-aisle-detection.gif"),
                        "fps": 5,
                    }
                ],
                "outbox": {"path": str(tmp_path / "o.sqlite3")},
                "metrics": {"port": port},
            }
        )
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_agent.cli",
            "run",
            "--config",
            str(config),
            "--duration",
            "60",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        scraped: list[str] = []

        def frames_counted() -> bool:
            try:
                scraped[:] = [httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text]
            except httpx.HTTPError:
                return False
            m = re.search(r"^retail_edge_inference_frames_total (\S+)$", scraped[0], re.M)
            return m is not None and float(m.group(1)) > 0

        wait_for(frames_counted, 60, "frames counted at /metrics")
        assert _value(scraped[0], "retail_edge_camera_up", '{camera="aisle"}') == 1.0
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0
