"""`retail-edge` as an installer uses it: real footage, real models, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml


def _config(tmp_path: Path, assets: Path, **overrides: object) -> Path:
    data: dict[str, object] = {
        "store_id": "test-store",
        "device_id": "box-1",
        "model": {"path": str(assets / "models/person/yolox_nano.onnx")},
        "cameras": [{"id": "aisle", "source": str(assets / "videos/store-aisle-detection.gif")}],
    }
    data.update(overrides)
    path = tmp_path / "store.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_process_writes_report_and_mot_tracks(tmp_path: Path, assets: Path) -> None:
    video = assets / "videos/store-aisle-detection.gif"
    report, tracks = tmp_path / "report.json", tmp_path / "tracks.txt"
    result = _run(
        "process",
        video,
        "--config",
        _config(tmp_path, assets),
        "--report",
        report,
        "--tracks",
        tracks,
        "--all-frames",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["frames_processed"] == 67  # the GIF's frame count (assets README)
    assert data["model"] == "yolox-nano"
    rows = [line.split(",") for line in tracks.read_text().splitlines()]
    assert len(rows[0]) == 10
    frames = {int(r[0]) for r in rows}
    assert frames <= set(range(1, 68))
    ids = {int(r[1]) for r in rows}
    assert len(ids) == data["people"] >= 2


def test_process_samples_by_media_time(tmp_path: Path, assets: Path) -> None:
    video = assets / "videos/one-by-one-person-detection.mp4"  # 139.4 s at 10 fps
    report = tmp_path / "report.json"
    result = _run(
        "process",
        video,
        "--config",
        _config(tmp_path, assets),
        "--camera",
        "aisle",
        "--report",
        report,
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    # camera fps defaults to 3: one frame every 1/3 s of media time over 139.4 s
    assert abs(data["frames_processed"] - 139.4 * 3) <= 2
    assert data["sampled_fps"] == 3


def test_wrong_model_path_is_one_clear_line(tmp_path: Path, assets: Path) -> None:
    cfg = _config(tmp_path, assets, model={"path": "models/missing.onnx"})
    result = _run(
        "process", assets / "videos/store-aisle-detection.gif", "--config", cfg, "--no-progress"
    )
    assert result.returncode == 2
    assert "model file not found" in result.stderr
    assert str(tmp_path / "models/missing.onnx") in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage" * 5000])
def test_corrupt_video_is_one_clear_line(tmp_path: Path, assets: Path, content: bytes) -> None:
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(content)
    result = _run("process", bad, "--config", _config(tmp_path, assets), "--no-progress")
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and "clip.mp4" in result.stderr
    assert "Traceback" not in result.stderr


def test_truncated_video_keeps_what_was_read(tmp_path: Path, assets: Path) -> None:
    src = (assets / "videos/one-by-one-person-detection.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(src[: len(src) // 2])
    report = tmp_path / "r.json"
    result = _run(
        "process", cut, "--config", _config(tmp_path, assets), "--report", report, "--no-progress"
    )
    # Either the container is unreadable without its tail (clear error), or the first half is
    # analysed and the report says the file ended early. Never a traceback.
    assert "Traceback" not in result.stderr
    if result.returncode == 0:
        data = json.loads(report.read_text())
        assert data["ended_early"] is True
        assert 0 < data["frames_processed"] < 139.4 * 3
    else:
        assert result.returncode == 2 and "cut.mp4" in result.stderr


def test_bad_config_names_the_field_and_value(tmp_path: Path, assets: Path) -> None:
    cfg = _config(tmp_path, assets, cameras=[{"id": "a b", "source": "x.mp4", "fps": -1}])
    result = _run("check-config", cfg)
    assert result.returncode == 2
    assert "cameras.0.fps" in result.stderr and "-1" in result.stderr
    assert "cameras.0.id" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_accepts_the_demo_config() -> None:
    demo = Path(__file__).resolve().parents[2] / "examples/demo-store.yaml"
    result = _run("check-config", demo)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_help_explains_every_command() -> None:
    result = _run("--help")
    for cmd in ("process", "run", "check-config", "config-schema"):
        assert cmd in result.stdout
