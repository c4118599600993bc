"""Where released images go. Every sink takes ``SafeImage`` and nothing else.

``ImageExporter`` writes each image as a file into an audit folder (``--export-dir``) with one
JSON line per image in ``manifest.jsonl``, so anyone can see exactly what would leave the box.
``OutboxImageSink`` appends alert snapshots and heatmap images to the outbox as ``Snapshot``
records, synced to the hub like every other record; ``TeeSink`` sends to several sinks.
"""

from __future__ import annotations

import base64
import logging
import time as wall_time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict, Field

from common.telemetry import MAX_SNAPSHOT_BYTES, Snapshot
from edge_agent.privacy.errors import PrivacyError
from edge_agent.privacy.gate import ImagePurpose, SafeImage

if TYPE_CHECKING:
    from edge_agent.outbox import Outbox

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"


class ImageRecord(BaseModel):
    """One released image as the manifest lists it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = Field(description="file name inside the export folder")
    purpose: ImagePurpose
    store_id: str
    camera_id: str
    time: float = Field(description="UNIX seconds UTC of the frame (or of the heatmap's end)")
    media_type: str
    width: int
    height: int
    bytes: int
    faces_blurred: int
    heads_blurred: int
    sha256: str
    alert_rule: str | None = Field(None, description="the alert rule, for alert snapshots")


class ImageSink(Protocol):
    """Something that stores or sends released images."""

    def put(
        self,
        image: SafeImage,
        *,
        store_id: str,
        camera_id: str,
        time: float,
        alert_rule: str | None = None,
    ) -> ImageRecord | None:
        """Store or send one gated image; returns what was recorded (None: not for this
        sink)."""
        ...


def _require_safe(image: object) -> SafeImage:
    if not isinstance(image, SafeImage):
        raise PrivacyError(
            f"image sinks accept only SafeImage from the privacy gate, got {type(image).__name__}"
        )
    return image


class ImageExporter:
    """Writes released images into ``directory`` as files plus ``manifest.jsonl``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PrivacyError(f"cannot create export folder {directory}: {exc.strerror}") from None
        self.manifest = directory / MANIFEST
        self.count = 0

    def put(
        self,
        image: SafeImage,
        *,
        store_id: str,
        camera_id: str,
        time: float,
        alert_rule: str | None = None,
    ) -> ImageRecord:
        """Write ``image`` as ``NNNNNN-CAMERA-PURPOSE.ext`` and append its manifest line."""
        image = _require_safe(image)
        self.count += 1
        name = f"{self.count:06d}-{camera_id}-{image.purpose.value}.{image.extension}"
        record = _record(image, name, store_id, camera_id, time, alert_rule)
        (self.directory / name).write_bytes(image.data)
        with self.manifest.open("a") as f:
            f.write(record.model_dump_json() + "\n")
        log.debug("exported %s (%d bytes)", name, len(image.data))
        return record


def _record(
    image: SafeImage, file: str, store_id: str, camera_id: str, time: float, alert_rule: str | None
) -> ImageRecord:
    return ImageRecord(
        file=file,
        purpose=image.purpose,
        store_id=store_id,
        camera_id=camera_id,
        time=time,
        media_type=image.media_type,
        width=image.width,
        height=image.height,
        bytes=len(image.data),
        faces_blurred=image.faces_blurred,
        heads_blurred=image.heads_blurred,
        sha256=image.sha256,
        alert_rule=alert_rule,
    )


class OutboxImageSink:
    """Appends alert snapshots and heatmap images to the outbox as ``Snapshot`` records (other
    purposes, such as audit samples, are not for the hub and are skipped). ``on_append`` is
    called after each append (to wake the syncer)."""

    PURPOSES = frozenset({ImagePurpose.ALERT_SNAPSHOT, ImagePurpose.HEATMAP})

    def __init__(self, outbox: Outbox, on_append: Callable[[], None] | None = None) -> None:
        self.outbox = outbox
        self.on_append = on_append
        self.appended = 0

    def put(
        self,
        image: SafeImage,
        *,
        store_id: str,
        camera_id: str,
        time: float,
        alert_rule: str | None = None,
    ) -> ImageRecord | None:
        """Append ``image`` as a ``Snapshot`` record; None when its purpose is not synced."""
        image = _require_safe(image)
        if image.purpose not in self.PURPOSES:
            return None
        if len(image.data) > MAX_SNAPSHOT_BYTES:
            raise PrivacyError(
                f"a {len(image.data)}-byte image is over the {MAX_SNAPSHOT_BYTES}-byte snapshot "
                "limit; lower RETAIL_CV_PRIVACY_MAX_BYTES"
            )
        snap = Snapshot(
            store_id=store_id,
            camera_id=camera_id,
            taken_at=time,
            purpose="alert_snapshot" if image.purpose is ImagePurpose.ALERT_SNAPSHOT else "heatmap",
            alert_rule=alert_rule,
            media_type=image.media_type,
            width=image.width,
            height=image.height,
            faces_blurred=image.faces_blurred,
            heads_blurred=image.heads_blurred,
            sha256=image.sha256,
            data_b64=base64.b64encode(image.data).decode(),
        )
        (seq,) = self.outbox.append([snap], wall_time.time())
        self.appended += 1
        if self.on_append is not None:
            self.on_append()
        return _record(image, f"outbox:{seq}", store_id, camera_id, time, alert_rule)


class TeeSink:
    """Puts each image into every one of ``sinks``; returns the first sink's record."""

    def __init__(self, *sinks: ImageSink) -> None:
        self.sinks = sinks

    def put(
        self,
        image: SafeImage,
        *,
        store_id: str,
        camera_id: str,
        time: float,
        alert_rule: str | None = None,
    ) -> ImageRecord | None:
        """``put`` into each sink in turn."""
        records = [
            s.put(image, store_id=store_id, camera_id=camera_id, time=time, alert_rule=alert_rule)
            for s in self.sinks
        ]
        return next((r for r in records if r is not None), None)


def read_manifest(directory: Path) -> list[ImageRecord]:
    """The records of an export folder's ``manifest.jsonl`` (empty if there is none)."""
    path = directory / MANIFEST
    if not path.exists():
        return []
    return [ImageRecord.model_validate_json(line) for line in path.read_text().splitlines()]
