"""Per-track state kept as rows of numpy arrays, found by track id in one vectorised call."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

ColumnSpec = tuple[tuple[int, ...], npt.DTypeLike, Any]  # (trailing shape, dtype, fill value)


class TrackRows:
    """A growable table of per-track state: one row per track id, named numpy columns.

    ``rows(ids)`` maps a frame's track ids to row indices with a sorted search (no Python loop
    over boxes), adding rows filled with each column's fill value for ids never seen before.
    ``keep(mask)`` drops rows (tracks long gone) and compacts the table.
    """

    def __init__(self, columns: dict[str, ColumnSpec], capacity: int = 64) -> None:
        self._spec = columns
        self._n = 0
        self._ids = np.zeros(capacity, np.int64)
        self._cols: dict[str, npt.NDArray[Any]] = {
            name: np.full((capacity, *tail), fill, dtype)
            for name, (tail, dtype, fill) in columns.items()
        }
        self._sorted_ids = np.zeros(0, np.int64)
        self._order = np.zeros(0, np.intp)

    def __len__(self) -> int:
        return self._n

    @property
    def ids(self) -> npt.NDArray[np.int64]:
        """Track id of each row."""
        return self._ids[: self._n]

    def col(self, name: str) -> npt.NDArray[Any]:
        """A writable view of one column over the live rows."""
        return self._cols[name][: self._n]

    def rows(self, track_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
        """Row index of each id, adding fresh rows for unknown ids. ``track_ids`` must be unique."""
        ids = np.asarray(track_ids, np.int64)
        found, rows = self._find(ids)
        if not found.all():
            self._append(ids[~found])
            found, rows = self._find(ids)
        return rows

    def _find(
        self, ids: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.intp]]:
        pos = np.searchsorted(self._sorted_ids, ids)
        pos = np.minimum(pos, max(len(self._sorted_ids) - 1, 0))
        if len(self._sorted_ids) == 0:
            return np.zeros(len(ids), bool), np.zeros(len(ids), np.intp)
        found = self._sorted_ids[pos] == ids
        return found, self._order[pos]

    def _append(self, new_ids: npt.NDArray[np.int64]) -> None:
        need = self._n + len(new_ids)
        if need > len(self._ids):
            cap = max(need, 2 * len(self._ids))
            self._ids = _grow(self._ids, cap, 0)
            for name, (_, _, fill) in self._spec.items():
                self._cols[name] = _grow(self._cols[name], cap, fill)
        self._ids[self._n : need] = new_ids
        self._n = need
        self._reindex()

    def keep(self, mask: npt.NDArray[np.bool_]) -> None:
        """Keep only the rows where ``mask`` is true (length ``len(self)``); others are reset."""
        idx = np.flatnonzero(mask)
        m = len(idx)
        self._ids[:m] = self._ids[idx]
        for name, (_, _, fill) in self._spec.items():
            col = self._cols[name]
            col[:m] = col[idx]
            col[m : self._n] = fill
        self._n = m
        self._reindex()

    def _reindex(self) -> None:
        self._order = np.argsort(self._ids[: self._n], kind="stable")
        self._sorted_ids = self._ids[: self._n][self._order]


def _grow(arr: npt.NDArray[Any], cap: int, fill: Any) -> npt.NDArray[Any]:
    out = np.full((cap, *arr.shape[1:]), fill, arr.dtype)
    out[: len(arr)] = arr
    return out
