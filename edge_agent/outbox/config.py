"""The ``outbox:`` section of the store config: where the outbox file lives and its bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edge_agent.outbox.policy import OutboxLimits

MIB = 1024 * 1024


class OutboxConfig(BaseModel):
    """Where records wait for the hub, and how much of them a box keeps through an outage.

    A 4-camera store writes about 12 MB a day (benchmarks/bench_outbox_size.py), so the
    defaults keep a month of outage for stores up to ~10 cameras.
    """

    model_config = ConfigDict(extra="forbid")

    path: Path = Field(
        Path("outbox.sqlite3"),
        description="SQLite file of this device's outbox, relative to the config file's folder; "
        "one file per device",
    )
    max_mb: float = Field(
        1024.0,
        ge=1.0,
        description="pending records above this many MiB are dropped: snapshots, raw events, "
        "heatmaps, then rollups and alerts",
    )
    max_age_s: float = Field(
        30 * 86400.0, gt=0, description="records older than this many seconds are dropped"
    )
    drop_to_fraction: float = Field(
        0.9, gt=0, le=1, description="a drop goes down to this fraction of the bound exceeded"
    )
    synchronous: Literal["full", "normal"] = Field(
        "full",
        description="full: every append is on disk before it returns; normal: faster, survives "
        "crashes but a power cut can lose the last appends (only with a UPS)",
    )
    reserve_mb: float = Field(
        4.0, ge=0, description="disk space (MiB) set aside to recover from a full disk"
    )

    def limits(self) -> OutboxLimits:
        """The bounds as the outbox takes them."""
        return OutboxLimits(
            max_bytes=int(self.max_mb * MIB),
            max_age_s=self.max_age_s,
            drop_to_fraction=self.drop_to_fraction,
        )

    @property
    def reserve_bytes(self) -> int:
        """``reserve_mb`` in bytes."""
        return int(self.reserve_mb * MIB)
