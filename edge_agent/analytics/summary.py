"""The analytics report of one camera over a run (a video or a shift): totals a manager reads.

``model_dump(by_alias=True)`` gives the JSON report shape::

    {"lines": {"door": {"in": 12, "out": 9}},
     "zones": {"display": {"visits": 8, "dwell_s": [4.5, 31.0], "max_occupancy": 3,
                           "pass_bys": 2, "engaged": 1}},
     "queues": {"checkout": {"served": 5, "time_in_queue_s": [...], "max_length": 4,
                             "pass_bys": 0, "wait_estimate_s": 42.0}},
     "alerts": [{"rule": "long-queue", "raised_at_s": 12.0, "cleared_at_s": 30.0}]}

Times are media seconds from the start of the run.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LineSummary(BaseModel):
    """Crossings of one line."""

    model_config = ConfigDict(populate_by_name=True)

    in_: int = Field(0, alias="in")
    out: int = 0


class ZoneSummary(BaseModel):
    """Visits to one dwell zone; ``dwell_s`` lists each visit's seconds in end order."""

    visits: int = 0
    dwell_s: list[float] = Field(default_factory=list)
    max_occupancy: int = 0
    pass_bys: int = 0
    engaged: int = 0


class QueueSummary(BaseModel):
    """One queue zone: people served, each one's seconds in the queue, longest queue, and the
    last expected-wait estimate (seconds, None when no service rate could be measured)."""

    served: int = 0
    time_in_queue_s: list[float] = Field(default_factory=list)
    max_length: int = 0
    pass_bys: int = 0
    wait_estimate_s: float | None = None


class AlertSummary(BaseModel):
    """One raise of an alert rule; ``cleared_at_s`` is None while it is still raised."""

    rule: str
    raised_at_s: float
    cleared_at_s: float | None = None


class ShelfChangeSummary(BaseModel):
    """A slot's held state (``stocked``/``empty``) or seen product changed at ``at_s``; the
    new value was first observed at ``since_s`` (media seconds)."""

    slot: str
    what: Literal["state", "product"]
    value: str
    since_s: float
    at_s: float


class ShelfSummary(BaseModel):
    """One monitored shelf: frames seen and skipped (a person hid it), the stock level and
    status now (None/unknown until every slot is known), each slot's state, misplaced slots,
    and every change in order."""

    frames: int = 0
    occluded_frames: int = 0
    stock_level: float | None = None
    status: str = "unknown"
    slots: dict[str, str] = Field(default_factory=dict)
    misplaced: list[str] = Field(default_factory=list)
    changes: list[ShelfChangeSummary] = Field(default_factory=list)


class AnalyticsSummary(BaseModel):
    """Report of one camera."""

    lines: dict[str, LineSummary] = Field(default_factory=dict)
    zones: dict[str, ZoneSummary] = Field(default_factory=dict)
    queues: dict[str, QueueSummary] = Field(default_factory=dict)
    alerts: list[AlertSummary] = Field(default_factory=list)
    shelves: dict[str, ShelfSummary] = Field(
        default_factory=dict, exclude_if=lambda v: not v, description="only with shelves"
    )
