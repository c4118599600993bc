"""Reconnect delays: capped exponential backoff with additive jitter (pure maths, seconds)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How long to wait before reconnecting to a camera (all values in seconds).

    The n-th retry (n = 0, 1, 2, ...) waits `min(cap_s, initial_s * factor**n)` plus a random
    jitter in `[0, jitter_s)`, so that many cameras behind one failed switch do not all retry
    at the same instant.
    """

    initial_s: float = 0.5
    factor: float = 2.0
    cap_s: float = 30.0
    jitter_s: float = 0.25

    def __post_init__(self) -> None:
        if not (math.isfinite(self.initial_s) and self.initial_s > 0):
            raise ValueError(f"backoff initial delay must be > 0 s, got {self.initial_s!r}")
        if not (math.isfinite(self.factor) and self.factor >= 1):
            raise ValueError(f"backoff factor must be >= 1, got {self.factor!r}")
        if not (math.isfinite(self.cap_s) and self.cap_s >= self.initial_s):
            raise ValueError(
                f"backoff cap ({self.cap_s!r} s) must be >= the initial delay ({self.initial_s} s)"
            )
        if not (math.isfinite(self.jitter_s) and self.jitter_s >= 0):
            raise ValueError(f"backoff jitter must be >= 0 s, got {self.jitter_s!r}")


def backoff_delay(attempt: int, policy: BackoffPolicy, jitter_fraction: float) -> float:
    """Seconds to wait before retry number `attempt` (0-based).

    `jitter_fraction` in [0, 1) is the random draw (e.g. `random.random()`), passed in so the
    function stays pure. The result never exceeds `policy.cap_s + policy.jitter_s`.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    if not 0.0 <= jitter_fraction <= 1.0:
        raise ValueError(f"jitter fraction must be in [0, 1], got {jitter_fraction!r}")
    # Compare exponents in log space so huge attempt counts cannot overflow a float.
    if policy.factor == 1.0 or attempt * math.log(policy.factor) < math.log(
        policy.cap_s / policy.initial_s
    ):
        base = min(policy.cap_s, policy.initial_s * policy.factor**attempt)
    else:
        base = policy.cap_s
    return base + policy.jitter_s * jitter_fraction
