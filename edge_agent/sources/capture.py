"""Opening camera sources with OpenCV (FFmpeg backend) and reading their metadata.

This is the I/O shell around `cv2.VideoCapture`: it turns OpenCV's silent `isOpened() == False`
into a `SourceError` that says which file/stream/device failed and what to check.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge_agent.errors import SourceError
from edge_agent.sources.spec import SourceKind, SourceSpec, parse_source

logger = logging.getLogger(__name__)

#: Default limit (seconds) for connecting to a stream and for waiting on one frame.
DEFAULT_TIMEOUT_S = 10.0

# FFmpeg reports garbage (huge or negative) frame counts for streams and raw H.264.
_MAX_PLAUSIBLE_FRAMES = 1_000_000_000
_MAX_PLAUSIBLE_FPS = 1000.0


@dataclass(frozen=True, slots=True)
class CaptureInfo:
    """What the container says about an opened source.

    Attributes:
        fps: nominal frames per second, None where unknown or implausible.
        frame_count: total frames, None where unknown (streams, raw H.264).
        width: frame width in pixels (0 if not reported).
        height: frame height in pixels (0 if not reported).
    """

    fps: float | None
    frame_count: int | None
    width: int
    height: int


def plausible_fps(value: float) -> float | None:
    """`value` if it is a usable frame rate (0 < fps <= 1000), else None."""
    return value if math.isfinite(value) and 0.0 < value <= _MAX_PLAUSIBLE_FPS else None


def plausible_frame_count(value: float) -> int | None:
    """`value` as an int if it is a usable frame count (1 .. 1e9), else None."""
    if not math.isfinite(value) or not 0.0 < value < _MAX_PLAUSIBLE_FRAMES:
        return None
    return round(value)


def capture_info(capture: cv2.VideoCapture, spec: SourceSpec) -> CaptureInfo:
    """Read fps, frame count and size from an opened capture (frame count only for files)."""
    count = (
        plausible_frame_count(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if spec.kind is SourceKind.FILE
        else None
    )
    return CaptureInfo(
        fps=plausible_fps(capture.get(cv2.CAP_PROP_FPS)),
        frame_count=count,
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )


def _check_file(path: Path) -> None:
    if not path.exists():
        raise SourceError(
            f"video file not found: {path} (check the camera's `source` path; "
            f"relative paths are taken from {Path.cwd()})"
        )
    if path.is_dir():
        raise SourceError(f"video source is a folder, not a file: {path}")
    if not os.access(path, os.R_OK):
        raise SourceError(f"video file is not readable by this user: {path} (check permissions)")
    if path.stat().st_size == 0:
        raise SourceError(f"video file is empty (0 bytes): {path}")


def open_source(
    source: str | int | Path | SourceSpec,
    *,
    open_timeout_s: float = DEFAULT_TIMEOUT_S,
    read_timeout_s: float = DEFAULT_TIMEOUT_S,
) -> cv2.VideoCapture:
    """Open a camera source and return the opened `cv2.VideoCapture`; the caller releases it.

    Files and network streams use the FFmpeg backend; `open_timeout_s` / `read_timeout_s`
    (seconds) bound how long connecting and waiting for one frame may block, so a dead stream
    cannot hang the caller. Devices use OpenCV's default backend (V4L2 on Linux).

    Raises:
        SourceError: missing/empty/unreadable file, a file FFmpeg cannot decode, a stream that
            cannot be reached in time, or a device that cannot be opened. The message names the
            source (URL passwords redacted).
    """
    spec = source if isinstance(source, SourceSpec) else parse_source(source)
    if spec.kind is SourceKind.FILE:
        path = Path(spec.location)
        _check_file(path)
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            capture.release()
            raise SourceError(
                f"cannot decode video file {path}: FFmpeg does not recognise it as a video "
                "(corrupt, truncated, or not a video format)"
            )
        return capture
    if spec.kind is SourceKind.NETWORK:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            max(1, round(open_timeout_s * 1000)),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            max(1, round(read_timeout_s * 1000)),
        ]
        capture = cv2.VideoCapture(spec.location, cv2.CAP_FFMPEG, params)
        if not capture.isOpened():
            capture.release()
            raise SourceError(
                f"cannot open stream {spec.display} (refused, or no answer within "
                f"{open_timeout_s:g} s): is the camera on the network, and are the URL and "
                "credentials right?"
            )
        return capture
    device: int | str = spec.device_index if spec.device_index is not None else spec.location
    capture = cv2.VideoCapture(device)
    if not capture.isOpened():
        capture.release()
        raise SourceError(
            f"cannot open {spec.display} (is it plugged in, and not in use by another program?)"
        )
    return capture


def retrieve_bgr(capture: cv2.VideoCapture) -> npt.NDArray[np.uint8] | None:
    """Decode the frame last grabbed into a BGR uint8 (H, W, 3) array; None if that fails."""
    ok, image = capture.retrieve()
    if not ok or image is None:
        return None
    # No copy: FFmpeg frames already are uint8; this only narrows the type.
    return np.asarray(image, dtype=np.uint8)
