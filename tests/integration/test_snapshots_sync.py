"""Alert snapshots and heatmap images travel edge → outbox → hub, gated, bounded and retained:
`retail-edge process --outbox` on footage with faces, `retail-edge sync` into a real hub
process, the images read back over the API, checked by a different face detector, and deleted
by `retail-hub retention` once older than the retention period."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from cloud_hub.migrate import upgrade_database
from common.telemetry import Snapshot
from tests.cloud_hub.hub_process import HubProcess
from tests.edge_agent.retinaface_audit import RetinaFaceAuditor

FACE_FOUND = 0.5  # RetinaFace score that counts as a face (as in the privacy audit)


def _run(module: str, *args: str | Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow
def test_alert_snapshot_and_heatmap_reach_the_hub_faceless_and_expire(
    tmp_path: Path, assets: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade_database(db)
    hub = HubProcess(tmp_path / "hub")
    config = tmp_path / "store.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "store_id": "s1",
                "device_id": "box-1",
                "model": {"path": str(assets / "models/person/yolox_nano.onnx")},
                "cameras": [
                    {
                        "id": "classroom",
                        "source": str(assets / "videos/classroom.gif"),
                        # Four people sit in view from the first frame: raised at once.
                        "alerts": [
                            {"id": "crowd", "metric": "people", "target": "classroom",
                             "op": ">=", "threshold": 2}
                        ],
                    }
                ],
                "outbox": {"path": str(tmp_path / "outbox.sqlite3")},
                "sync": {"transport": "http", "hub_url": hub.url},
                "privacy": {"face_model": str(assets / "models/face/yunet_n_dynamic.onnx")},
            }
        )
    )  # fmt: skip
    two_days_ago = time.time() - 2 * 86400
    report = json.loads(
        _run(
            "edge_agent.cli", "process", assets / "videos/classroom.gif", "--config", config,
            "--outbox", "--all-frames", "--no-progress", "--recorded-at", str(two_days_ago),
        )
    )  # fmt: skip
    hub.start(db, device_auth="open")
    try:
        synced = json.loads(_run("edge_agent.cli", "sync", "--config", config, "--timeout", "120"))
        assert synced["delivered"] == report["records_appended"] and synced["dead_lettered"] == 0

        admin = _run(
            "cloud_hub.cli", "admin", "create-key", "--role", "hq_admin", "--database-url", db
        ).strip()
        other = _run(
            "cloud_hub.cli", "admin", "create-key", "--role", "store_manager", "--store", "s2",
            "--database-url", db,
        ).strip()  # fmt: skip
        api = httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {admin}"})
        outsider = httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {other}"})
        assert httpx.get(f"{hub.url}/api/v1/snapshots").status_code == 401
        page = api.get("/api/v1/snapshots", params={"store_id": "s1"}).json()
        kinds = sorted((s["purpose"], s["alert_rule"]) for s in page["items"])
        assert kinds == [("alert_snapshot", "crowd"), ("heatmap", None)]
        auditor = RetinaFaceAuditor(assets / "models/face/retinaface_mobilenet0.25.onnx")
        originals = cv2.VideoCapture(str(assets / "videos/classroom.gif"))
        ok, first = originals.read()
        assert ok
        _, original_scores = auditor.detect(first)
        assert (original_scores >= FACE_FOUND).sum() >= 2  # the footage does show faces
        for s in page["items"]:
            assert two_days_ago <= s["taken_at"] < two_days_ago + 10
            assert outsider.get(s["image_url"]).status_code == 404  # another store's manager
            r = api.get(s["image_url"])
            assert r.status_code == 200 and r.headers["content-type"] == s["media_type"]
            assert hashlib.sha256(r.content).hexdigest() == s["sha256"] and len(r.content) < 2**18
            image = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
            assert image.shape[:2] == (s["height"], s["width"])
            _, scores = auditor.detect(image)
            assert scores.max(initial=0.0) < FACE_FOUND, (s["purpose"], scores.max())
        heat = next(s for s in page["items"] if s["purpose"] == "heatmap")
        where = {"store_id": "s1", "camera_id": heat["camera_id"]}
        latest = api.get("/api/v1/snapshots/heatmaps/latest", params=where)
        assert latest.status_code == 200 and latest.headers["content-type"] == "image/png"
        assert hashlib.sha256(latest.content).hexdigest() == heat["sha256"]
        assert outsider.get("/api/v1/snapshots/heatmaps/latest", params=where).status_code == 404
        missing = {**where, "camera_id": "no-such-camera"}
        assert api.get("/api/v1/snapshots/heatmaps/latest", params=missing).status_code == 404
        alert = next(s for s in page["items"] if s["purpose"] == "alert_snapshot")
        assert outsider.get("/api/v1/snapshots", params={"store_id": "s1"}).status_code == 404
        assert outsider.get("/api/v1/snapshots").json()["total"] == 0
        assert alert["faces_blurred"] + alert["heads_blurred"] >= 4  # the four sitting people

        # Retention: a 30-day period keeps them, a 1-day period deletes both.
        kept = json.loads(_run("cloud_hub.cli", "retention", "--database-url", db))
        assert kept["snapshots_deleted"] == 0
        gone = json.loads(
            _run("cloud_hub.cli", "retention", "--database-url", db, "--snapshot-days", "1")
        )
        assert gone["snapshots_deleted"] == 2
        assert api.get(alert["image_url"]).status_code == 404
        assert api.get("/api/v1/snapshots").json()["total"] == 0
    finally:
        hub.stop()


def test_a_snapshot_record_that_was_altered_does_not_validate(assets: Path) -> None:
    small = (assets / "images/astronaut.png").read_bytes()[:150_000]  # a PNG by its header
    good = {
        "store_id": "s1", "camera_id": "c1", "taken_at": 1.0e9, "purpose": "heatmap",
        "media_type": "image/png", "width": 512, "height": 512, "faces_blurred": 1,
        "heads_blurred": 1, "sha256": hashlib.sha256(small).hexdigest(),
        "data_b64": base64.b64encode(small).decode(),
    }  # fmt: skip
    assert Snapshot.model_validate(good).image_bytes() == small
    cases = {
        "sha256 does not match": {"data_b64": base64.b64encode(small[:-1]).decode()},
        "not a image/jpeg": {"media_type": "image/jpeg"},
        "alert_rule is required": {"purpose": "alert_snapshot"},
        "not base64": {"data_b64": "%%%"},
        "at most": {"data_b64": "A" * 400_000},
    }
    for says, change in cases.items():
        with pytest.raises(ValidationError, match=says):
            Snapshot.model_validate({**good, **change})
