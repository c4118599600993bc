"""Camera health: the snapshot a reader reports, and the rate meter behind its fps figures."""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass


class CameraState(enum.StrEnum):
    """Where a camera reader is in its lifecycle.

    connecting: opening the source for the first time.
    streaming: frames are arriving.
    reconnecting: the source failed or stopped; waiting (backoff) or reopening it.
    stopped: `stop()` was called, or a file camera reached its end.
    failed: the source can never work as configured (e.g. a missing or undecodable file).
    """

    CONNECTING = "connecting"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CameraHealth:
    """One camera's health at an instant.

    Attributes:
        camera_id: the configured camera id.
        state: lifecycle state (see `CameraState`).
        input_fps: frames per second read from the source, measured over the recent window.
        processed_fps: frames per second handed to the consumer, same window.
        dropped_frames: sampled frames overwritten in the one-slot buffer before any consumer
            took them (the consumer was too slow), since start.
        frames_read: frames read (decoded) from the source since start.
        frames_processed: frames handed to the consumer since start.
        last_frame_age_s: seconds since the last frame was read; None if none yet.
        reconnect_count: reopen attempts after a failure or the end of a stream, since start.
        last_error: text of the most recent failure, None if there was none.
    """

    camera_id: str
    state: CameraState
    input_fps: float
    processed_fps: float
    dropped_frames: int
    frames_read: int
    frames_processed: int
    last_frame_age_s: float | None
    reconnect_count: int
    last_error: str | None


class RateMeter:
    """Events per second over a sliding window (seconds); times are passed in, never read."""

    def __init__(self, window_s: float, start_s: float) -> None:
        """`window_s`: averaging window; `start_s`: when counting began (same clock as marks)."""
        if window_s <= 0:
            raise ValueError(f"rate window must be > 0 s, got {window_s!r}")
        self.window_s = window_s
        self.start_s = start_s
        self._times: deque[float] = deque()

    def mark(self, t_s: float) -> None:
        """Record one event at time `t_s` (non-decreasing)."""
        self._times.append(t_s)
        self._prune(t_s)

    def rate(self, now_s: float) -> float:
        """Events per second in the window ending at `now_s` (shorter just after start)."""
        self._prune(now_s)
        span = min(self.window_s, now_s - self.start_s)
        if span <= 0:
            return 0.0
        return len(self._times) / span

    def _prune(self, now_s: float) -> None:
        horizon = now_s - self.window_s
        times = self._times
        while times and times[0] <= horizon:
            times.popleft()
