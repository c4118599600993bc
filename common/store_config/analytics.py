"""Analytics settings of one camera: counting lines, zones, alert rules, heatmap, rollups.

All coordinates are **normalised** to the frame: x in [0, 1] from the left edge, y in [0, 1]
from the top edge, so a config survives a change of camera resolution. Distances (line
hysteresis) are in the same normalised units, measured perpendicular to the line. Times are
seconds. Validation errors name the field (``lines.0.points``) and the bad value.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from common.store_config.shelf import ShelfConfig

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_METRIC = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

Point = tuple[float, float]
MAX_SHELF_ID = 64 - len(".out_of_stock")


def _check_id(value: str, what: str) -> str:
    if not _ID.match(value):
        raise ValueError(
            f"{what} {value!r} must be 1-64 letters, digits, '-', '_' or '.', starting with a "
            "letter or digit (it becomes part of database keys)"
        )
    return value


def _check_normalised(points: list[Point], what: str) -> None:
    for i, (x, y) in enumerate(points):
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0) or not (math.isfinite(x + y)):
            raise ValueError(
                f"{what} point {i} = [{x}, {y}] is outside the frame: coordinates are "
                "normalised, 0-1 from the top-left corner (divide pixels by width/height)"
            )


def signed_area(polygon: list[Point]) -> float:
    """Shoelace signed area of a polygon, in squared normalised units."""
    n = len(polygon)
    return 0.5 * sum(
        polygon[i][0] * polygon[(i + 1) % n][1] - polygon[(i + 1) % n][0] * polygon[i][1]
        for i in range(n)
    )


class LineConfig(BaseModel):
    """A counting line (a segment): crossing towards ``inside`` is "in", away from it "out"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    points: tuple[Point, Point] = Field(description="the two end points, normalised 0-1")
    inside: Point = Field(description="any point on the store side of the line, normalised")
    hysteresis: float = Field(
        0.02,
        ge=0.0,
        lt=0.5,
        description="normalised distance a foot must reach on each side for a crossing to count, "
        "so that jitter on the line is never a crossing",
    )
    confirm_frames: int = Field(
        2,
        ge=1,
        le=10,
        description="consecutive frames the feet must stay past the hysteresis band before the "
        "new side counts, so a one-frame box glitch is never a crossing (1 = no such check)",
    )

    @field_validator("id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        return _check_id(v, "line id")

    @field_validator("points")
    @classmethod
    def _points_ok(cls, v: tuple[Point, Point]) -> tuple[Point, Point]:
        _check_normalised(list(v), "line")
        (x0, y0), (x1, y1) = v
        if math.hypot(x1 - x0, y1 - y0) < 1e-6:
            raise ValueError(f"the line's two points must differ, got {[list(p) for p in v]}")
        return v

    @field_validator("inside")
    @classmethod
    def _inside_ok(cls, v: Point) -> Point:
        _check_normalised([v], "inside")
        return v

    @model_validator(mode="after")
    def _inside_off_line(self) -> LineConfig:
        if abs(self.inside_distance) <= self.hysteresis:
            raise ValueError(
                f"line {self.id!r}: inside point {list(self.inside)} is within hysteresis "
                f"{self.hysteresis} of the line, so it does not say which side is inside; "
                "pick a point clearly on the store side"
            )
        return self

    @property
    def inside_distance(self) -> float:
        """Signed distance of ``inside`` from the line's left-hand side (normalised units)."""
        (x0, y0), (x1, y1) = self.points
        dx, dy = x1 - x0, y1 - y0
        return (dx * (self.inside[1] - y0) - dy * (self.inside[0] - x0)) / math.hypot(dx, dy)


class ZoneConfig(BaseModel):
    """A polygon zone. ``dwell`` zones measure visits; ``queue`` zones also queue length,
    people served and the expected wait; ``shelf`` zones outline a shelf, are ignored by
    people analytics, and with a ``shelf`` block have their slots' stock monitored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    polygon: list[Point] = Field(description=">= 3 points, normalised 0-1")
    kind: Literal["dwell", "queue", "shelf"] = "dwell"
    min_dwell_s: float = Field(
        2.0, ge=0.0, description="shorter stays are pass-bys, not visits (seconds)"
    )
    engaged_s: float = Field(10.0, ge=0.0, description="dwell >= this is an engaged visitor (s)")
    exit_grace_s: float = Field(
        1.0,
        ge=0.0,
        description="out of the zone (or lost) longer than this before a visit ends (seconds); "
        "bridges short excursions and detector flicker so a stop-and-go person is one visit",
    )
    rate_window_s: float = Field(
        300.0,
        gt=0.0,
        description="queue zones: trailing window over which the service rate is measured (s)",
    )
    shelf: ShelfConfig | None = Field(
        None,
        description="shelf zones: the slots to monitor and their thresholds (see "
        "docs/decisions/0005-shelf-monitoring.md); none: the shelf is only outlined",
    )

    @field_validator("id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        return _check_id(v, "zone id")

    @field_validator("polygon")
    @classmethod
    def _polygon_ok(cls, v: list[Point]) -> list[Point]:
        if len(v) < 3:
            raise ValueError(f"a zone polygon needs at least 3 points, got {len(v)}")
        _check_normalised(v, "polygon")
        if abs(signed_area(v)) < 1e-9:
            raise ValueError("the zone polygon has no area (its points are on one line)")
        return v

    @model_validator(mode="after")
    def _shelf_only_on_shelves(self) -> ZoneConfig:
        if self.shelf is not None and self.kind != "shelf":
            raise ValueError(
                f"zone {self.id!r} is of kind {self.kind!r}: only kind 'shelf' zones take a "
                "'shelf' block"
            )
        if self.shelf is not None and len(self.id) > MAX_SHELF_ID:
            raise ValueError(
                f"shelf zone id {self.id!r} is longer than {MAX_SHELF_ID} characters (its "
                "alert ids add '.out_of_stock')"
            )
        return self

    @property
    def shelf_alert_ids(self) -> tuple[str, str]:
        """Ids of the built-in alert rules of a monitored shelf: low stock, out of stock."""
        return f"{self.id}.low_stock", f"{self.id}.out_of_stock"

    @model_validator(mode="after")
    def _engaged_after_min(self) -> ZoneConfig:
        if self.engaged_s < self.min_dwell_s:
            raise ValueError(
                f"zone {self.id!r}: engaged_s {self.engaged_s} is below min_dwell_s "
                f"{self.min_dwell_s}; an engaged visitor must first be a visitor"
            )
        return self


class AlertRule(BaseModel):
    """Raise when ``metric`` of ``target`` satisfies ``op threshold`` for ``for_s`` seconds;
    clear when it goes back past ``clear_threshold``; no re-raise within ``cooldown_s`` of a
    clear."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    metric: str = Field(description="a published metric name, e.g. queue_length")
    target: str = Field(description="the line, zone or camera id the metric belongs to")
    op: Literal[">", ">=", "<", "<="]
    threshold: float
    for_s: float = Field(0.0, ge=0.0, description="the condition must hold this long (s)")
    clear_threshold: float | None = Field(
        None,
        description="clears when the metric is no longer `op clear_threshold`; "
        "default: threshold (no hysteresis)",
    )
    cooldown_s: float = Field(0.0, ge=0.0, description="no re-raise this long after a clear (s)")

    @field_validator("id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        return _check_id(v, "alert id")

    @field_validator("target")
    @classmethod
    def _target_ok(cls, v: str) -> str:
        return _check_id(v, "alert target")

    @field_validator("metric")
    @classmethod
    def _metric_ok(cls, v: str) -> str:
        if not _METRIC.match(v):
            raise ValueError(f"metric {v!r} must be lower-case snake_case, e.g. queue_length")
        return v

    @field_validator("threshold", "clear_threshold")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError(f"must be a finite number, got {v}")
        return v

    @model_validator(mode="after")
    def _clear_on_right_side(self) -> AlertRule:
        c = self.clear_threshold
        if c is None:
            return self
        if self.op in (">", ">=") and c > self.threshold:
            raise ValueError(
                f"alert {self.id!r}: clear_threshold {c} must be <= threshold {self.threshold} "
                f"for op '{self.op}' (it clears when the metric falls back)"
            )
        if self.op in ("<", "<=") and c < self.threshold:
            raise ValueError(
                f"alert {self.id!r}: clear_threshold {c} must be >= threshold {self.threshold} "
                f"for op '{self.op}' (it clears when the metric rises back)"
            )
        return self

    @property
    def clear_at(self) -> float:
        """The effective clear threshold."""
        return self.threshold if self.clear_threshold is None else self.clear_threshold


class HeatmapConfig(BaseModel):
    """Occupancy heatmap: person-seconds per grid cell of the frame."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grid: tuple[Annotated[int, Field(ge=1, le=512)], Annotated[int, Field(ge=1, le=512)]] = (
        32,
        18,
    )
    max_dt_s: float = Field(
        1.0,
        gt=0.0,
        description="cap on the seconds one frame stands for, so a stall or a gap in the video "
        "does not paint a whole gap onto the last positions",
    )


class CameraAnalyticsConfig(BaseModel):
    """What to measure in one camera's view."""

    model_config = ConfigDict(extra="forbid")

    lines: list[LineConfig] = Field(default_factory=list)
    zones: list[ZoneConfig] = Field(default_factory=list)
    alerts: list[AlertRule] = Field(default_factory=list)
    heatmap: HeatmapConfig = Field(default_factory=HeatmapConfig)
    rollup_interval_s: int = Field(
        60, ge=1, le=86400, description="rollup bucket length (s), aligned to UNIX time"
    )
    min_hits: int = Field(
        3,
        ge=1,
        description="frames a track must have been matched in before the analytics count it "
        "(filters ghost detections); a crossing made before that counts once it is reached. "
        "Independent of tracker.min_hits.",
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> CameraAnalyticsConfig:
        targets = [x.id for x in self.lines] + [z.id for z in self.zones]
        dupes = sorted({i for i in targets if targets.count(i) > 1})
        if dupes:
            raise ValueError(
                f"line and zone ids must be unique within a camera (they key the rollups); "
                f"repeated: {dupes}"
            )
        rules = [a.id for a in self.alerts]
        rules += [i for z in self.zones if z.shelf is not None for i in z.shelf_alert_ids]
        dupes = sorted({i for i in rules if rules.count(i) > 1})
        if dupes:
            raise ValueError(
                f"alert ids must be unique (monitored shelves add '<zone>.low_stock' and "
                f"'<zone>.out_of_stock'); repeated: {dupes}"
            )
        return self
