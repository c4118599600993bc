"""Reconfiguring the running agent between steps, on real footage: records of the cameras
before and after the switch all reach the outbox (the open buckets' partial rollups are
flushed, nothing is lost), and a config the agent cannot run is rolled back within its trial
while the cameras of the previous one go on."""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from common.sync import parse_record_body
from common.telemetry import Rollup
from edge_agent.agent import EdgeAgent
from edge_agent.config import StoreConfig, parse_config
from edge_agent.detect.detector import Detector
from edge_agent.outbox import Outbox
from edge_agent.process import open_detector
from edge_agent.sources.health import CameraState

DOOR = "videos/one-by-one-person-detection.mp4"
AISLE = "videos/store-aisle-detection.gif"


def _config(assets: Path, tmp_path: Path, cameras: list[dict[str, Any]]) -> StoreConfig:
    raw = {
        "store_id": "s1",
        "device_id": "s1-box",
        "model": {"path": str(assets / "models/person/yolox_nano.onnx")},
        "cameras": cameras,
        "outbox": {"path": str(tmp_path / "outbox.sqlite3")},
    }
    return parse_config(raw, tmp_path)


def _door(assets: Path) -> dict[str, Any]:
    return {"id": "door", "source": str(assets / DOOR), "fps": 5}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def detector(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Detector:
    cfg = _config(assets, tmp_path_factory.mktemp("det"), [_door(assets)])
    return open_detector(cfg, max_batch=2)


def _step_until(
    agent: EdgeAgent, what: str, done: Callable[[], bool], timeout_s: float = 90
) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        agent.step(wait_s=0.2)


@pytest.fixture()
def running(
    assets: Path, tmp_path: Path, detector: Detector
) -> Iterator[tuple[EdgeAgent, Counter[str], Outbox]]:
    frames: Counter[str] = Counter()
    cfg = _config(assets, tmp_path, [_door(assets)])
    with Outbox.open(tmp_path / "outbox.sqlite3", "s1-box", "s1", reserve_bytes=0) as outbox:
        agent = EdgeAgent(
            cfg, detector, outbox=outbox, on_tracks=lambda f, t: frames.update([f.camera_id])
        )
        with agent:
            _step_until(agent, "door frames", lambda: frames["door"] >= 10)
            yield agent, frames, outbox


def test_a_switch_loses_no_record_of_the_cameras_before_or_after(
    assets: Path, tmp_path: Path, detector: Detector
) -> None:
    frames: Counter[str] = Counter()
    line = {"id": "aisle-line", "points": [[0.0, 0.6], [1.0, 0.6]], "inside": [0.5, 0.9]}
    first = _config(assets, tmp_path, [_door(assets)])
    second = _config(
        assets,
        tmp_path,
        [_door(assets), {"id": "aisle", "source": str(assets / AISLE), "fps": 5, "lines": [line]}],
    )
    with Outbox.open(tmp_path / "outbox.sqlite3", "s1-box", "s1", reserve_bytes=0) as outbox:
        agent = EdgeAgent(
            first, detector, outbox=outbox, on_tracks=lambda f, t: frames.update([f.camera_id])
        )
        with agent:
            _step_until(agent, "door frames", lambda: frames["door"] >= 10)
            door_before = frames["door"]
            old_reader = agent.readers["door"]
            request = agent.request_reconfigure(second, trial_s=1.0)
            _step_until(agent, "the trial", lambda: request.done)
            assert request.error is None
            assert agent.config is second and sorted(agent.readers) == ["aisle", "door"]
            assert old_reader.health().state is CameraState.STOPPED
            _step_until(
                agent,
                "frames of both cameras",
                lambda: frames["aisle"] >= 10 and frames["door"] >= door_before + 10,
            )
        records = outbox.pending(100_000, 2**40)
    rollups = [b for b in map(parse_record_body, records) if isinstance(b, Rollup)]
    # The people gauge takes one sample per analysed frame: every frame of both configs is in
    # a rollup in the outbox, the door's open bucket flushed at the switch included.
    for camera in ("door", "aisle"):
        people = [r for r in rollups if r.camera_id == camera and r.metric == "people"]
        assert sum(r.count for r in people) == frames[camera], camera
    door_people = [r for r in rollups if r.camera_id == "door" and r.metric == "people"]
    assert len(door_people) >= 2  # a partial bucket before the switch and one after
    assert {r.metric for r in rollups if r.target_id == "aisle-line"} == {"line_in", "line_out"}


@pytest.mark.parametrize("source", ["missing.mp4", "rtsp://127.0.0.1:{port}/live"])
def test_a_config_whose_camera_cannot_stream_is_rolled_back_in_its_trial(
    assets: Path,
    tmp_path: Path,
    running: tuple[EdgeAgent, Counter[str], Outbox],
    source: str,
) -> None:
    agent, frames, _ = running
    before = agent.config
    bad = _config(assets, tmp_path, [{"id": "new", "source": source.format(port=_closed_port())}])
    request = agent.request_reconfigure(bad, trial_s=2.0)
    _step_until(agent, "the trial", lambda: request.done)
    assert request.error is not None
    assert "no enabled camera streamed within the 2 s trial" in request.error
    assert "new: " in request.error  # the camera's state and last error, for the hub
    assert agent.config is before and list(agent.readers) == ["door"]
    seen = frames["door"]
    _step_until(agent, "door frames again", lambda: frames["door"] >= seen + 5)


def test_a_config_that_cannot_be_built_leaves_the_cameras_running(
    assets: Path, tmp_path: Path, running: tuple[EdgeAgent, Counter[str], Outbox]
) -> None:
    agent, frames, _ = running
    reader = agent.readers["door"]
    bad = _config(assets, tmp_path, [{"id": "cam", "source": "gopher://10.0.0.1/x"}])
    request = agent.request_reconfigure(bad, trial_s=2.0)
    with pytest.raises(RuntimeError, match="under way"):
        agent.request_reconfigure(bad)
    _step_until(agent, "the request", lambda: request.done)
    assert request.error is not None and request.error.startswith("not applied: SourceError")
    assert agent.readers["door"] is reader and reader.health().state is CameraState.STREAMING
    seen = frames["door"]
    _step_until(agent, "door frames", lambda: frames["door"] >= seen + 5)


def test_a_step_failing_in_the_trial_switches_back(
    assets: Path, tmp_path: Path, detector: Detector
) -> None:
    frames: Counter[str] = Counter()

    def on_tracks(frame: Any, tracks: Any) -> None:
        if frame.camera_id == "flaky":
            raise RuntimeError("the new camera's consumer broke")
        frames.update([frame.camera_id])

    first = _config(assets, tmp_path, [_door(assets)])
    flaky = _config(assets, tmp_path, [{"id": "flaky", "source": str(assets / AISLE)}])
    with Outbox.open(tmp_path / "outbox.sqlite3", "s1-box", "s1", reserve_bytes=0) as outbox:
        agent = EdgeAgent(first, detector, outbox=outbox, on_tracks=on_tracks)
        with agent:
            _step_until(agent, "door frames", lambda: frames["door"] >= 5)
            request = agent.request_reconfigure(flaky, trial_s=30.0)
            _step_until(agent, "the trial", lambda: request.done)
            assert request.error is not None
            assert "a step failed: RuntimeError: the new camera's consumer broke" in request.error
            assert agent.config is first
            seen = frames["door"]
            _step_until(agent, "door frames", lambda: frames["door"] >= seen + 5)
