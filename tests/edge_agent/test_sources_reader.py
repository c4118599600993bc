"""CameraReader on real footage and a real loopback stream: reconnects, drops, lifecycle."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from edge_agent.errors import SourceError
from edge_agent.sources import BackoffPolicy, CameraReader, CameraState, Frame
from tests.edge_agent.streaming import StreamServer, free_port

# Generous: the reference machine has 2 cores and other test files may run beside us.
TIMEOUT_S = 30.0
FAST_BACKOFF = BackoffPolicy(initial_s=0.1, factor=2.0, cap_s=1.0, jitter_s=0.05)


def wait_until(condition: Callable[[], bool], timeout_s: float = TIMEOUT_S) -> None:
    """Poll `condition` until it holds; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s} s")
        time.sleep(0.02)


def next_frame(reader: CameraReader, after_index: int | None) -> Frame:
    """The next frame newer than `after_index`, failing the test if none arrives in time."""
    frame = reader.wait_latest(TIMEOUT_S, after_index=after_index)
    if frame is None:
        pytest.fail(f"camera {reader.camera_id} delivered nothing; health {reader.health()}")
    return frame


def has_dropped(reader: CameraReader, count: int) -> Callable[[], bool]:
    """A condition: the reader has dropped at least `count` frames."""
    return lambda: reader.health().dropped_frames >= count


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every reader thread a test starts must be joined by the end of it."""
    before = set(threading.enumerate())
    yield
    leaked = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert leaked == []


@pytest.mark.timeout(180)
def test_stream_camera_reconnects_while_file_camera_keeps_running(
    assets: Path, tmp_path: Path
) -> None:
    videos = assets / "videos"
    server = StreamServer(
        videos / "one-by-one-person-detection.mp4", free_port(), tmp_path / "ffmpeg.log"
    )
    stream_cam = CameraReader(
        "entrance",
        server.url,
        backoff=FAST_BACKOFF,
        open_timeout_s=3.0,
        read_timeout_s=3.0,
    )
    file_cam = CameraReader("shelf", videos / "bottle-detection.mp4")
    try:
        stream_cam.start()
        file_cam.start()
        # Nothing listens yet: the stream camera keeps retrying by itself.
        wait_until(lambda: stream_cam.health().reconnect_count >= 1)
        assert stream_cam.health().state is CameraState.RECONNECTING
        assert server.url in (stream_cam.health().last_error or "")

        server.start()
        before_outage = next_frame(stream_cam, None)
        assert (before_outage.width, before_outage.height) == (768, 432)
        wait_until(lambda: stream_cam.health().state is CameraState.STREAMING)
        reconnects_before = stream_cam.health().reconnect_count

        # Outage: the server dies abruptly.
        server.stop()
        wait_until(lambda: stream_cam.health().state is CameraState.RECONNECTING)
        last_stream_index = stream_cam.newest_index
        assert last_stream_index is not None

        # The file camera keeps delivering while the stream is down.
        shelf_index = next_frame(file_cam, None).index
        for _ in range(3):
            shelf_index = next_frame(file_cam, shelf_index).index
            assert stream_cam.health().state is not CameraState.STREAMING
            assert stream_cam.newest_index == last_stream_index

        # The server comes back on the same port: the stream camera recovers on its own.
        server.start()
        after_outage = next_frame(stream_cam, last_stream_index)
        assert after_outage.index > last_stream_index
        assert after_outage.media_time_s > before_outage.media_time_s
        health = stream_cam.health()
        assert health.state is CameraState.STREAMING
        assert health.reconnect_count > reconnects_before
        assert health.last_frame_age_s is not None
        # ...and the file camera went on meanwhile.
        assert next_frame(file_cam, shelf_index).index > shelf_index
        assert file_cam.health().state is CameraState.STREAMING
        assert file_cam.health().reconnect_count == 0
    finally:
        stream_cam.stop()
        file_cam.stop()
        server.stop()
    assert not stream_cam.running and not file_cam.running
    assert not server.running
    assert stream_cam.health().state is CameraState.STOPPED


@pytest.mark.timeout(120)
def test_slow_consumer_gets_the_newest_frame_and_drops_are_counted(assets: Path) -> None:
    # Every frame of the 10 fps file is offered (no sampling); the consumer takes few of them.
    reader = CameraReader(
        "door", assets / "videos" / "one-by-one-person-detection.mp4", target_fps=None
    )
    taken: list[int] = []
    with reader:
        taken.append(next_frame(reader, None).index)
        for _ in range(5):
            # Be slow: let the reader overwrite at least two frames nobody took.
            wait_until(has_dropped(reader, reader.health().dropped_frames + 2))
            newest_before = reader.newest_index
            frame = reader.latest()
            assert frame is not None and newest_before is not None
            assert frame.index >= newest_before  # never a stale frame
            assert frame.index >= taken[-1] + 3  # two or more frames skipped in between
            assert reader.latest() is None  # the same frame is not handed out twice
            taken.append(frame.index)
    leftover = reader.latest()  # the slot may still hold one frame nobody took
    if leftover is not None:
        taken.append(leftover.index)
    health = reader.health()
    # Every frame read and not taken was overwritten: the drop count is the consumer's gaps.
    assert health.dropped_frames == health.frames_read - len(taken)
    assert health.frames_processed == len(taken)
    assert taken == sorted(set(taken))


@pytest.mark.timeout(60)
def test_file_camera_is_paced_and_loops_with_increasing_media_time(assets: Path) -> None:
    path = assets / "videos" / "face-demographics-walking.gif"  # 35 frames, 2.9 s
    frames: list[Frame] = []
    with CameraReader("walk", path, target_fps=None, loop=True) as reader:
        while not frames or frames[-1].index < 40:
            frames.append(next_frame(reader, frames[-1].index if frames else None))
    indices = [f.index for f in frames]
    times = [f.media_time_s for f in frames]
    assert indices == sorted(set(indices))
    assert all(np.diff(times) > 0)
    assert times[-1] > 2.9  # into the second pass of a 2.9 s file
    # Paced in real time: frames 2.9 s of media apart were decoded about that far apart.
    walls = [f.captured_at for f in frames]
    assert walls[-1] - walls[0] >= 0.5 * (times[-1] - times[0])


@pytest.mark.timeout(60)
def test_file_camera_ends_in_stopped_after_every_frame(assets: Path) -> None:
    path = assets / "videos" / "face-demographics-walking.gif"  # 35 frames (README)
    with CameraReader("walk", path, target_fps=None) as reader:
        wait_until(lambda: reader.health().state is CameraState.STOPPED)
        assert reader.health().frames_read == 35
        assert reader.wait_latest(5.0, after_index=34) is None  # returns at once: no more
        last = reader.latest(after_index=33)
        assert last is not None and last.index == 34


@pytest.mark.timeout(60)
def test_broken_file_camera_fails_without_raising(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(range(256)) * 1000)
    with CameraReader("broken", path) as reader:
        wait_until(lambda: reader.health().state is CameraState.FAILED)
        assert reader.wait_latest(5.0) is None
        assert reader.latest() is None
        assert str(path) in (reader.health().last_error or "")
    assert reader.health().state is CameraState.FAILED


@pytest.mark.timeout(60)
def test_unplugged_usb_camera_keeps_retrying_and_stops_promptly() -> None:
    with CameraReader("usb", "97", backoff=FAST_BACKOFF) as reader:
        wait_until(lambda: reader.health().reconnect_count >= 2)
        health = reader.health()
        assert health.state is CameraState.RECONNECTING
        assert "USB camera 97" in (health.last_error or "")
        assert health.frames_read == 0 and health.last_frame_age_s is None
        assert reader.latest() is None
    assert not reader.running


def test_unknown_scheme_is_rejected_at_construction() -> None:
    with pytest.raises(SourceError, match="ftp"):
        CameraReader("x", "ftp://nas/clip.mp4")


def test_reader_starts_once(assets: Path) -> None:
    with CameraReader("x", assets / "videos" / "classroom.gif") as reader:
        with pytest.raises(RuntimeError, match="already started"):
            reader.start()
        next_frame(reader, None)
