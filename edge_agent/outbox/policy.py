"""The outbox's bounds and what a drop tells the hub (pure: no database, time passed in).

When the outbox is over a bound it drops down to ``drop_to_fraction`` of that bound rather
than just under it, so that a full outbox drops (and reports) in occasional chunks instead of
a few records on every append.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from common.sync import OutboxDropped, seq_ranges

# One notice stays well inside a batch even when the dropped seqs are scattered (raw events
# between rollups): 2,000 ranges are about 40 kB of JSON.
MAX_RANGES_PER_NOTICE = 2000


@dataclass(frozen=True, slots=True)
class OutboxLimits:
    """Bounds of one outbox.

    Attributes:
        max_bytes: stored bytes of pending records (compressed bodies plus a per-row estimate,
            close to the database file size) above which the lowest-priority, oldest records
            are dropped.
        max_age_s: records created more than this many seconds ago are dropped.
        drop_to_fraction: a drop goes down to this fraction of the bound that was exceeded
            (bytes, or age: everything older than ``fraction * max_age_s`` goes).
    """

    max_bytes: int = 2 * 1024**3
    max_age_s: float = 14 * 86400.0
    drop_to_fraction: float = 0.9

    def __post_init__(self) -> None:
        if self.max_bytes < 4096:
            raise ValueError(f"outbox max_bytes must be >= 4096, got {self.max_bytes}")
        if not (math.isfinite(self.max_age_s) and self.max_age_s > 0):
            raise ValueError(f"outbox max_age_s must be > 0 s, got {self.max_age_s!r}")
        if not 0.0 < self.drop_to_fraction <= 1.0:
            raise ValueError(
                f"outbox drop_to_fraction must be in (0, 1], got {self.drop_to_fraction!r}"
            )

    @property
    def low_water_bytes(self) -> int:
        """Pending bytes a size drop goes down to."""
        return int(self.max_bytes * self.drop_to_fraction)

    def age_cutoff(self, now: float) -> float:
        """Records created before this UNIX time are over the age bound."""
        return now - self.max_age_s

    def age_drop_cutoff(self, now: float) -> float:
        """Once something is over the age bound, records created before this time go."""
        return now - self.max_age_s * self.drop_to_fraction


@dataclass(frozen=True, slots=True)
class DroppedRow:
    """One row chosen for dropping: its seq, record kind and stored bytes."""

    seq: int
    kind: str
    size: int


def take_until(rows: Iterator[DroppedRow], excess_bytes: int) -> list[DroppedRow]:
    """Rows from ``rows`` (already in drop order) until their sizes add up to ``excess_bytes``."""
    chosen: list[DroppedRow] = []
    freed = 0
    for row in rows:
        if freed >= excess_bytes:
            break
        chosen.append(row)
        freed += row.size
    return chosen


def drop_notices(
    rows: Sequence[DroppedRow], reason: Literal["size", "age"], now: float
) -> list[OutboxDropped]:
    """The OutboxDropped records that report ``rows`` (any order), each with at most
    ``MAX_RANGES_PER_NOTICE`` seq ranges; ``now`` is UNIX seconds."""
    by_seq = sorted(rows, key=lambda r: r.seq)
    ranges = seq_ranges([r.seq for r in by_seq])
    notices: list[OutboxDropped] = []
    start = 0
    for i in range(0, len(ranges), MAX_RANGES_PER_NOTICE):
        chunk = ranges[i : i + MAX_RANGES_PER_NOTICE]
        n = sum(b - a + 1 for a, b in chunk)
        counts = Counter(r.kind for r in by_seq[start : start + n])
        start += n
        notices.append(
            OutboxDropped(reason=reason, seq_ranges=chunk, counts=dict(counts), dropped_at=now)
        )
    return notices
