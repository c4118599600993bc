"""Which frames of a camera become images, all of them through the gate to a sink.

``CameraSnapshots`` is fed every analysed frame with its people and the analytics events of
that frame. It releases:

- an **alert snapshot** of the frame on which an alert is raised (``alert_raised``);
- a **sample** every ``sample_every_s`` media seconds when asked (an audit aid and the seed
  of labelling data collection: the audit test uses it to push every frame through the gate);
- the **heatmap** over a people-free background when the run (or a heatmap period) ends.

Person boxes given to the gate are the detections at least ``person_min_confidence`` sure plus
the tracker's boxes: for hiding, a false box only hides a little more, a missed one may show
a face.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from common.telemetry import AlertPayload, AnalyticsEvent, EventKind
from edge_agent.detect.detections import Detections
from edge_agent.privacy.background import HeatmapBackground
from edge_agent.privacy.errors import PrivacyError
from edge_agent.privacy.gate import ImagePurpose, PrivacyGate, SafeImage
from edge_agent.privacy.settings import PrivacySettings
from edge_agent.privacy.sinks import ImageExporter, ImageRecord, ImageSink, OutboxImageSink, TeeSink
from edge_agent.track.tracks import Tracks

if TYPE_CHECKING:
    from edge_agent.outbox import Outbox

log = logging.getLogger(__name__)


def person_boxes(
    detections: Detections, tracks: Tracks, min_confidence: float, same_iou: float = 0.7
) -> npt.NDArray[np.float32]:
    """(N, 4) xyxy pixels: detections scoring at least ``min_confidence``, plus the track
    boxes that are not just one of those detections again (IoU >= ``same_iou``)."""
    sure = detections.xyxy[detections.confidence >= min_confidence].astype(np.float32)
    tb = tracks.xyxy.astype(np.float32).reshape(-1, 4)
    if len(sure) and len(tb):
        lt = np.maximum(tb[:, None, :2], sure[None, :, :2])
        rb = np.minimum(tb[:, None, 2:], sure[None, :, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
        area_t = np.prod(tb[:, 2:] - tb[:, :2], axis=1)
        area_s = np.prod(sure[:, 2:] - sure[:, :2], axis=1)
        iou = inter / np.maximum(area_t[:, None] + area_s[None, :] - inter, 1e-6)
        tb = tb[iou.max(axis=1) < same_iou]
    return np.concatenate([sure, tb]).reshape(-1, 4)


class CameraSnapshots:
    """Alert snapshots, periodic samples and the heatmap of one camera (media seconds)."""

    def __init__(
        self,
        gate: PrivacyGate,
        sink: ImageSink,
        *,
        store_id: str,
        camera_id: str,
        sample_every_s: float | None = None,
        background: HeatmapBackground | None = None,
    ) -> None:
        if sample_every_s is not None and sample_every_s <= 0:
            raise ValueError(f"sample_every_s must be > 0 seconds, got {sample_every_s}")
        self.gate, self.sink = gate, sink
        self.store_id, self.camera_id = store_id, camera_id
        self.sample_every_s = sample_every_s
        self.background = background or HeatmapBackground()
        self._next_sample: float | None = None
        self.released: list[ImageRecord] = []

    def on_frame(
        self,
        image_bgr: npt.NDArray[np.uint8],
        detections: Detections,
        tracks: Tracks,
        t_s: float,
        unix_s: float,
        events: list[AnalyticsEvent],
    ) -> list[ImageRecord]:
        """One analysed frame at media time ``t_s`` (s), UNIX time ``unix_s``, with its
        detections, tracks and analytics events; returns the images released for it."""
        alerts = [
            e.payload.rule_id
            for e in events
            if e.kind == EventKind.ALERT_RAISED and isinstance(e.payload, AlertPayload)
        ]
        sample = self.sample_every_s is not None and (
            self._next_sample is None or t_s >= self._next_sample
        )
        if not (alerts or sample or self.background.due(t_s)):
            return []  # most frames: nothing to release or sample, no work
        people_xyxy = person_boxes(detections, tracks, self.gate.settings.person_min_confidence)
        out: list[ImageRecord] = []
        for rule in alerts:
            safe = self.gate.release(image_bgr, people_xyxy, ImagePurpose.ALERT_SNAPSHOT)
            out += self._put(safe_image=safe, unix_s=unix_s, alert_rule=rule)
        if sample:
            assert self.sample_every_s is not None
            self._next_sample = t_s + self.sample_every_s
            safe = self.gate.release(image_bgr, people_xyxy, ImagePurpose.SAMPLE)
            out += self._put(safe_image=safe, unix_s=unix_s)
        self.background.add(image_bgr, people_xyxy, t_s)
        return out

    def finish(self, counts: npt.NDArray[np.floating], unix_s: float) -> list[ImageRecord]:
        """Release the heatmap of ``counts`` (grid_h, grid_w person-seconds) at ``unix_s``;
        nothing when no frame was seen."""
        if len(self.background) == 0:
            log.info("camera %s: no frame seen, no heatmap image", self.camera_id)
            return []
        safe = self.gate.release_heatmap(counts, self.background)
        return self._put(safe_image=safe, unix_s=unix_s)

    def _put(
        self, *, safe_image: SafeImage, unix_s: float, alert_rule: str | None = None
    ) -> list[ImageRecord]:
        record = self.sink.put(
            safe_image,
            store_id=self.store_id,
            camera_id=self.camera_id,
            time=unix_s,
            alert_rule=alert_rule,
        )
        if record is None:
            return []
        self.released.append(record)
        return [record]


def export_snapshots(
    export_dir: Path | None,
    settings: PrivacySettings,
    *,
    store_id: str,
    camera_id: str,
    sample_every_s: float | None = None,
    outbox: Outbox | None = None,
    on_append: Callable[[], None] | None = None,
) -> CameraSnapshots:
    """A camera's snapshots going through a gate (face model from ``settings``) into an
    ``ImageExporter`` on ``export_dir`` and/or the ``outbox`` (alert snapshots and heatmaps,
    synced to the hub; ``on_append`` after each).

    Raises:
        PrivacyError: no face model configured, no sink given, or the folder cannot be created.
        ModelError: the face model cannot be loaded.
    """
    if export_dir is None and outbox is None:
        raise PrivacyError("snapshots need an export folder or an outbox to go to")
    gate = PrivacyGate.open(settings)  # first: no folder is made for a gate that cannot open
    sinks: list[ImageSink] = []
    if export_dir is not None:
        sinks.append(ImageExporter(export_dir))
    if outbox is not None:
        sinks.append(OutboxImageSink(outbox, on_append))
    return CameraSnapshots(
        gate,
        sinks[0] if len(sinks) == 1 else TeeSink(*sinks),
        store_id=store_id,
        camera_id=camera_id,
        sample_every_s=sample_every_s,
    )
