"""Shelf monitoring settings of one shelf zone: its slots, thresholds and occlusion rule.

A shelf is a camera zone of kind ``shelf`` (``common.store_config.analytics.ZoneConfig``) with a
``shelf:`` block of these settings; the zone's polygon outlines the shelf (people overlapping
it hide it). Coordinates are **normalised** to the frame like every zone (x, y in [0, 1] from
the top-left corner); times are seconds; fractions are 0-1. Validation errors name the field
and the bad value.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Box = tuple[Unit, Unit, Unit, Unit]


class SlotConfig(BaseModel):
    """One slot (facing): where a product stands, and which product is planned there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN, description="unique within the shelf")
    box: Box = Field(
        description="[x1, y1, x2, y2] normalised 0-1: the area the product occupies when the "
        "slot is stocked (draw it around the standing product)"
    )
    product: str | None = Field(
        None,
        pattern=ID_PATTERN,
        description="product id planned for the slot (a class of the product classifier); "
        "null: any product counts",
    )

    @field_validator("box")
    @classmethod
    def _box_ok(cls, v: Box) -> Box:
        x1, y1, x2, y2 = v
        if not all(math.isfinite(c) for c in v) or x2 <= x1 or y2 <= y1:
            raise ValueError(
                f"slot box {list(v)} must be [x1, y1, x2, y2] with x1 < x2 and y1 < y2 "
                "(normalised 0-1 from the top-left corner)"
            )
        return v


class OcclusionConfig(BaseModel):
    """When a person hides the shelf: such frames are skipped (they change no slot)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    person_confidence: float = Field(
        0.3, ge=0.0, le=1.0, description="a person box counts from this detector score"
    )
    min_overlap: float = Field(
        0.01,
        ge=0.0,
        lt=1.0,
        description="a person box hides the shelf when it covers more than this fraction of "
        "the shelf polygon's area (0: any overlap)",
    )


class ShelfConfig(BaseModel):
    """Stock monitoring of one shelf zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slots: list[SlotConfig] = Field(min_length=1)
    product_classes: list[str] = Field(
        default_factory=lambda: ["bottle"],
        min_length=1,
        description="detector classes that are products on this shelf (COCO: bottle, cup, ...)",
    )
    product_confidence: float = Field(
        0.3, ge=0.0, le=1.0, description="a product box counts from this detector score"
    )
    min_overlap: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="a product box fills a slot when their intersection covers at least this "
        "fraction of the smaller of the two boxes",
    )
    hold_s: float = Field(
        2.0,
        ge=0.0,
        le=3600.0,
        description="a slot's state (stocked, empty, product seen) changes only after every "
        "unoccluded frame for this many seconds agreed (s)",
    )
    low_stock_below: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="the shelf is low on stock when the fraction of stocked slots is below "
        "this; out of stock when it is 0",
    )
    occlusion: OcclusionConfig = Field(default_factory=OcclusionConfig)
    classifier: Path | None = Field(
        None,
        description="product classifier bundle folder (retail-export classifier train), "
        "relative to the config file: names the product in each stocked slot, so a "
        "misplaced product is flagged; none: occupancy only",
    )
    classifier_min_score: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="a classifier answer counts from this probability (else: product unknown)",
    )

    @model_validator(mode="after")
    def _unique_slots(self) -> ShelfConfig:
        ids = [s.id for s in self.slots]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"slot ids must be unique within a shelf; repeated: {dupes}")
        return self
