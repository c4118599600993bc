"""Telemetry wire contracts: per-interval rollups, heatmaps and analytics events.

The edge agent produces these; the outbox later wraps each with ``(device_id, seq)``; the hub
ingests them idempotently on their natural keys.

Time on the wire is **UNIX seconds, UTC** (``float`` for instants, ``int`` for bucket starts):
one number, no time zone to get wrong, trivially comparable. ``bucket_start`` is a whole
multiple of ``interval_s`` (buckets are aligned to the UNIX epoch, so a 60 s bucket starts on
the minute), and a rollup's natural key is ``(store_id, camera_id, target_id, metric,
bucket_start)``.

Every payload carries ``schema_version``. Parsing a payload of a version this code does not
know fails validation, so the hub can dead-letter it with the reason instead of guessing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TELEMETRY_SCHEMA_VERSION: Literal[1] = 1

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_METRIC = r"^[a-z][a-z0-9_]{0,63}$"


class Metric(StrEnum):
    """Metric names the edge analytics publish (rollups and alert rules use them).

    ``target_id`` scopes each: a line id, a zone id, or the camera id for camera metrics.
    Other producers may publish further names (``camera_offline`` from the shell, for example);
    the wire accepts any lower-case snake_case name.
    """

    LINE_IN = "line_in"  # line: crossings towards the inside (counter)
    LINE_OUT = "line_out"  # line: crossings away from the inside (counter)
    OCCUPANCY = "occupancy"  # dwell zone: people present, sampled per frame
    VISITS = "visits"  # dwell zone: visits that ended, dwell >= min_dwell_s (counter)
    PASS_BYS = "pass_bys"  # dwell/queue zone: stays shorter than min_dwell_s (counter)
    ENGAGED = "engaged"  # dwell zone: visits with dwell >= engaged_s (counter)
    DWELL_S = "dwell_s"  # dwell/queue zone: seconds per visit that ended (samples)
    QUEUE_LENGTH = "queue_length"  # queue zone: people in the queue, sampled per frame
    SERVED = "served"  # queue zone: people who left the queue (counter)
    QUEUE_WAIT_S = "queue_wait_s"  # queue zone: estimated wait for a joiner, per frame (samples)
    PEOPLE = "people"  # camera: confirmed people in view, sampled per frame
    STOCK_LEVEL = "stock_level"  # shelf: fraction of its slots stocked (0-1), per frame
    SHELF_OCCLUDED = "shelf_occluded"  # shelf: 1 on a frame a person hid it (skipped), else 0


class RollupKind(StrEnum):
    """How a rollup's values combine when the hub merges or re-aggregates buckets."""

    COUNTER = "counter"  # ``count`` events happened in the bucket; sum/min/max unused
    SAMPLES = "samples"  # ``count`` samples with their sum/min/max (mean = sum / count)


