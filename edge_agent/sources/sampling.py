"""Pure frame-sampling maths: which frames to keep for a target fps, and monotone media time.

No clocks and no OpenCV here: times come in as arguments (seconds).
"""

from __future__ import annotations

import math

#: Frame period (seconds) assumed when a source reports neither timestamps nor a frame rate.
FALLBACK_FRAME_PERIOD_S = 1.0 / 25.0

# Absorbs float error in k / fps so that a frame exactly on a boundary is treated consistently.
_EPS_S = 1e-9


class MediaTimeSampler:
    """Selects the frames closest to the target times 0, 1/fps, 2/fps, ... (seconds).

    Frames arrive in time order. A frame at time `t` is kept when it is the first frame whose
    time reaches the current target minus half a source frame period, i.e. when it is closer to
    the target than the next frame (which would arrive one period later) would be. After a
    keep, the next target is the first one that this frame does not already cover, so a gap in
    the input (a stall, a reconnect) does not cause a burst of catch-up frames.

    With `target_fps=None` every frame is kept. Use one sampler per camera and keep it across
    reconnects as long as the times stay monotone.
    """

    def __init__(self, target_fps: float | None) -> None:
        """`target_fps`: frames per second to keep (> 0), or None to keep every frame."""
        if target_fps is not None and not (math.isfinite(target_fps) and target_fps > 0):
            raise ValueError(f"target fps must be a positive number, got {target_fps!r}")
        self.target_fps = target_fps
        self._next_k = 0

    @property
    def next_target_s(self) -> float:
        """The media time (seconds) the next kept frame should be closest to."""
        return 0.0 if self.target_fps is None else self._next_k / self.target_fps

    def select(self, t_s: float, frame_period_s: float) -> bool:
        """Whether to keep the frame at media time `t_s` from a source with this frame period.

        `frame_period_s` is the source's nominal frame period in seconds (0 if unknown: then
        the first frame at or after each target is kept).
        """
        fps = self.target_fps
        if fps is None:
            return True
        half = 0.5 * max(frame_period_s, 0.0)
        if t_s < self._next_k / fps - half - _EPS_S:
            return False
        # Smallest k whose window (k / fps - half) starts after this frame.
        covered = math.floor((t_s + half + _EPS_S) * fps) + 1
        self._next_k = max(self._next_k + 1, covered)
        return True


class MediaClock:
    """Turns FFmpeg's reported frame positions into a strictly increasing media time (seconds).

    Containers with timestamps (mp4, avi, gif) report them through `CAP_PROP_POS_MSEC`; raw
    elementary streams (.264) report 0 for every frame. Whenever the reported position does
    not advance, the clock advances by one nominal frame period instead.
    """

    def __init__(self, fps: float | None) -> None:
        """`fps`: the source's nominal frame rate, None if unknown."""
        self.frame_period_s = 1.0 / fps if fps else FALLBACK_FRAME_PERIOD_S
        self._last_s: float | None = None

    def time_s(self, position_ms: float) -> float:
        """Media time in seconds of the frame just grabbed, given FFmpeg's position in ms."""
        reported = position_ms / 1000.0 if math.isfinite(position_ms) else -math.inf
        last = self._last_s
        if last is None:
            current = max(reported, 0.0)
        elif reported > last:
            current = reported
        else:
            current = last + self.frame_period_s
        self._last_s = current
        return current
