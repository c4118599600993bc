"""A debounced value per slot: the state takes a new value only once it held for ``hold_s``.

Each slot has a held ``state`` (an int code; ``UNKNOWN`` before any value held) and a
``candidate``: the latest observed value that differs from the state, with the time of its
first observation. Observing the state again drops the candidate; observing another value
restarts it; once the candidate has been observed on every observation for ``hold_s`` seconds,
it becomes the state and its ``since`` is the candidate's first observation. Slots not
observed on a frame (``seen`` false: hidden, or no answer) keep both.

So a status never changes before the new value held ``hold_s``, a single wrong frame never
changes it, and ``since`` says when the new value was first seen, not when it was confirmed.
Times are media seconds, passed in.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

UNKNOWN = -2  # no value has held yet
_EPS = 1e-9  # float slack on hold_s


class Debouncer:
    """Debounced int codes of ``n`` slots (vectorised: one call per frame)."""

    def __init__(self, n: int, hold_s: float) -> None:
        if hold_s < 0:
            raise ValueError(f"hold_s must be >= 0 s, got {hold_s}")
        self.hold_s = hold_s
        self.state: I64 = np.full(n, UNKNOWN, np.int64)
        self.since: F64 = np.full(n, np.nan)
        self._cand: I64 = np.full(n, UNKNOWN, np.int64)
        self._cand_since: F64 = np.full(n, np.nan)

    def observe(self, values: I64, t_s: float, seen: B | None = None) -> npt.NDArray[np.intp]:
        """Feed one frame's observed codes at media time ``t_s``; ``seen`` masks the slots
        observed (default all). Returns the indices of the slots whose state changed."""
        values = np.asarray(values, np.int64)
        seen = np.ones(len(values), bool) if seen is None else np.asarray(seen, bool)
        same = seen & (values == self.state)
        self._cand[same] = UNKNOWN
        differs = seen & ~same
        fresh = differs & (values != self._cand)
        self._cand[fresh] = values[fresh]
        self._cand_since[fresh] = t_s
        due = differs & (t_s - self._cand_since >= self.hold_s - _EPS)
        self.state[due] = self._cand[due]
        self.since[due] = self._cand_since[due]
        self._cand[due] = UNKNOWN
        return np.flatnonzero(due)

    def reset(self, slots: npt.NDArray[np.intp]) -> None:
        """Forget the state and candidate of ``slots`` (back to ``UNKNOWN``)."""
        self.state[slots] = UNKNOWN
        self.since[slots] = np.nan
        self._cand[slots] = UNKNOWN
        self._cand_since[slots] = np.nan
