"""Queue maths: service rate over a trailing window and the expected wait by Little's law.

Estimator: ``W = L / λ`` where ``L`` is the number of people in the queue zone now and ``λ``
is the measured throughput: people who left the queue (visits that ended, pass-bys excluded)
in the trailing ``window_s``, divided by the observed part of that window. Little's law
(``L̄ = λ W̄``) makes this unbiased *on average* for the time spent in the queue zone (waiting
plus being served, when the service point is inside the zone); it is not a per-person
prediction. With nobody served in the window there is no rate, and the estimate is None.
"""

from __future__ import annotations

from collections import deque


class QueueWaitEstimator:
    """Throughput and expected time in queue for one queue zone; times are media seconds."""

    def __init__(self, window_s: float = 300.0) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0 seconds, got {window_s}")
        self.window_s = window_s
        self._start_s: float | None = None
        self._departures: deque[float] = deque()

    def observe(self, t_s: float) -> None:
        """Note that the queue was watched at ``t_s`` (the first call starts the clock)."""
        if self._start_s is None:
            self._start_s = t_s

    def record_departure(self, t_s: float) -> None:
        """Someone left the queue (was served) at ``t_s``."""
        if self._start_s is None or t_s < self._start_s:
            self._start_s = t_s
        self._departures.append(t_s)

    def service_rate(self, t_s: float) -> float | None:
        """People served per second over the trailing window ending at ``t_s``; None if nobody
        was served in it or no time has been observed."""
        while self._departures and self._departures[0] <= t_s - self.window_s:
            self._departures.popleft()
        if self._start_s is None or not self._departures:
            return None
        span = min(self.window_s, t_s - self._start_s)
        if span <= 0:
            return None
        return len(self._departures) / span

    def expected_wait(self, queue_length: int, t_s: float) -> float | None:
        """Expected seconds in the queue for someone joining at ``t_s``: L / λ, or None."""
        rate = self.service_rate(t_s)
        if rate is None:
            return None
        return queue_length / rate
