"""FileSource and open_source on the real footage in the shared assets, and on broken files."""

from __future__ import annotations

import logging
import random
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from edge_agent.errors import SourceError
from edge_agent.sources import FileSource

# From the assets README (width, height, fps, frames); fps as printed there (1 decimal).
README_VIDEOS = {
    "one-by-one-person-detection.mp4": (768, 432, 10.0, 1394),
    "bottle-detection.mp4": (640, 360, 29.8, 1189),
    "store-aisle-detection.gif": (480, 270, 16.7, 67),
    "worker-zone-detection.gif": (480, 270, 16.7, 71),
    "face-demographics-walking.gif": (480, 270, 12.5, 35),
    "face-demographics-walking-and-pause.gif": (480, 270, 12.5, 41),
    "classroom.gif": (480, 270, 16.7, 45),
    "fruit-and-vegetable-detection.gif": (480, 270, 16.7, 101),
}
LONG_VIDEO = "one-by-one-person-detection.mp4"


def ffmpeg_first_frame_rgb(path: Path) -> tuple[np.ndarray, float]:
    """First frame (RGB) and duration (s) as decoded by the standalone FFmpeg binary."""
    reader = imageio_ffmpeg.read_frames(str(path))
    try:
        meta = next(reader)
        width, height = meta["size"]
        raw = next(reader)
    finally:
        reader.close()
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3), float(meta["duration"])


def test_assets_hold_exactly_the_documented_videos(assets: Path) -> None:
    found = {p.name for p in (assets / "videos").iterdir() if p.suffix in {".mp4", ".gif"}}
    assert found == set(README_VIDEOS)


@pytest.mark.parametrize("name", sorted(README_VIDEOS))
def test_every_asset_video_decodes_completely(assets: Path, name: str) -> None:
    width, height, fps, n_frames = README_VIDEOS[name]
    path = assets / "videos" / name
    reference_rgb, duration = ffmpeg_first_frame_rgb(path)

    with FileSource(path, camera_id="cam") as source:
        assert (source.width, source.height) == (width, height)
        assert source.frame_count == n_frames
        assert source.fps == pytest.approx(fps, abs=0.05)
        indices: list[int] = []
        times: list[float] = []
        shapes: set[tuple[tuple[int, ...], str]] = set()
        first = None
        for frame in source:
            if first is None:
                first = frame.image
            indices.append(frame.index)
            times.append(frame.media_time_s)
            shapes.add((frame.image.shape, frame.image.dtype.str))
            assert frame.camera_id == "cam"

    assert indices == list(range(n_frames))
    assert shapes == {((height, width, 3), "|u1")}
    assert np.all(np.diff(times) > 0)
    # The last frame starts within two frame periods of the end that FFmpeg reports.
    assert duration - 2.0 / fps <= times[-1] < duration
    assert not source.ended_early
    # Same pixels as the standalone FFmpeg decoder, in BGR order.
    assert first is not None
    diff = np.abs(first[..., ::-1].astype(np.int16) - reference_rgb.astype(np.int16))
    assert diff.mean() < 1.0


def test_sampling_by_media_time_three_fps_over_the_long_video(assets: Path) -> None:
    path = assets / "videos" / LONG_VIDEO
    _, duration = ffmpeg_first_frame_rgb(path)  # 139.4 s according to FFmpeg
    source_fps = 10.0  # README
    with FileSource(path, target_fps=3.0) as source:
        kept = [(frame.index, frame.media_time_s) for frame in source]
        expected_frames = source.expected_frames

    indices = np.array([i for i, _ in kept])
    times = np.array([t for _, t in kept])
    assert abs(len(kept) - 3.0 * duration) <= 1.0
    assert expected_frames == len(kept)
    # Consecutive kept frames are 1/3 s apart, give or take one source frame.
    gaps = np.diff(times)
    assert np.all(np.abs(gaps - 1.0 / 3.0) <= 1.0 / source_fps + 1e-6)
    # In a 10 fps file, the frame nearest k/3 s is frame round(10 k / 3), at that frame's time.
    k = np.arange(len(kept))
    np.testing.assert_array_equal(indices, np.round(10.0 * k / 3.0).astype(int))
    np.testing.assert_allclose(times, indices / source_fps, atol=1e-6)


