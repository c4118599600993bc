"""One reader thread per camera, keeping only the newest sampled frame for the detector."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import cv2

from edge_agent.errors import SourceError
from edge_agent.sources.backoff import BackoffPolicy, backoff_delay
from edge_agent.sources.capture import (
    DEFAULT_TIMEOUT_S,
    capture_info,
    open_source,
    retrieve_bgr,
)
from edge_agent.sources.frame import Frame
from edge_agent.sources.health import CameraHealth, CameraState, RateMeter
from edge_agent.sources.sampling import MediaClock, MediaTimeSampler
from edge_agent.sources.spec import SourceKind, SourceSpec, parse_source

logger = logging.getLogger(__name__)

#: Default sampling rate for analytics, frames per second.
DEFAULT_TARGET_FPS = 3.0


class CameraReader:
    """Reads one camera in its own thread and keeps only its newest sampled frame.

    Live sources (network streams, USB devices) are read as fast as they deliver; a file is
    replayed in real time, paced by its media time (for batch analysis use `FileSource`).
    Frames are sampled to `target_fps` (None: every frame) and put in a one-slot buffer: a new
    frame overwrites the previous one, and an overwritten frame that no consumer took counts
    as dropped, so a slow consumer never builds a backlog.

    A live source that fails to open, stops sending, or exceeds `read_timeout_s` is reopened
    with capped exponential backoff, forever, until `stop()`. A file that cannot be opened or
    decoded puts the reader in state `failed`; a file that ends puts it in `stopped` (or
    replays from the start with `loop=True`). Problems are reported through `health()` and the
    log, never raised into the consumer.

    `Frame.index` counts every frame read since `start()` (across reconnects and loops, so it
    only increases); `Frame.media_time_s` is the file's media time (plus the length of earlier
    loops), or seconds since `start()` for live sources.

    `clock` is a monotonic clock in seconds (pacing, ages, rates), `wall_clock` gives UNIX
    seconds for `Frame.captured_at`, `rng` draws the backoff jitter.
    """

    def __init__(
        self,
        camera_id: str,
        source: str | int | Path | SourceSpec,
        *,
        target_fps: float | None = DEFAULT_TARGET_FPS,
        backoff: BackoffPolicy | None = None,
        open_timeout_s: float = DEFAULT_TIMEOUT_S,
        read_timeout_s: float = DEFAULT_TIMEOUT_S,
        loop: bool = False,
        rate_window_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        """Configure the reader; nothing is opened until `start()`.

        Raises:
            SourceError: the source string cannot be parsed (e.g. an unknown URL scheme).
        """
        self.camera_id = camera_id
        self.spec = source if isinstance(source, SourceSpec) else parse_source(source)
        self._sampler = MediaTimeSampler(target_fps)
        self.target_fps = target_fps
        self.backoff = backoff or BackoffPolicy()
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.loop = loop
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()

        self._cond = threading.Condition()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        # All fields below are guarded by self._cond.
        self._state = CameraState.CONNECTING
        self._slot: Frame | None = None
        self._slot_taken = False
        self._dropped = 0
        self._frames_read = 0
        self._frames_processed = 0
        self._reconnects = 0
        self._last_error: str | None = None
        self._last_frame_at: float | None = None
        self._input_rate = RateMeter(rate_window_s, clock())
        self._processed_rate = RateMeter(rate_window_s, clock())

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the reader thread. A reader can be started once."""
        if self._thread is not None:
            raise RuntimeError(f"camera {self.camera_id}: reader already started")
        now = self._clock()
        with self._cond:
            self._input_rate = RateMeter(self._input_rate.window_s, now)
            self._processed_rate = RateMeter(self._processed_rate.window_s, now)
        self._thread = threading.Thread(
            target=self._run, name=f"camera-{self.camera_id}", daemon=False
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop reading and join the thread (returns within about one open/read timeout)."""
        self._stop_event.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        with self._cond:
            if self._state is not CameraState.FAILED:
                self._state = CameraState.STOPPED
            self._cond.notify_all()

    @property
    def running(self) -> bool:
        """True while the reader thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> CameraReader:
        """Start the reader."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the reader and join its thread."""
        self.stop()

    # ---- consumer API ----------------------------------------------------------------------

    def latest(self, after_index: int | None = None) -> Frame | None:
        """The newest frame, without blocking; None if there is none to give.

        `after_index=None`: the newest frame only if no consumer has taken it yet.
        `after_index=i`: the newest frame only if its index is greater than `i`.
        """
        with self._cond:
            return self._take(after_index)

    def wait_latest(self, timeout_s: float, after_index: int | None = None) -> Frame | None:
        """Like `latest`, but waits up to `timeout_s` seconds for such a frame.

        Returns None on timeout, or at once when the reader has stopped or failed.
        """
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                frame = self._take(after_index)
                if frame is not None:
                    return frame
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._finished():
                    return None
                self._cond.wait(remaining)

    @property
    def newest_index(self) -> int | None:
        """Index of the frame now in the slot (taken or not), None before the first frame."""
        with self._cond:
            return None if self._slot is None else self._slot.index

    def health(self, now: float | None = None) -> CameraHealth:
        """A snapshot of the camera's health; `now` is a `clock` reading (default: read it)."""
        now = self._clock() if now is None else now
        with self._cond:
            age = None if self._last_frame_at is None else max(0.0, now - self._last_frame_at)
            return CameraHealth(
                camera_id=self.camera_id,
                state=self._state,
                input_fps=self._input_rate.rate(now),
                processed_fps=self._processed_rate.rate(now),
                dropped_frames=self._dropped,
                frames_read=self._frames_read,
                frames_processed=self._frames_processed,
                last_frame_age_s=age,
                reconnect_count=self._reconnects,
                last_error=self._last_error,
            )

    def _take(self, after_index: int | None) -> Frame | None:
        frame = self._slot
        if frame is None:
            return None
        if after_index is None:
            if self._slot_taken:
                return None
        elif frame.index <= after_index:
            return None
        if not self._slot_taken:
            self._slot_taken = True
            self._frames_processed += 1
            self._processed_rate.mark(self._clock())
        return frame

    def _finished(self) -> bool:
        return self._stop_event.is_set() or self._state in (
            CameraState.STOPPED,
            CameraState.FAILED,
        )

    # ---- reader thread ---------------------------------------------------------------------

    def _set_state(self, state: CameraState, error: str | None = None) -> None:
        with self._cond:
            self._state = state
            if error is not None:
                self._last_error = error
            self._cond.notify_all()

    def _publish(self, frame: Frame) -> None:
        with self._cond:
            if self._slot is not None and not self._slot_taken:
                self._dropped += 1
            self._slot = frame
            self._slot_taken = False
            self._cond.notify_all()

    def _run(self) -> None:
        try:
            self._read_forever()
        except Exception as exc:  # thread boundary: report it, the consumer must not see it
            logger.exception("camera %s: reader crashed", self.camera_id)
            self._set_state(CameraState.FAILED, f"reader crashed: {exc!r}")

    def _read_forever(self) -> None:
        start = self._clock()
        attempt = 0
        loop_offset_s = 0.0
        pace_origin: float | None = None
        while not self._stop_event.is_set():
            try:
                capture = open_source(
                    self.spec,
                    open_timeout_s=self.open_timeout_s,
                    read_timeout_s=self.read_timeout_s,
                )
            except SourceError as exc:
                if self.spec.kind is SourceKind.FILE:
                    logger.error("camera %s: %s", self.camera_id, exc)
                    self._set_state(CameraState.FAILED, str(exc))
                    return
                self._wait_before_retry(attempt, str(exc))
                attempt += 1
                continue
            session = _Session(loop_offset_s, pace_origin)
            try:
                self._pump(capture, start, session)
            except cv2.error as exc:
                message = f"OpenCV error while reading {self.spec.display}: {exc}"
                logger.warning("camera %s: %s", self.camera_id, message)
                self._set_state(CameraState.RECONNECTING, message)
            finally:
                capture.release()
            if self._stop_event.is_set():
                return
            pace_origin = session.pace_origin
            read = session.frames_read
            if read > 0:
                attempt = 0
            if self.spec.kind is SourceKind.FILE:
                if read == 0:
                    message = f"no frame could be decoded from video file {self.spec.location}"
                    logger.error("camera %s: %s", self.camera_id, message)
                    self._set_state(CameraState.FAILED, message)
                    return
                if not self.loop:
                    logger.info("camera %s: end of file %s", self.camera_id, self.spec.location)
                    self._set_state(CameraState.STOPPED)
                    return
                loop_offset_s = session.last_media_time_s + session.frame_period_s
                continue
            self._wait_before_retry(
                attempt,
                f"{self.spec.display} stopped sending frames after {read} frames "
                f"(stream ended, or no frame within {self.read_timeout_s:g} s)",
            )
            attempt += 1

    def _wait_before_retry(self, attempt: int, error: str) -> None:
        delay = backoff_delay(attempt, self.backoff, self._rng.random())
        logger.warning(
            "camera %s: %s; reconnecting in %.1f s (attempt %d)",
            self.camera_id,
            error,
            delay,
            attempt + 1,
        )
        self._set_state(CameraState.RECONNECTING, error)
        if self._stop_event.wait(delay):
            return
        with self._cond:
            self._reconnects += 1

    def _pump(self, capture: cv2.VideoCapture, start: float, session: _Session) -> None:
        """Read one open session of the source until it ends, updating `session`."""
        info = capture_info(capture, self.spec)
        media_clock = MediaClock(info.fps)
        session.frame_period_s = media_clock.frame_period_s
        sampler_period = media_clock.frame_period_s if info.fps is not None else 0.0
        is_file = self.spec.kind is SourceKind.FILE
        while not self._stop_event.is_set():
            if not capture.grab():
                return
            now = self._clock()
            if is_file:
                t = session.loop_offset_s + media_clock.time_s(capture.get(cv2.CAP_PROP_POS_MSEC))
                if session.pace_origin is None:
                    session.pace_origin = now - t
                wait_s = session.pace_origin + t - now
                if wait_s > 0 and self._stop_event.wait(wait_s):
                    return
                now = self._clock()
            else:
                t = now - start
            session.frames_read += 1
            session.last_media_time_s = t
            with self._cond:
                index = self._frames_read
                self._frames_read += 1
                self._last_frame_at = now
                self._input_rate.mark(now)
                if self._state is not CameraState.STREAMING:
                    self._state = CameraState.STREAMING
                    logger.info("camera %s: streaming from %s", self.camera_id, self.spec.display)
            if not self._sampler.select(t, sampler_period):
                continue
            image = retrieve_bgr(capture)
            if image is None:
                logger.debug("camera %s: frame %d could not be decoded", self.camera_id, index)
                continue
            self._publish(Frame(self.camera_id, image, index, t, self._wall_clock()))


@dataclass(slots=True)
class _Session:
    """Book-keeping for one open capture, carried over to the next (file loops, pacing)."""

    loop_offset_s: float
    pace_origin: float | None
    frames_read: int = 0
    last_media_time_s: float = 0.0
    frame_period_s: float = 0.0
