"""`retail-edge run` sends what its stop wrote: the open minute's partial rollups and heatmap
are appended to the outbox when the agent stops, after the syncer's last batch; the run then
drains the outbox (``sync.drain_on_stop_s``) before it exits, against a real hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from cloud_hub.migrate import upgrade_database
from tests.cloud_hub.hub_process import HubProcess


def _run(config: Path, secret: str) -> dict[str, int]:
    result = subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "run", "--config", str(config), "--duration", "6"],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "RETAIL_EDGE_HUB_TOKEN": secret},
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, int] = json.loads(result.stdout)
    return out


def test_run_delivers_the_records_its_stop_wrote(tmp_path: Path, assets: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade_database(db)
    with HubProcess(tmp_path) as hub:
        hub.start(db)
        secret = hub.enroll("s1", "d1")
        cfg = {
            "store_id": "s1",
            "device_id": "d1",
            "model": {"path": str(assets / "models/person/yolox_nano.onnx")},
            "cameras": [
                {"id": "aisle", "source": str(assets / "videos/store-aisle-detection.gif"),
                 "fps": 3, "rollup_interval_s": 3600}
            ],
            "outbox": {"path": str(tmp_path / "outbox.sqlite3")},
            "sync": {"transport": "http", "hub_url": hub.url},
        }  # fmt: skip
        config = tmp_path / "store.yaml"
        config.write_text(yaml.safe_dump(cfg))
        # An hour-long bucket: every rollup of the run is written by the stop, none before.
        out = _run(config, secret)
        assert out["records_appended"] > 0
        assert out["records_pending"] == 0
        state = httpx.get(
            f"{hub.url}/api/v1/devices/d1/sync",
            headers={"Authorization": f"Bearer {secret}"},
            timeout=30,
        ).json()
        assert state["max_seq"] == state["records_received"] == out["records_appended"]

        # With no time to drain, they stay in the outbox (nothing is lost either way).
        cfg["sync"]["drain_on_stop_s"] = 0
        config.write_text(yaml.safe_dump(cfg))
        out = _run(config, secret)
        assert out["records_pending"] == out["records_appended"] > 0
