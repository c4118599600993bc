"""Where released images go. Every sink takes ``SafeImage`` and nothing else.

``ImageExporter`` writes each image as a file into an audit folder (``--export-dir``) with one
JSON line per image in ``manifest.jsonl``, so anyone can see exactly what would leave the box.
The outbox will be a second ``ImageSink`` (alert snapshots synced to the hub).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from edge_agent.privacy.errors import PrivacyError
from edge_agent.privacy.gate import ImagePurpose, SafeImage

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
    ) -> ImageRecord:
        """Store or send one gated image; returns what was recorded."""
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
        record = ImageRecord(
            file=name,
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
        (self.directory / name).write_bytes(image.data)
        with self.manifest.open("a") as f:
            f.write(record.model_dump_json() + "\n")
        log.debug("exported %s (%d bytes)", name, len(image.data))
        return record


def read_manifest(directory: Path) -> list[ImageRecord]:
    """The records of an export folder's ``manifest.jsonl`` (empty if there is none)."""
    path = directory / MANIFEST
    if not path.exists():
        return []
    return [ImageRecord.model_validate_json(line) for line in path.read_text().splitlines()]
