"""Video files as a plain iterator of frames (batch analysis, no threads, no pacing)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np
import numpy.typing as npt

from edge_agent.errors import SourceError
from edge_agent.sources.capture import CaptureInfo, capture_info, open_source, retrieve_bgr
from edge_agent.sources.frame import Frame
from edge_agent.sources.sampling import MediaClock, MediaTimeSampler
from edge_agent.sources.spec import SourceKind, SourceSpec, parse_source

logger = logging.getLogger(__name__)


class FileSource:
    """Frames of a video file, every frame or sampled to a target fps by media time.

    Opening validates the file at once: a missing, empty or undecodable file raises
    `SourceError`, as does a file from which not even the first frame decodes (message names
    the file and frame 0).

    Truncated files: a file that decodes for a while and then breaks (cut mid-way by a full
    disk or an interrupted copy) ends the iteration early with a logged WARNING, keeping the
    frames read so far, and sets `ended_early`. Raising instead would throw away minutes of
    good footage for a defect in its last seconds, and FFmpeg cannot tell a cut from a clean
    end anyway; the only evidence is the container's frame count, so the warning fires when
    fewer frames than that count were read.

    Sampling (`target_fps`): yields the frames closest to media times 0, 1/fps, 2/fps, ...
    using the container's timestamps (`CAP_PROP_POS_MSEC`); frames not selected are only
    grabbed, never converted/copied with `retrieve()`.

    Each `iter()` decodes the file from the start; the capture opened for validation is reused
    by the first iteration. Use as a context manager (or call `close()`) to release it early.
    """

    def __init__(
        self,
        source: str | Path | SourceSpec,
        *,
        camera_id: str = "file",
        target_fps: float | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Open and validate `source` (a file path); `target_fps` None yields every frame."""
        spec = source if isinstance(source, SourceSpec) else parse_source(source)
        if spec.kind is not SourceKind.FILE:
            raise SourceError(
                f"FileSource reads video files; {spec.display} is a {spec.kind} source "
                "(use CameraReader for live cameras)"
            )
        MediaTimeSampler(target_fps)  # validates target_fps before any I/O
        self.spec = spec
        self.path = Path(spec.location)
        self.camera_id = camera_id
        self.target_fps = target_fps
        self._wall_clock = wall_clock
        capture, first = self._open_first()
        self._pending: tuple[cv2.VideoCapture, npt.NDArray[np.uint8], float] | None = (
            capture,
            *first,
        )
        self.info: CaptureInfo = capture_info(capture, spec)
        self.width = first[0].shape[1]
        self.height = first[0].shape[0]
        self.frames_read = 0
        self.ended_early = False

    @property
    def fps(self) -> float | None:
        """The container's nominal frame rate (frames per second), None if unknown."""
        return self.info.fps

    @property
    def frame_count(self) -> int | None:
        """Total frames in the file according to the container, None if unknown (raw .264)."""
        return self.info.frame_count

    @property
    def duration_s(self) -> float | None:
        """Nominal duration in seconds (frame count / fps), None if either is unknown."""
        if self.info.frame_count is None or self.info.fps is None:
            return None
        return self.info.frame_count / self.info.fps

    @property
    def expected_frames(self) -> int | None:
        """How many frames one iteration should yield (for a progress bar), None if unknown."""
        count = self.info.frame_count
        if count is None or self.target_fps is None:
            return count
        duration = self.duration_s
        if duration is None or self.info.fps is None or self.target_fps >= self.info.fps:
            return count
        return math.floor((duration - 0.5 / self.info.fps) * self.target_fps) + 1

    def _open_first(self) -> tuple[cv2.VideoCapture, tuple[npt.NDArray[np.uint8], float]]:
        capture = open_source(self.spec)
        image = retrieve_bgr(capture) if capture.grab() else None
        if image is None:
            capture.release()
            raise SourceError(
                f"no frame could be decoded from video file {self.path} (failed at frame 0): "
                "the file is damaged or truncated"
            )
        return capture, (image, float(capture.get(cv2.CAP_PROP_POS_MSEC)))

    def __iter__(self) -> Iterator[Frame]:
        """Yield `Frame`s in file order; `Frame.index` counts every decoded frame from 0."""
        if self._pending is not None:
            capture, image, position_ms = self._pending
            self._pending = None
        else:
            capture, (image, position_ms) = self._open_first()
        try:
            yield from self._frames(capture, image, position_ms)
        finally:
            capture.release()

    def _frames(
        self, capture: cv2.VideoCapture, first: npt.NDArray[np.uint8], first_ms: float
    ) -> Iterator[Frame]:
        sampler = MediaTimeSampler(self.target_fps)
        clock = MediaClock(self.info.fps)
        period = clock.frame_period_s
        t = clock.time_s(first_ms)
        sampler.select(t, period)  # the first frame is always selected
        self.frames_read = 1
        self.ended_early = False
        yield Frame(self.camera_id, first, 0, t, self._wall_clock())
        index = 0
        while capture.grab():
            index += 1
            self.frames_read = index + 1
            t = clock.time_s(capture.get(cv2.CAP_PROP_POS_MSEC))
            if not sampler.select(t, period):
                continue
            image = retrieve_bgr(capture)
            if image is None:
                logger.warning("%s: frame %d grabbed but could not be decoded", self.path, index)
                continue
            yield Frame(self.camera_id, image, index, t, self._wall_clock())
        expected = self.info.frame_count
        if expected is not None and self.frames_read < expected:
            self.ended_early = True
            logger.warning(
                "video file %s ended after %d of %d frames (truncated or damaged?); "
                "keeping the frames read so far",
                self.path,
                self.frames_read,
                expected,
            )

    def close(self) -> None:
        """Release the capture held since opening (iterations release their own)."""
        if self._pending is not None:
            self._pending[0].release()
            self._pending = None

    def __enter__(self) -> FileSource:
        """Return self; the file is already open."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release the capture."""
        self.close()
