"""The training pipeline end to end on real footage, on a tiny CPU budget.

Frames from three real videos -> pre-labels by the edge's YOLOX-nano (``retail-edge detect``)
-> a YOLO dataset split by video -> one epoch of ``yolov8n.yaml`` from random weights ->
the val report. A random-init model after one epoch detects nothing useful, so the test
asserts what is true of any run: the files agree with the labels, no video straddles the
split, the weights load and score, and the report's metrics are in [0, 1] and were computed
on exactly the val split's images and boxes. Each command runs as its own process, as an
operator would run it (ultralytics also keeps global state best left out of pytest's).
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from common.labels import read_labels
from model_export.dataset.export import read_summary
from model_export.dataset.frames import read_frame_index

VIDEOS = (
    "videos/one-by-one-person-detection.mp4",
    "videos/store-aisle-detection.gif",
    "videos/worker-zone-detection.gif",
)
METRICS = ("map50", "map50_95", "precision", "recall")


def _run(module: str, *args: str | Path, env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out: dict[str, Any] = json.loads(result.stdout)  # stdout carries only the JSON
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment with ultralytics' settings in a private folder (not the user's)."""
    return {**os.environ, "YOLO_CONFIG_DIR": str(tmp_path_factory.mktemp("yolo-config"))}


@pytest.fixture(scope="module")
def pipeline(
    assets: Path, tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]
) -> dict[str, Any]:
    """Run every step once; the tests below check its outputs."""
    root = tmp_path_factory.mktemp("pipeline")
    frames, data, run = root / "frames", root / "data", root / "run"
    extracted = _run(
        "model_export.cli",
        *("dataset", "frames", *(assets / v for v in VIDEOS)),
        *("--out", frames, "--end", "20", "--no-progress"),
        env=env,
    )
    labels = frames / "labels.jsonl"
    detected = _run(
        "edge_agent.cli",
        *("detect", "--model", assets / "models/person/yolox_nano.onnx"),
        *("--images", frames, "--out", labels, "--no-progress"),
        env=env,
    )
    exported = _run(
        "model_export.cli",
        *("dataset", "export", "--images", frames, "--labels", labels, "--out", data),
        env=env,
    )
    trained = _run(
        "model_export.cli",
        *("yolo", "train", "--data", data, "--out", run, "--model", "yolov8n.yaml"),
        *("--epochs", "1", "--imgsz", "192", "--batch", "8"),
        env=env,
    )
    return {
        "frames": frames,
        "labels": labels,
        "data": data,
        "run": run,
        "extracted": extracted,
        "detected": detected,
        "exported": exported,
        "trained": trained,
    }


def test_frames_are_labelled_and_exported_consistently(pipeline: dict[str, Any]) -> None:
    frames, data = pipeline["frames"], pipeline["data"]
    index = read_frame_index(frames)
    kept = sum(v["kept"] for v in pipeline["extracted"]["videos"])
    assert len(index) == kept == pipeline["detected"]["images"]
    labels = {item.image: item for item in read_labels(pipeline["labels"])}
    assert set(labels) == set(index)
    assert sum(len(i.boxes) for i in labels.values()) > 10  # YOLOX finds the people
    summary = read_summary(data)
    assert summary.classes == ["person"]
    for entry in summary.images:
        item = labels[entry.source]
        assert entry.scene == f"video:{index[entry.source].video}"
        rows = (data / "labels" / entry.split / f"{Path(entry.image).stem}.txt").read_text()
        assert len(rows.splitlines()) == len(item.boxes) == entry.boxes
    # No video on both sides, and both sides used.
    sides: dict[str, set[str]] = {}
    for entry in summary.images:
        sides.setdefault(entry.scene, set()).add(entry.split)
    assert all(len(s) == 1 for s in sides.values())
    assert {next(iter(s)) for s in sides.values()} == {"train", "val"}


def test_training_writes_loadable_weights_and_a_val_report(
    pipeline: dict[str, Any], env: dict[str, str]
) -> None:
    run, data = pipeline["run"], pipeline["data"]
    report = pipeline["trained"]
    assert (run / "weights" / "best.pt").is_file() and (run / "weights" / "last.pt").is_file()
    with (run / "results.csv").open() as fh:  # one epoch ran, with finite losses
        (epoch,) = list(csv.DictReader(fh))
    losses = [float(v) for k, v in epoch.items() if k.strip().startswith("train/")]
    assert len(losses) == 3 and all(math.isfinite(v) and v > 0 for v in losses)
    assert json.loads((run / "report.json").read_text()) == {
        k: v for k, v in report.items() if k != "run"
    }
    for key in METRICS:
        assert 0.0 <= report[key] <= 1.0
    summary = read_summary(data)
    assert report["split"] == "val"
    assert report["images"] == summary.counts["val"].images
    assert report["instances"] == summary.counts["val"].boxes > 0
    assert report["classes"] == ["person"]
    assert report["per_class"]["person"]["instances"] == summary.counts["val"].boxes

    # The weights load and score the same through `yolo eval`.
    evaluated = _run(
        "model_export.cli",
        *("yolo", "eval", "--data", data / "data.yaml", "--weights", run / "weights/best.pt"),
        *("--imgsz", "192", "--batch", "8"),
        env=env,
    )
    for key in (*METRICS, "images", "instances", "classes"):
        assert evaluated[key] == pytest.approx(report[key], abs=1e-6)


def test_training_refuses_weights_it_would_have_to_download(
    pipeline: dict[str, Any], env: dict[str, str], tmp_path: Path
) -> None:
    train = ["yolo", "train", "--data", str(pipeline["data"]), "--out", str(tmp_path / "r")]
    result = subprocess.run(
        [sys.executable, "-m", "model_export.cli", *train, "--model", "yolov8n.pt"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 2
    assert "yolov8n.pt not found" in result.stderr and "cannot be downloaded" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()