def test_raw_h264_without_timestamps_or_frame_count(assets: Path, tmp_path: Path) -> None:
    raw = tmp_path / "clip.264"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            *("-hide_banner", "-loglevel", "error", "-nostdin", "-y"),
            *("-i", str(assets / "videos" / LONG_VIDEO), "-t", "5", "-c", "copy"),
            *("-bsf:v", "h264_mp4toannexb", "-f", "h264", str(raw)),
        ],
        check=True,
        timeout=60,
    )
    n_reference, _ = imageio_ffmpeg.count_frames_and_secs(str(raw))
    with FileSource(raw) as source:
        times = [frame.media_time_s for frame in source]
        assert source.frame_count is None  # raw H.264 has no container to count frames
    assert len(times) == n_reference
    assert np.all(np.diff(times) > 0)


def test_file_truncated_midway_keeps_frames_and_warns(
    assets: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    whole = (assets / "videos" / LONG_VIDEO).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    # How many frames the standalone FFmpeg binary decodes from the same damaged file.
    n_reference, _ = imageio_ffmpeg.count_frames_and_secs(str(cut))
    assert 100 < n_reference < 1394

    with caplog.at_level(logging.WARNING, logger="edge_agent.sources"), FileSource(cut) as source:
        indices = [frame.index for frame in source]
    assert source.frame_count == 1394  # the header still promises the whole video
    assert source.ended_early
    assert abs(len(indices) - n_reference) <= 1
    assert indices == list(range(len(indices)))
    assert any(str(cut) in r.getMessage() and "1394" in r.getMessage() for r in caplog.records)


def _write_broken(kind: str, tmp_path: Path, long_video: Path) -> Path:
    path = tmp_path / f"{kind}.mp4"
    if kind == "random-bytes":
        path.write_bytes(random.Random(7).randbytes(300_000))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "first-4KB":
        path.write_bytes(long_video.read_bytes()[:4096])
    elif kind == "header-only-20KB":  # opens (index intact) but holds no decodable frame
        path.write_bytes(long_video.read_bytes()[:20_000])
    elif kind == "text":
        path.write_text("not a video\n")
    elif kind == "folder":
        path.mkdir()
    elif kind == "missing":
        pass
    else:
        raise AssertionError(kind)
    return path


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "kind", ["random-bytes", "empty", "first-4KB", "header-only-20KB", "text", "folder", "missing"]
)
def test_broken_files_give_source_error_naming_the_file(
    kind: str, assets: Path, tmp_path: Path
) -> None:
    path = _write_broken(kind, tmp_path, assets / "videos" / LONG_VIDEO)
    with pytest.raises(SourceError) as info:
        FileSource(path)
    assert str(path) in str(info.value)
    if kind == "header-only-20KB":
        assert "frame 0" in str(info.value)


def test_file_source_refuses_live_sources() -> None:
    with pytest.raises(SourceError, match="CameraReader"):
        FileSource("rtsp://10.0.0.5/live")


def test_file_source_iterates_again_from_the_start(assets: Path) -> None:
    path = assets / "videos" / "face-demographics-walking.gif"
    _, duration = ffmpeg_first_frame_rgb(path)
    with FileSource(path, target_fps=5.0) as src:
        first_pass = [frame.index for frame in src]
        second_pass = [frame.index for frame in src]
    assert first_pass == second_pass
    assert first_pass[0] == 0
    assert abs(len(first_pass) - 5.0 * duration) <= 1.0  # 35 frames at 12.5 fps sampled to 5
