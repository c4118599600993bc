"""Process one recorded video end to end: frames → detector → tracker → analytics → report.

This is the library function behind ``retail-edge process``. Reading the file runs in its own
thread and inference keeps several frames in flight, so decoding overlaps inference.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from edge_agent.analytics.camera import CameraAnalytics
from edge_agent.config import CameraConfig, StoreConfig
from edge_agent.detect.detector import Detector, DetectorSettings
from edge_agent.feed import OutboxFeed
from edge_agent.outbox.store import Outbox
from edge_agent.privacy import PrivacySettings, export_snapshots
from edge_agent.shelf.classes import DetectorClasses, detector_class_names
from edge_agent.shelf.monitor import ShelfFrame
from edge_agent.sources.file_source import FileSource
from edge_agent.sources.frame import Frame
from edge_agent.track.bytetrack import ByteTracker
from edge_agent.track.mot_io import MotRows, write_mot

log = logging.getLogger(__name__)

_END = object()


class ProcessReport(BaseModel):
    """What ``retail-edge process`` found in one video (extended by the analytics)."""

    video: str
    camera_id: str
    model: str
    runtime: str
    frames_processed: int
    duration_s: float = Field(description="media time covered, in seconds")
    wall_s: float = Field(description="wall-clock processing time, in seconds")
    processing_fps: float
    sampled_fps: float | None = Field(description="target fps, or null for every frame")
    people: int = Field(description="distinct confirmed track ids")
    max_people_in_frame: int
    ended_early: bool = Field(False, description="the file was cut short (truncated)")
    lines: dict[str, Any] = Field(default_factory=dict)
    zones: dict[str, Any] = Field(default_factory=dict)
    queues: dict[str, Any] = Field(default_factory=dict)
    shelves: dict[str, Any] = Field(default_factory=dict)
    alerts: list[dict[str, Any]] = Field(default_factory=list)
    events: int = Field(0, description="analytics events produced (crossings, visits, alerts)")
    rollups: int = Field(0, description="per-interval rollups produced")
    shelf_statuses: int = Field(0, description="shelf status records produced")
    images_exported: int = Field(0, description="gated images written to the export folder")
    records_appended: int = Field(
        0,
        description="events, rollups, heatmaps and gated snapshots appended to the outbox "
        "(0 without one)",
    )


def detector_classes(config: StoreConfig) -> tuple[str, ...]:
    """The classes the store's detector keeps: ``model.classes`` (people) plus the product
    classes of every monitored shelf of the enabled cameras."""
    shelf_classes = [
        name
        for cam in config.cameras
        if cam.enabled
        for z in cam.zones
        if z.shelf is not None
        for name in z.shelf.product_classes
    ]
    return detector_class_names(config.model.classes, shelf_classes)


def class_map(config: StoreConfig, detector: Detector) -> DetectorClasses:
    """The detector's classes and which are people (the store's ``model.classes``)."""
    return DetectorClasses(detector.manifest.classes, config.model.classes)


def open_detector(config: StoreConfig, throughput: bool = False, max_batch: int = 1) -> Detector:
    """The store's detector (people and shelf product classes); throughput mode keeps several
    inferences in flight."""
    m = config.model
    return Detector.open(
        m.path,
        manifest=m.manifest,
        settings=DetectorSettings(
            confidence=min(m.confidence, config.tracker.track_low_thresh),
            iou=m.iou,
            classes=detector_classes(config),
            max_batch=max_batch,
        ),
        runtime=m.runtime,
        providers=m.providers,
        device=m.device,
        mode="throughput" if throughput else "latency",
        trusted_keys=m.trusted_keys,
    )


def _prefetch(frames: FileSource, depth: int) -> Iterator[Frame]:
    """Decode in a background thread, handing over up to ``depth`` frames ahead."""
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    error: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            for frame in frames:
                while not stop.is_set():
                    try:
                        q.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer thread and re-raised there
            error.append(exc)
        finally:
            q.put(_END)

    thread = threading.Thread(target=reader, name="file-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                break
            assert isinstance(item, Frame)
            yield item
        if error:
            raise error[0]
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.1)
        thread.join()


@dataclass
class _TrackLog:
    """Accumulates tracks for the MOTChallenge file and the people counts."""

    rows: list[tuple[int, int, float, float, float, float, float]] = field(default_factory=list)
    ids: set[int] = field(default_factory=set)
    max_in_frame: int = 0

    def add(self, frame_number: int, xyxy: np.ndarray, conf: np.ndarray, ids: np.ndarray) -> None:
        self.ids.update(ids.tolist())
        self.max_in_frame = max(self.max_in_frame, len(ids))
        for (x1, y1, x2, y2), c, i in zip(xyxy.tolist(), conf.tolist(), ids.tolist(), strict=True):
            self.rows.append((frame_number, i, x1, y1, x2 - x1, y2 - y1, c))

    def to_mot(self) -> MotRows:
        n = len(self.rows)
        arr = np.asarray(self.rows, np.float64).reshape(n, 7)
        return MotRows(
            frame=arr[:, 0].astype(np.int64),
            track_id=arr[:, 1].astype(np.int64),
            xywh=arr[:, 2:6].astype(np.float32),
            confidence=arr[:, 6].astype(np.float32),
            class_id=np.full(n, -1, np.int32),
            visibility=np.full(n, -1, np.float32),
        )


def process_video(
    video: Path,
    config: StoreConfig,
    camera: CameraConfig | None = None,
    *,
    all_frames: bool = False,
    tracks_path: Path | None = None,
    detector: Detector | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    export_dir: Path | None = None,
    snapshot_every_s: float | None = None,
    privacy: PrivacySettings | None = None,
    outbox: Outbox | None = None,
    recorded_at: float | None = None,
    on_records: Callable[[], None] | None = None,
) -> ProcessReport:
    """Run the edge pipeline over a video file and return the report.

    Args:
        video: the file to read.
        config: the store config (model, tracker, camera analytics).
        camera: whose lines and zones apply; default the first camera.
        all_frames: analyse every frame (batch mode) instead of sampling to the camera's fps.
        tracks_path: if given, write MOTChallenge tracks there (frame numbers are 1-based
            indexes of the decoded frames in the file).
        detector: reuse a loaded detector (it is opened in throughput mode otherwise).
        progress: called as ``progress(frames_done, frames_expected)``.
        export_dir: if given, every image that would leave the box (alert snapshots, the
            heatmap, samples) goes through the privacy gate and is written there, with
            ``manifest.jsonl``.
        snapshot_every_s: with ``export_dir``, also release a sample every this many media
            seconds (an audit aid).
        privacy: privacy gate settings (face model); default from the environment.
        outbox: if given, every event, rollup and heatmap is appended to it as produced (what
            the live agent would sync to the hub).
        recorded_at: UNIX time (s) of the video's first frame, the time base of events and
            rollups; default the file's modification time.
        on_records: called after each append to ``outbox`` (wakes a sync thread).

    Raises:
        SourceError: the video cannot be read. ModelError: a model cannot be loaded.
        PrivacyError: ``export_dir`` without a face model.
    """
    camera = camera or config.cameras[0]
    target_fps = None if all_frames else camera.fps
    source = FileSource(video, camera_id=camera.id, target_fps=target_fps)
    detector = detector or open_detector(config, throughput=True)
    native_fps = source.fps or camera.fps
    effective_fps = native_fps if target_fps is None else min(target_fps, native_fps)
    tracker = ByteTracker(config.tracker, frame_rate=effective_fps)
    epoch = recorded_at if recorded_at is not None else _mtime(video)
    classes = class_map(config, detector)
    analytics = CameraAnalytics(
        camera, store_id=config.store_id, camera_id=camera.id, epoch_start_s=epoch, classes=classes
    )
    feed = OutboxFeed(outbox, on_records) if outbox is not None else None

    snapshots = None
    to_outbox = outbox is not None and privacy is not None and privacy.face_model is not None
    if export_dir is not None or to_outbox:
        # Every image that leaves goes through the gate: into the audit folder and/or, for
        # alert snapshots and the heatmap, into the outbox for the hub.
        snapshots = export_snapshots(
            export_dir,
            privacy or PrivacySettings(),
            store_id=config.store_id,
            camera_id=camera.id,
            sample_every_s=snapshot_every_s,
            outbox=outbox if to_outbox else None,
            on_append=feed.snapshot_appended if feed is not None else None,
        )
    events = rollups = statuses = 0
    log_tracks = _TrackLog()
    expected = source.expected_frames
    processed = 0
    last_t = 0.0
    start = time.perf_counter()
    frames = _prefetch(source, depth=4)
    with source:
        for frame, dets in detector.detect_stream(frames, lambda f: f.image):
            people = classes.people_only(dets)
            tracks = tracker.update(people, frame.image)
            shelf = ShelfFrame(dets, frame.image) if analytics.shelves else None
            out = analytics.update(tracks, frame.media_time_s, frame.width, frame.height, shelf)
            events += len(out.events)
            rollups += len(out.rollups)
            statuses += len(out.shelves)
            if feed is not None:
                feed.analytics(out)
            log_tracks.add(frame.index + 1, tracks.xyxy, tracks.confidence, tracks.track_id)
            if snapshots is not None:
                t = frame.media_time_s
                snapshots.on_frame(frame.image, people, tracks, t, analytics.unix(t), out.events)
            processed += 1
            last_t = frame.media_time_s
            if progress is not None:
                progress(processed, expected)
    frame_period = 1.0 / effective_fps
    final = analytics.flush(last_t + frame_period)
    events += len(final.events)
    rollups += len(final.rollups)
    statuses += len(final.shelves)
    if feed is not None:
        feed.analytics(final)
    if snapshots is not None:
        snapshots.finish(analytics.heatmap_counts(), analytics.unix(last_t + frame_period))
    summary = analytics.summary().model_dump(by_alias=True)
    wall = time.perf_counter() - start
    if tracks_path is not None:
        write_mot(tracks_path, log_tracks.to_mot())
    return ProcessReport(
        video=str(video),
        camera_id=camera.id,
        model=detector.manifest.name,
        runtime=detector.backend.name,
        frames_processed=processed,
        duration_s=round(last_t + frame_period, 3) if processed else 0.0,
        wall_s=round(wall, 3),
        processing_fps=round(processed / wall, 2) if wall > 0 else 0.0,
        sampled_fps=target_fps,
        people=len(log_tracks.ids),
        max_people_in_frame=log_tracks.max_in_frame,
        ended_early=source.ended_early,
        lines=summary.get("lines", {}),
        zones=summary.get("zones", {}),
        queues=summary.get("queues", {}),
        shelves=summary.get("shelves", {}),
        alerts=summary.get("alerts", []),
        events=events,
        rollups=rollups,
        shelf_statuses=statuses,
        images_exported=len(snapshots.released) if snapshots and export_dir else 0,
        records_appended=feed.appended if feed is not None else 0,
    )


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0  # a URL or device: FileSource reports the real problem