class Rollup(BaseModel):
    """One metric of one target (line, zone or camera) over one aligned time bucket.

    Units are the metric's (counts, people, seconds). ``bucket_start`` is UNIX seconds UTC,
    a whole multiple of ``interval_s``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = TELEMETRY_SCHEMA_VERSION
    store_id: str = Field(pattern=_ID)
    camera_id: str = Field(pattern=_ID)
    target_id: str = Field(pattern=_ID, description="line id, zone id, or the camera id")
    metric: str = Field(pattern=_METRIC)
    bucket_start: int = Field(ge=0, description="UNIX seconds UTC, multiple of interval_s")
    interval_s: int = Field(gt=0, description="bucket length in seconds")
    kind: RollupKind
    count: int = Field(ge=0, description="events (counter) or samples (samples)")
    sum: float | None = Field(None, description="sum of the samples (samples kind only)")
    min: float | None = None
    max: float | None = None
    histogram_edges: list[float] | None = Field(
        None, description="increasing bin edges; bins are [-inf, e0), [e0, e1), ... [eN, inf)"
    )
    histogram: list[int] | None = Field(None, description="len(histogram_edges) + 1 counts")

    @model_validator(mode="after")
    def _consistent(self) -> Rollup:
        if self.bucket_start % self.interval_s:
            raise ValueError(
                f"bucket_start {self.bucket_start} is not aligned to interval_s {self.interval_s}"
            )
        if self.kind is RollupKind.COUNTER:
            if any(v is not None for v in (self.sum, self.min, self.max, self.histogram)):
                raise ValueError("a counter rollup carries only count (sum/min/max must be null)")
        else:
            if self.count < 1 or self.sum is None or self.min is None or self.max is None:
                raise ValueError("a samples rollup needs count >= 1 and sum, min, max")
            mean = self.sum / self.count
            tol = 1e-9 * max(1.0, abs(mean))
            if not (self.min - tol <= mean <= self.max + tol):
                raise ValueError(f"min {self.min} <= mean {mean} <= max {self.max} does not hold")
        if (self.histogram is None) != (self.histogram_edges is None):
            raise ValueError("histogram and histogram_edges come together")
        if self.histogram is not None and self.histogram_edges is not None:
            if len(self.histogram) != len(self.histogram_edges) + 1:
                raise ValueError("histogram needs len(histogram_edges) + 1 counts")
            if any(
                b <= a for a, b in zip(self.histogram_edges, self.histogram_edges[1:], strict=False)
            ):
                raise ValueError("histogram_edges must increase strictly")
            if sum(self.histogram) != self.count or min(self.histogram) < 0:
                raise ValueError("histogram counts must be >= 0 and add up to count")
        return self

    @property
    def natural_key(self) -> tuple[str, str, str, str, int]:
        """(store_id, camera_id, target_id, metric, bucket_start): the idempotency key."""
        return (self.store_id, self.camera_id, self.target_id, self.metric, self.bucket_start)

    @property
    def mean(self) -> float | None:
        """sum / count for a samples rollup; None for a counter."""
        if self.kind is RollupKind.COUNTER or self.sum is None:
            return None
        return self.sum / self.count


class HeatmapRollup(BaseModel):
    """Person-seconds per grid cell of one camera over one aligned time bucket.

    The grid covers the whole frame: ``grid_w`` columns by ``grid_h`` rows; ``person_seconds``
    is row-major (row 0 at the top of the image), ``grid_w * grid_h`` values, seconds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = TELEMETRY_SCHEMA_VERSION
    store_id: str = Field(pattern=_ID)
    camera_id: str = Field(pattern=_ID)
    bucket_start: int = Field(ge=0, description="UNIX seconds UTC, multiple of interval_s")
    interval_s: int = Field(gt=0)
    grid_w: int = Field(gt=0)
    grid_h: int = Field(gt=0)
    person_seconds: list[float]

    @model_validator(mode="after")
    def _consistent(self) -> HeatmapRollup:
        if self.bucket_start % self.interval_s:
            raise ValueError(
                f"bucket_start {self.bucket_start} is not aligned to interval_s {self.interval_s}"
            )
        if len(self.person_seconds) != self.grid_w * self.grid_h:
            raise ValueError(
                f"person_seconds has {len(self.person_seconds)} values, grid needs "
                f"{self.grid_w} x {self.grid_h} = {self.grid_w * self.grid_h}"
            )
        if any(not math.isfinite(v) or v < 0 for v in self.person_seconds):
            raise ValueError("person_seconds must be finite and >= 0")
        return self

    @property
    def natural_key(self) -> tuple[str, str, str, str, int]:
        """(store_id, camera_id, camera_id, 'heatmap', bucket_start), shaped like a rollup key."""
        return (self.store_id, self.camera_id, self.camera_id, "heatmap", self.bucket_start)


class EventKind(StrEnum):
    """What happened."""

    LINE_CROSSING = "line_crossing"
    VISIT = "visit"
    ALERT_RAISED = "alert_raised"
    ALERT_CLEARED = "alert_cleared"


class LineCrossingPayload(BaseModel):
    """A confirmed track crossed a counting line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    direction: Literal["in", "out"]


class VisitPayload(BaseModel):
    """A visit to a zone ended. ``dwell_s`` = ``occurred_at - entered_at`` (seconds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zone_kind: Literal["dwell", "queue"]
    entered_at: float = Field(description="UNIX seconds UTC")
    dwell_s: float = Field(ge=0)
    engaged: bool = Field(description="dwell reached the zone's engaged_s")


class AlertPayload(BaseModel):
    """An alert rule raised or cleared on a metric sample."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_id: str = Field(pattern=_ID)
    metric: str = Field(pattern=_METRIC)
    op: Literal[">", ">=", "<", "<="]
    threshold: float
    clear_threshold: float
    value: float = Field(description="the metric sample that raised or cleared the alert")


_PAYLOAD_FOR_KIND: dict[EventKind, type[BaseModel]] = {
    EventKind.LINE_CROSSING: LineCrossingPayload,
    EventKind.VISIT: VisitPayload,
    EventKind.ALERT_RAISED: AlertPayload,
    EventKind.ALERT_CLEARED: AlertPayload,
}


class AnalyticsEvent(BaseModel):
    """One thing that happened at a store camera, with a payload typed by ``kind``.

    ``occurred_at`` is UNIX seconds UTC: the crossing time, the visit's end (last time the
    person was seen inside), or the alert sample's time. ``track_id`` is the camera's tracker id
    for line crossings and visits, null for alerts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = TELEMETRY_SCHEMA_VERSION
    kind: EventKind
    store_id: str = Field(pattern=_ID)
    camera_id: str = Field(pattern=_ID)
    target_id: str = Field(pattern=_ID, description="line id, zone id, or alert target")
    occurred_at: float = Field(description="UNIX seconds UTC")
    track_id: int | None = None
    payload: LineCrossingPayload | VisitPayload | AlertPayload

    @model_validator(mode="after")
    def _payload_matches_kind(self) -> AnalyticsEvent:
        want = _PAYLOAD_FOR_KIND[self.kind]
        if not isinstance(self.payload, want):
            raise ValueError(f"a {self.kind.value} event needs a {want.__name__} payload")
        needs_track = self.kind in (EventKind.LINE_CROSSING, EventKind.VISIT)
        if needs_track and self.track_id is None:
            raise ValueError(f"a {self.kind.value} event needs track_id")
        if not needs_track and self.track_id is not None:
            raise ValueError(f"a {self.kind.value} event has no track_id")
        if isinstance(self.payload, VisitPayload):
            span = self.occurred_at - self.payload.entered_at
            if abs(span - self.payload.dwell_s) > 1e-3:
                raise ValueError(
                    f"visit dwell_s {self.payload.dwell_s} differs from occurred_at - entered_at "
                    f"= {span}"
                )
        return self


