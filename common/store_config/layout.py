"""The store layout: the part of a store box's configuration the hub versions and rolls out.

A box's YAML file keeps what belongs to the box (model files, outbox, sync, credentials, twin,
metrics). The layout is what HQ manages per store: the time zone, the tracker and the cameras
with their lines, zones, shelves and alert rules. When the hub's desired state names a layout,
the edge replaces those sections of its file's config with it (``edge_agent.twin.layout``).

A layout camera's ``source`` may be left out: the box then keeps the source its own file gives
for that camera id, so camera addresses with passwords stay on the box. A camera the file does
not know needs a source in the layout. A store with several boxes names each camera's boxes in
``devices`` (null: every box runs it). Coordinates are normalised (0-1), times are seconds.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from common.store_config.analytics import CameraAnalyticsConfig
from common.store_config.tracker import TrackerConfig

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LAYOUT_SCHEMA_VERSION = 1


class CameraLayout(CameraAnalyticsConfig):
    """One camera of a layout: what to measure in it, and optionally where it is."""

    model_config = ConfigDict(extra="forbid")

    id: str
    source: str | None = Field(
        None,
        description="file path, rtsp/http/tcp URL or USB index; null: the box's own source for "
        "this camera id (keep camera passwords on the box)",
    )
    fps: float = Field(3.0, gt=0, le=60, description="frames per second to analyse")
    enabled: bool = True
    devices: list[str] | None = Field(
        None,
        min_length=1,
        description="the store boxes (device ids) that run this camera; null: every box of "
        "the store (a store with several boxes splits its cameras between them this way)",
    )

    @field_validator("devices")
    @classmethod
    def _devices_ok(cls, v: list[str] | None) -> list[str] | None:
        for d in v or []:
            if not _ID.match(d):
                raise ValueError(f"device id {d!r} is not a valid id (letters, digits, - _ .)")
        return v

    @field_validator("id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(
                f"camera id {v!r} must be 1-64 letters, digits, '-', '_' or '.', starting with "
                "a letter or digit"
            )
        return v


class StoreLayout(BaseModel):
    """The versioned, rolled-out part of a store's configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = LAYOUT_SCHEMA_VERSION
    timezone: str | None = Field(None, description="IANA zone; null: the box file's")
    tracker: TrackerConfig | None = Field(None, description="null: the box file's")
    cameras: list[CameraLayout] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _zone_ok(cls, v: str | None) -> str | None:
        if v is not None and v not in _zones():
            raise ValueError(f"timezone {v!r} is not an IANA zone name such as Europe/Paris")
        return v

    @model_validator(mode="after")
    def _unique_cameras(self) -> StoreLayout:
        ids = [c.id for c in self.cameras]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"camera ids must be unique; repeated: {dupes}")
        return self

    def canonical_json(self) -> bytes:
        """The layout as canonical JSON (sorted keys, no spaces): what ``sha256`` hashes."""
        return canonical_json(self.model_dump(mode="json"))

    def sha256(self) -> str:
        """Hex sha256 of ``canonical_json()``: equal layouts hash equal wherever computed."""
        return hashlib.sha256(self.canonical_json()).hexdigest()


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def canonical_json(data: Any) -> bytes:
    """JSON with sorted keys and no insignificant whitespace."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
