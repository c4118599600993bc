"""``retail-edge process --export-dir``: every image that would leave the box lands in the
folder, gated, listed in the manifest; sinks take nothing but SafeImage; raw dumps are loud."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edge_agent.privacy import (
    ImageExporter,
    ImagePurpose,
    PrivacyError,
    RawFrameDebugDump,
    read_manifest,
)


def _config(tmp_path: Path, assets: Path) -> Path:
    data = {
        "store_id": "test-store",
        "device_id": "box-1",
        "model": {"path": str(assets / "models/person/yolox_nano.onnx")},
        "cameras": [
            {
                "id": "classroom",
                "source": str(assets / "videos/classroom.gif"),
                # 4 people sit in view from the first frame (assets README): raised at once.
                "alerts": [
                    {"id": "crowd", "metric": "people", "target": "classroom", "op": ">=",
                     "threshold": 2}
                ],
            }
        ],
    }  # fmt: skip
    path = tmp_path / "store.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


RECORDED_AT = 1_795_510_800  # UNIX time of the video's first frame, given to --recorded-at


def _run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_process_exports_gated_alert_snapshot_heatmap_and_samples(
    tmp_path: Path, assets: Path
) -> None:
    out, report = tmp_path / "export", tmp_path / "report.json"
    result = _run(
        "process", assets / "videos/classroom.gif", "--config", _config(tmp_path, assets),
        "--export-dir", out, "--snapshot-every", "1", "--all-frames", "--no-progress",
        "--face-model", assets / "models/face/yunet_n_dynamic.onnx", "--report", report,
        "--recorded-at", str(RECORDED_AT),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = read_manifest(out)
    purposes = [r.purpose for r in records]
    # 45 frames at 16.7 fps = 2.7 s: samples at 0, 1 and 2 s; the alert on the first frames
    # with two confirmed people; the heatmap once at the end.
    assert purposes.count(ImagePurpose.SAMPLE) == 3
    assert purposes.count(ImagePurpose.ALERT_SNAPSHOT) == 1
    assert purposes[-1] is ImagePurpose.HEATMAP and purposes.count(ImagePurpose.HEATMAP) == 1
    alert = next(r for r in records if r.purpose is ImagePurpose.ALERT_SNAPSHOT)
    assert alert.alert_rule == "crowd" and RECORDED_AT <= alert.time < RECORDED_AT + 1.0
    # The folder holds exactly the manifest and the files it lists, each as recorded.
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [r.file for r in records] + ["manifest.jsonl"]
    )
    for r in records:
        data = (out / r.file).read_bytes()
        assert hashlib.sha256(data).hexdigest() == r.sha256 and len(data) == r.bytes <= 150_000
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape[:2] == (r.height, r.width) and max(img.shape[:2]) <= 640
        assert (r.store_id, r.camera_id) == ("test-store", "classroom")
    # The four seated people's faces are found in every frame image (not the heatmap, where
    # the median keeps them and the lingering mask hides them whole).
    for r in records:
        if r.purpose is not ImagePurpose.HEATMAP:
            assert r.faces_blurred >= 4 and r.heads_blurred >= 3, r
    assert next(r for r in records if r.purpose is ImagePurpose.HEATMAP).heads_blurred >= 3
    assert json.loads(report.read_text())["images_exported"] == len(records) == 5


def test_export_dir_without_a_face_model_is_a_clear_error(tmp_path: Path, assets: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIL_CV_PRIVACY_")}
    result = _run(
        "process", assets / "videos/classroom.gif", "--config", _config(tmp_path, assets),
        "--export-dir", tmp_path / "export", "--no-progress", env=env,
    )  # fmt: skip
    assert result.returncode == 2
    assert "RETAIL_CV_PRIVACY_FACE_MODEL" in result.stderr
    assert not (tmp_path / "export").exists()


def test_exporter_accepts_only_gated_images(tmp_path: Path) -> None:
    exporter = ImageExporter(tmp_path / "export")
    frame = np.zeros((16, 16, 3), np.uint8)
    ok, png = cv2.imencode(".png", frame)
    assert ok
    for raw in (frame, png.tobytes()):
        with pytest.raises(PrivacyError, match="only SafeImage"):
            exporter.put(raw, store_id="s", camera_id="c", time=0.0)  # type: ignore[arg-type]
    assert list((tmp_path / "export").iterdir()) == []


def test_raw_debug_dump_needs_the_switch_and_keeps_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(PrivacyError, match="switched on explicitly"):
        RawFrameDebugDump(tmp_path / "raw", enabled=False)
    assert not (tmp_path / "raw").exists()
    frame = np.full((20, 30, 3), 77, np.uint8)
    with caplog.at_level(logging.WARNING, logger="edge_agent.privacy.debug_dump"):
        dump = RawFrameDebugDump(tmp_path / "raw", enabled=True, warn_every=3)
        paths = [dump.dump(frame, "cam", i) for i in range(7)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3  # at start, after frame 3 and after frame 6
    assert all("RAW FRAME DEBUG DUMP" in w for w in warnings)
    np.testing.assert_array_equal(cv2.imread(str(paths[-1])), frame)


def test_snapshot_every_without_an_export_dir_is_refused(tmp_path: Path, assets: Path) -> None:
    result = _run(
        "process", assets / "videos/classroom.gif", "--config", _config(tmp_path, assets),
        "--snapshot-every", "1", "--no-progress",
    )  # fmt: skip
    assert result.returncode == 2
    assert "--snapshot-every needs --export-dir" in result.stderr
