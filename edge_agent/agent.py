"""The continuous agent: every configured camera, one shared detector, a tracker per camera.

Each camera's reader thread keeps only its newest frame; the agent loop takes whatever new
frames are ready, runs them through the detector in one batch where the model allows, and
hands each camera's detections to that camera's tracker and analytics. A dead camera only
shows in its health; the others keep going.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_agent.analytics.camera import AnalyticsOutput, CameraAnalytics
from edge_agent.config import CameraConfig, StoreConfig
from edge_agent.detect.detections import Detections
from edge_agent.detect.detector import Detector
from edge_agent.detect.slot import DetectorSlot
from edge_agent.feed import OutboxFeed
from edge_agent.outbox.store import Outbox
from edge_agent.privacy import CameraSnapshots, OutboxImageSink, PrivacyGate, PrivacySettings
from edge_agent.reconfigure import ConfigTrial, Reconfiguration
from edge_agent.shelf.classes import DetectorClasses
from edge_agent.shelf.monitor import ShelfFrame
from edge_agent.sources.camera_reader import CameraReader
from edge_agent.sources.frame import Frame
from edge_agent.sources.health import CameraHealth, CameraState
from edge_agent.track.bytetrack import ByteTracker
from edge_agent.track.tracks import Tracks
from edge_agent.watchdog import ServiceNotifier

log = logging.getLogger(__name__)

RECENT_FRAMES = 16  # analysed frames kept (references, not copies) for the twin's smoke test


RecordSink = Callable[[AnalyticsOutput], None]


class CameraPipeline:
    """Per-camera state after detection: the tracker and the store analytics; what the
    analytics produce (events, closed rollups, heatmaps, shelf statuses) goes to ``sink``.
    With ``classes``, only the people boxes reach the tracker and every box the shelves."""

    def __init__(
        self,
        camera: CameraConfig,
        tracker: ByteTracker,
        analytics: CameraAnalytics,
        sink: RecordSink | None = None,
        snapshots: CameraSnapshots | None = None,
        heatmap_image_every_s: float = 3600.0,
        classes: DetectorClasses | None = None,
    ) -> None:
        self.camera = camera
        self.classes = classes
        self.tracker = tracker
        self.analytics = analytics
        self.sink = sink
        self.snapshots = snapshots
        self.heatmap_image_every_s = heatmap_image_every_s
        self._next_heatmap_image: float | None = None
        self.last_index: int | None = None
        self.last_t: float | None = None
        self.frames = 0

    def update(self, frame: Frame, detections: Detections) -> Tracks:
        """Advance this camera by one analysed frame."""
        self.last_index = frame.index
        self.last_t = frame.media_time_s
        self.frames += 1
        people = detections if self.classes is None else self.classes.people_only(detections)
        tracks = self.tracker.update(people, frame.image)
        t = frame.media_time_s
        shelf = ShelfFrame(detections, frame.image) if self.analytics.shelves else None
        out = self.analytics.update(tracks, t, frame.width, frame.height, shelf)
        if self.sink is not None and (out.events or out.rollups or out.heatmaps or out.shelves):
            self.sink(out)
        if self.snapshots is not None:
            # Alert snapshots of this frame, through the privacy gate, to the outbox; and
            # every heatmap_image_every_s the heatmap so far over a gated background.
            self.snapshots.on_frame(
                frame.image, people, tracks, t, self.analytics.unix(t), out.events
            )
            if self._next_heatmap_image is None:
                self._next_heatmap_image = t + self.heatmap_image_every_s
            elif t >= self._next_heatmap_image:
                self._next_heatmap_image = t + self.heatmap_image_every_s
                self.snapshots.finish(self.analytics.heatmap_counts(), self.analytics.unix(t))
        return tracks

    def flush(self) -> None:
        """Close the open buckets (at stop) so their partial rollups reach the sink; the hub
        merges them with the rest of the same bucket sent after a restart."""
        if self.last_t is None:
            return
        end = self.last_t + 1.0 / self.camera.fps
        out = self.analytics.flush(end)
        if self.sink is not None:
            self.sink(out)
        if self.snapshots is not None:
            self.snapshots.finish(self.analytics.heatmap_counts(), self.analytics.unix(end))


@dataclass(frozen=True, slots=True)
class AgentStats:
    """Counters for the whole agent since start.

    Attributes:
        cycles: loop iterations that ran inference.
        frames: frames analysed over all cameras.
        inference_s: total seconds spent in detector calls.
    """

    cycles: int
    frames: int
    inference_s: float


class EdgeAgent:
    """Runs all enabled cameras of a store config until stopped."""

    def __init__(
        self,
        config: StoreConfig,
        detector: Detector,
        *,
        loop_files: bool = True,
        on_tracks: Callable[[Frame, Tracks], None] | None = None,
        outbox: Outbox | None = None,
        on_records: Callable[[], None] | None = None,
        notifier: ServiceNotifier | None = None,
    ) -> None:
        self.config = config
        # systemd (Type=notify): READY once running, watchdog pings from the loop.
        self.notifier = notifier
        # The running detector, swappable between steps by the twin (edge_agent.twin).
        self.slot = DetectorSlot(detector)
        self._recent: deque[npt.NDArray[np.uint8]] = deque(maxlen=RECENT_FRAMES)
        self.on_tracks = on_tracks
        self.on_records = on_records
        self._feed = OutboxFeed(outbox, on_records) if outbox is not None else None
        self.loop_files = loop_files
        # Images leave the box only with a face model for the privacy gate, and only into the
        # outbox (alert snapshots, hourly heatmaps), one gate shared by the cameras.
        self._gate: PrivacyGate | None = None
        if outbox is not None and config.privacy.face_model is not None:
            self._gate = PrivacyGate.open(PrivacySettings(face_model=config.privacy.face_model))
        self.readers, self.pipelines = self._build(config)
        # Reconfiguration asked by another thread, picked up between steps (edge_agent.
        # reconfigure), and the trial of the last one while it runs.
        self._pending: Reconfiguration | None = None
        self._pending_lock = threading.Lock()
        self._trial: ConfigTrial | None = None
        self._stop = threading.Event()
        self._stopped = False
        self._cycles = 0
        self._frames = 0
        self._inference_s = 0.0

    @property
    def detector(self) -> Detector:
        """The detector running now."""
        return self.slot.current

    def recent_frames(self) -> list[npt.NDArray[np.uint8]]:
        """The images of the last analysed frames, oldest first (for the twin's smoke test)."""
        return list(self._recent)

    def _build(
        self, config: StoreConfig
    ) -> tuple[dict[str, CameraReader], dict[str, CameraPipeline]]:
        """Readers (not started) and pipelines of the enabled cameras of ``config``, on this
        agent's detector, outbox and privacy gate."""
        cams = [c for c in config.cameras if c.enabled]
        readers = {
            c.id: CameraReader(c.id, c.source, target_fps=c.fps, loop=self.loop_files) for c in cams
        }
        # Live media time counts from the reader's start, which is about now: the analytics'
        # UNIX times are this epoch plus media time.
        epoch = time.time()
        classes = DetectorClasses(self.detector.manifest.classes, config.model.classes)
        pipelines = {
            c.id: CameraPipeline(
                c,
                ByteTracker(config.tracker, frame_rate=c.fps),
                CameraAnalytics(
                    c,
                    store_id=config.store_id,
                    camera_id=c.id,
                    epoch_start_s=epoch,
                    classes=classes,
                ),
                self._feed.analytics if self._feed is not None else None,
                self._snapshots(c.id),
                config.privacy.heatmap_image_every_s,
                classes,
            )
            for c in cams
        }
        return readers, pipelines

    def start(self) -> None:
        """Start every camera reader."""
        for reader in self.readers.values():
            reader.start()
        log.info(
            "agent started: %d camera(s), model %s on %s",
            len(self.readers),
            self.detector.manifest.name,
            self.detector.backend.name,
        )

    def _snapshots(self, camera_id: str) -> CameraSnapshots | None:
        if self._gate is None or self._feed is None:
            return None
        sink = OutboxImageSink(self._feed.outbox, self._feed.snapshot_appended)
        return CameraSnapshots(self._gate, sink, store_id=self.config.store_id, camera_id=camera_id)

    @property
    def records_appended(self) -> int:
        """Records (analytics and gated snapshots) appended to the outbox since start."""
        return self._feed.appended if self._feed is not None else 0

    def request_stop(self) -> None:
        """Ask the loop to end after the current step (safe from a signal handler)."""
        self._stop.set()

    def stop(self) -> None:
        """Stop the loop and every reader (joins their threads); the open buckets' partial
        rollups go to the outbox. Call from the thread that runs the loop, after it."""
        self._stop.set()
        if self._stopped:
            return
        self._stopped = True
        if self.notifier is not None:
            self.notifier.stopping()
        self._close_cameras()
        with self._pending_lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            pending.finish("the agent stopped before applying it")
        if self._trial is not None:
            self._trial.request.finish("the agent stopped during the trial")
            self._trial = None

    def _close_cameras(self) -> None:
        """Stop every reader (joins their threads) and close the open buckets: their partial
        rollups go to the outbox (the hub merges them with the rest of the bucket)."""
        readers = list(self.readers.values())
        if readers:
            # Side by side: a camera that does not answer holds its stop up to its open
            # timeout, and the loop (with its watchdog) waits for the slowest one only.
            with ThreadPoolExecutor(len(readers), thread_name_prefix="stop") as pool:
                list(pool.map(CameraReader.stop, readers))
        for pipeline in self.pipelines.values():
            pipeline.flush()

    # -- reconfiguration between steps (edge_agent.reconfigure) ---------------------------------

    def request_reconfigure(self, config: StoreConfig, trial_s: float = 0.0) -> Reconfiguration:
        """Ask the loop to run the cameras of ``config`` from its next step on (thread-safe);
        wait on the result. The detector, outbox, feed and privacy gate stay: only the
        cameras' settings (``cameras``, ``tracker``, ``timezone``) may differ.

        Over the next ``trial_s`` seconds every step must run without an exception and at least
        one enabled camera must stream; otherwise the loop goes back to the config it replaced
        and the request fails with the reason.

        Raises:
            RuntimeError: another reconfiguration is under way, or the agent has stopped.
        """
        request = Reconfiguration(config, trial_s)
        with self._pending_lock:
            if self._stopped:
                raise RuntimeError("the agent has stopped")
            if self._pending is not None or self._trial is not None:
                raise RuntimeError("another reconfiguration is under way")
            self._pending = request
        return request

    def _reconfigure_between_steps(self) -> None:
        if self._trial is not None:
            trial = self._trial
            if trial.observe(time.monotonic(), self.health()):
                self._trial = None
                if trial.error is not None:
                    self._revert(trial, trial.error)
                else:
                    log.info("config passed its %.0f s trial", trial.request.trial_s)
                    trial.request.finish(None)
            return
        with self._pending_lock:
            request, self._pending = self._pending, None
        if request is None or not request.take():
            return
        previous = self.config
        try:
            self._switch_cameras(request.config)
        except Exception as exc:  # nothing switched: the cameras of the old config run on
            log.exception("new config not applied")
            request.finish(f"not applied: {type(exc).__name__}: {exc}")
            return
        log.info(
            "config applied: %d camera(s); trial of %.0f s", len(self.readers), request.trial_s
        )
        self._trial = ConfigTrial(request, previous, time.monotonic())

    def _switch_cameras(self, config: StoreConfig) -> None:
        """Close the running cameras (partial rollups to the outbox) and start ``config``'s.
        Building comes first: a config that cannot be built leaves the running one alone."""
        readers, pipelines = self._build(config)
        self._close_cameras()
        self.config, self.readers, self.pipelines = config, readers, pipelines
        for reader in readers.values():
            reader.start()

    def _revert(self, trial: ConfigTrial, reason: str) -> None:
        log.error("config failed its trial, switching back: %s", reason)
        self._switch_cameras(trial.previous)
        trial.request.finish(f"failed its trial: {reason}")

    def __enter__(self) -> EdgeAgent:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def step(self, wait_s: float = 0.05) -> int:
        """Analyse the newest unseen frame of every camera that has one; returns how many.

        Waits up to ``wait_s`` for at least one camera to have a new frame. A reconfiguration
        asked for (``request_reconfigure``) is applied first; during its trial an exception of
        the step switches back to the previous config instead of propagating.
        """
        self._reconfigure_between_steps()
        if self._trial is None:
            return self._analyse(wait_s)
        trial = self._trial
        try:
            return self._analyse(wait_s)
        except Exception as exc:  # any failure under the new config fails its trial
            log.exception("step failed during the trial of a new config")
            self._trial = None
            self._revert(trial, f"a step failed: {type(exc).__name__}: {exc}")
            return 0

    def _analyse(self, wait_s: float) -> int:
        ready: list[Frame] = []
        deadline = time.monotonic() + wait_s
        while not ready and not self._stop.is_set():
            for cam_id, reader in self.readers.items():
                frame = reader.latest(after_index=self.pipelines[cam_id].last_index)
                if frame is not None:
                    ready.append(frame)
            if ready or time.monotonic() >= deadline:
                break
            time.sleep(0.005)
        if not ready:
            return 0
        t0 = time.perf_counter()
        detector = self.slot.current  # one model per step; a swap applies from the next one
        try:
            detections = self._detect(detector, ready)
        except Exception as exc:
            # A model switched in by the twin that fails while running: back to the one it
            # replaced, for these frames too (none is dropped); the twin reports it.
            if not self.slot.revert(detector, f"{type(exc).__name__}: {exc}"):
                raise
            log.exception("model %s failed, switched back", detector.manifest.name)
            detections = self._detect(self.slot.current, ready)
        self._inference_s += time.perf_counter() - t0
        self._recent.extend(f.image for f in ready)
        for frame, dets in zip(ready, detections, strict=True):
            tracks = self.pipelines[frame.camera_id].update(frame, dets)
            if self.on_tracks is not None:
                self.on_tracks(frame, tracks)
        self._cycles += 1
        self._frames += len(ready)
        return len(ready)

    @staticmethod
    def _detect(detector: Detector, ready: list[Frame]) -> list[Detections]:
        if detector.batch_size == 1 and detector.backend.parallel_requests > 1:
            # A model that cannot batch: run the cameras' frames side by side instead.
            return [d for _, d in detector.detect_stream(ready, lambda f: f.image)]
        return detector.detect([f.image for f in ready])

    def run(self, duration_s: float | None = None, health_every_s: float = 30.0) -> None:
        """Loop until ``stop()`` (or for ``duration_s``), logging health periodically."""
        end = None if duration_s is None else time.monotonic() + duration_s
        next_health = time.monotonic() + health_every_s
        if self.notifier is not None:
            self.notifier.ready(f"{len(self.readers)} camera(s)")
        while not self._stop.is_set() and (end is None or time.monotonic() < end):
            self.step()
            if self.notifier is not None:
                self.notifier.tick(time.monotonic())
            if time.monotonic() >= next_health:
                next_health += health_every_s
                health = self.health()
                if self.notifier is not None:
                    streaming = sum(h.state is CameraState.STREAMING for h in health)
                    self.notifier.status(f"{streaming}/{len(health)} camera(s) streaming")
                for h in health:
                    log.info(
                        "camera %s: %s, in %.1f fps, processed %.1f fps, dropped %d, reconnects %d",
                        h.camera_id,
                        h.state,
                        h.input_fps,
                        h.processed_fps,
                        h.dropped_frames,
                        h.reconnect_count,
                    )

    def health(self) -> list[CameraHealth]:
        """A health snapshot of every camera."""
        return [r.health() for r in self.readers.values()]

    def stats(self) -> AgentStats:
        """Counters since start."""
        return AgentStats(self._cycles, self._frames, self._inference_s)