MAX_SNAPSHOT_BYTES = 256 * 1024  # an encoded image on the wire, before base64


class Snapshot(BaseModel):
    """An image that passed the edge's privacy gate (faces and heads hidden), sent to the hub:
    an alert snapshot (``alert_rule`` set) or a camera's heatmap over a people-free background.

    ``data_b64`` is the encoded file (JPEG or PNG), base64; ``sha256`` is the hex digest of the
    decoded bytes and is checked on parse, so a truncated or altered image never validates.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = TELEMETRY_SCHEMA_VERSION
    store_id: str = Field(pattern=_ID)
    camera_id: str = Field(pattern=_ID)
    taken_at: float = Field(description="UNIX seconds UTC of the frame (or the heatmap's end)")
    purpose: Literal["alert_snapshot", "heatmap"]
    alert_rule: str | None = Field(None, pattern=_ID, description="for alert snapshots")
    media_type: Literal["image/jpeg", "image/png"]
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    faces_blurred: int = Field(ge=0)
    heads_blurred: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    data_b64: str = Field(max_length=(MAX_SNAPSHOT_BYTES + 2) // 3 * 4)

    @model_validator(mode="after")
    def _image_matches(self) -> Snapshot:
        try:
            data = base64.b64decode(self.data_b64, validate=True)
        except binascii.Error:
            raise ValueError("data_b64 is not base64") from None
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise ValueError("sha256 does not match the image data")
        magic = b"\xff\xd8\xff" if self.media_type == "image/jpeg" else b"\x89PNG\r\n\x1a\n"
        if not data.startswith(magic):
            raise ValueError(f"data is not a {self.media_type} file")
        if (self.purpose == "alert_snapshot") != (self.alert_rule is not None):
            raise ValueError("alert_rule is required for alert snapshots and only for them")
        return self

    def image_bytes(self) -> bytes:
        """The decoded image file."""
        return base64.b64decode(self.data_b64)


class SlotReport(BaseModel):
    """One slot of a shelf as the edge sees it after debouncing.

    ``state`` is ``stocked`` or ``empty`` once an observation held for the shelf's hold time,
    ``unknown`` before that. ``seen_product`` is the product classifier's (debounced) answer
    for a stocked slot, null without a classifier; ``misplaced`` means it differs from the
    planned ``product``. Times are UNIX seconds UTC.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    slot_id: str = Field(pattern=_ID)
    state: Literal["stocked", "empty", "unknown"]
    product: str | None = Field(None, description="product id planned for the slot")
    seen_product: str | None = Field(None, description="product id the classifier sees there")
    misplaced: bool = False
    since: float | None = Field(
        None, description="when the current state began (its first observation); null: unknown"
    )
    empty_since: float | None = Field(None, description="set while the slot is empty")

    @model_validator(mode="after")
    def _consistent(self) -> SlotReport:
        if (self.state == "empty") != (self.empty_since is not None):
            raise ValueError("empty_since is set exactly when the state is empty")
        if (self.state == "unknown") != (self.since is None):
            raise ValueError("since is null exactly when the state is unknown")
        if self.misplaced and (
            self.state != "stocked"
            or self.product is None
            or self.seen_product in (None, self.product)
        ):
            raise ValueError(
                "misplaced needs a stocked slot with a planned product and a different seen_product"
            )
        return self


class ShelfStatus(BaseModel):
    """The latest state of one shelf (a camera's shelf zone) and its slots, sent when a slot
    changes and at every rollup interval.

    ``stock_level`` is the fraction of slots stocked (null until every slot's state is known);
    ``status`` is ``out_of_stock`` at level 0, ``low_stock`` below ``low_stock_below``, else
    ``ok`` (``unknown`` while the level is). ``observed_at`` (UNIX seconds UTC) is the frame the
    state is from: the hub keeps, per slot, the status with the newest one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = TELEMETRY_SCHEMA_VERSION
    store_id: str = Field(pattern=_ID)
    camera_id: str = Field(pattern=_ID)
    shelf_id: str = Field(pattern=_ID, description="the shelf zone's id")
    observed_at: float = Field(description="UNIX seconds UTC")
    status: Literal["ok", "low_stock", "out_of_stock", "unknown"]
    stock_level: float | None = Field(None, ge=0.0, le=1.0)
    low_stock_below: float = Field(gt=0.0, le=1.0)
    slots: list[SlotReport] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> ShelfStatus:
        ids = [s.slot_id for s in self.slots]
        if len(set(ids)) != len(ids):
            raise ValueError(f"slot ids repeat: {ids}")
        if (self.status == "unknown") != (self.stock_level is None):
            raise ValueError("status is unknown exactly when stock_level is null")
        return self
