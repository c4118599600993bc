"""One camera's analytics: tracks in, events and closed rollups out.

``CameraAnalytics`` owns the line counter, zone tracker, queue estimators, heatmap, alert
engine and rollup book of one camera. Feed it every analysed frame with its media time; it
returns the events that happened and the rollups (and heatmaps) of buckets that closed. Media
time ``t_s`` maps to UNIX time as ``epoch_start_s + t_s`` (the caller's time base: the wall
clock at the start of a stream, or the recording start of a video).

Rollup series per bucket (see ``common.telemetry.Metric``): lines ``line_in``, ``line_out``;
dwell zones ``occupancy``, ``visits``, ``pass_bys``, ``engaged``, ``dwell_s``; queue zones
``queue_length``, ``served``, ``pass_bys``, ``dwell_s`` (time in queue), ``queue_wait_s``; the
camera (target = camera id) ``people``. Alert rules see the per-frame samples (occupancy,
queue_length, queue_wait_s, people) as they come, and the counters (value = count per bucket)
and ``dwell_s`` (value = mean) when a bucket closes; anything else through ``observe_metric``.

Monitored shelves (zones of kind ``shelf`` with a ``shelf`` block, see ``edge_agent.shelf``)
need the frame's detections of every class (``update(..., shelf=ShelfFrame(...))``) and the
detector's class list (``classes``). Per shelf they sample ``stock_level`` (once every slot's
state is known) and ``shelf_occluded`` (1 on a skipped frame), raise the built-in alerts
``<zone>.low_stock`` (stock_level < low_stock_below) and ``<zone>.out_of_stock``
(stock_level <= 0), and emit a ``ShelfStatus`` when a slot changes and on the first frame of
each rollup bucket (and at ``flush``).

Only tracks matched in at least ``min_hits`` frames count (crossings made before are counted
once the track gets there). The caller passes the tracks to count (people).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from common.telemetry import (
    AlertPayload,
    AnalyticsEvent,
    EventKind,
    HeatmapRollup,
    LineCrossingPayload,
    Metric,
    Rollup,
    RollupKind,
    ShelfStatus,
    SlotReport,
    VisitPayload,
)
from edge_agent.analytics.alerts import AlertEngine, AlertEvent
from edge_agent.analytics.config import AlertRule, CameraAnalyticsConfig, ZoneConfig
from edge_agent.analytics.geometry import normalised_feet
from edge_agent.analytics.heatmap import HeatmapAccumulator
from edge_agent.analytics.lines import LineCounter, LineCrossing
from edge_agent.analytics.queues import QueueWaitEstimator
from edge_agent.analytics.rollups import RollupBook
from edge_agent.analytics.summary import (
    AlertSummary,
    AnalyticsSummary,
    LineSummary,
    QueueSummary,
    ShelfChangeSummary,
    ShelfSummary,
    ZoneSummary,
)
from edge_agent.analytics.zones import Visit, ZoneTracker
from edge_agent.shelf.classes import DetectorClasses
from edge_agent.shelf.monitor import ShelfFrame, ShelfMonitor
from edge_agent.shelf.products import ProductClassifier
from edge_agent.track.tracks import Tracks

log = logging.getLogger(__name__)

DWELL_HISTOGRAM_EDGES_S = (2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
CONFIRM_ALLOWANCE_S = 5.0  # how late a crossing may be confirmed and still land in its bucket
FORGET_CHECK_S = 5.0
_SHELF_METRICS = frozenset({Metric.STOCK_LEVEL, Metric.SHELF_OCCLUDED})


@dataclass(slots=True)
class AnalyticsOutput:
    """What one call produced: events, closed rollups, closed heatmaps, shelf statuses."""

    events: list[AnalyticsEvent] = field(default_factory=list)
    rollups: list[Rollup] = field(default_factory=list)
    heatmaps: list[HeatmapRollup] = field(default_factory=list)
    shelves: list[ShelfStatus] = field(default_factory=list)


def shelf_alert_rules(zone: ZoneConfig) -> list[AlertRule]:
    """The built-in alert rules of a monitored shelf zone: low stock and out of stock, on its
    ``stock_level`` (the slots' hold time already debounces it, so no ``for_s``)."""
    assert zone.shelf is not None
    low, out = zone.shelf_alert_ids
    return [
        AlertRule(
            id=low, metric=Metric.STOCK_LEVEL, target=zone.id, op="<",
            threshold=zone.shelf.low_stock_below,
        ),
        AlertRule(id=out, metric=Metric.STOCK_LEVEL, target=zone.id, op="<=", threshold=0.0),
    ]  # fmt: skip


class CameraAnalytics:
    """Footfall, zones, queues, heatmap, alerts and rollups of one camera (media seconds)."""

    def __init__(
        self,
        config: CameraAnalyticsConfig,
        *,
        store_id: str,
        camera_id: str,
        epoch_start_s: float = 0.0,
        forget_after_s: float = 60.0,
        classes: DetectorClasses | None = None,
        product_classifiers: Mapping[str, ProductClassifier] | None = None,
    ) -> None:
        self.config = config
        self.store_id, self.camera_id = store_id, camera_id
        self.epoch_start_s = epoch_start_s
        self.forget_after_s = forget_after_s
        self.lines = LineCounter(config.lines, config.min_hits)
        self.zones = ZoneTracker(config.zones, config.min_hits)
        self.shelves = self._shelf_monitors(classes, product_classifiers or {})
        shelf_rules = [r for z in config.zones if z.shelf is not None for r in shelf_alert_rules(z)]
        self.alerts = AlertEngine([*config.alerts, *shelf_rules])
        self._shelf_bucket: int | None = None
        zcfg = {z.id: z for z in config.zones}
        self._queue_idx = [i for i, k in enumerate(self.zones.zone_kinds) if k == "queue"]
        self.queues = {
            self.zones.zone_ids[i]: QueueWaitEstimator(zcfg[self.zones.zone_ids[i]].rate_window_s)
            for i in self._queue_idx
        }
        self._max_dt = config.heatmap.max_dt_s
        self._grid = config.heatmap.grid
        grace = max((z.exit_grace_s for z in config.zones), default=0.0)
        self.book = RollupBook(
            store_id,
            camera_id,
            config.rollup_interval_s,
            epoch_start_s,
            lateness_s=grace + CONFIRM_ALLOWANCE_S,
        )
        self._register_series()
        self._heat: dict[int, HeatmapAccumulator] = {}
        self._heat_total = np.zeros((self._grid[1], self._grid[0]), np.float64)
        self._last_t: float | None = None
        self._last_forget = -np.inf
        self._summary = AnalyticsSummary(
            shelves={m.shelf_id: ShelfSummary() for m in self.shelves},
            lines={lid: LineSummary() for lid in self.lines.line_ids},
            zones={
                z: ZoneSummary()
                for z, k in zip(self.zones.zone_ids, self.zones.zone_kinds, strict=True)
                if k == "dwell"
            },
            queues={self.zones.zone_ids[i]: QueueSummary() for i in self._queue_idx},
        )

    def _shelf_monitors(
        self, classes: DetectorClasses | None, classifiers: Mapping[str, ProductClassifier]
    ) -> list[ShelfMonitor]:
        zones = [z for z in self.config.zones if z.shelf is not None]
        if zones and classes is None:
            raise ValueError(
                f"camera {self.camera_id} monitors shelves {[z.id for z in zones]}: pass the "
                "detector's classes (classes=DetectorClasses(...))"
            )
        monitors = []
        for z in zones:
            assert z.shelf is not None and classes is not None
            classifier = classifiers.get(z.id)
            if classifier is None and z.shelf.classifier is not None:
                classifier = ProductClassifier(z.shelf.classifier)
            monitors.append(
                ShelfMonitor(
                    z.id,
                    z.polygon,
                    z.shelf,
                    classes.ids(z.shelf.product_classes),
                    classes.people_ids,
                    classifier,
                )
            )
        return monitors

    def _register_series(self) -> None:
        b, C, S = self.book, RollupKind.COUNTER, RollupKind.SAMPLES
        for m in self.shelves:
            b.register(m.shelf_id, Metric.STOCK_LEVEL, S)
            b.register(m.shelf_id, Metric.SHELF_OCCLUDED, S)
        for lid in self.lines.line_ids:
            b.register(lid, Metric.LINE_IN, C)
            b.register(lid, Metric.LINE_OUT, C)
        gauges = []
        for zid, kind in zip(self.zones.zone_ids, self.zones.zone_kinds, strict=True):
            if kind == "dwell":
                gauges.append(b.register(zid, Metric.OCCUPANCY, S))
                b.register(zid, Metric.VISITS, C)
                b.register(zid, Metric.ENGAGED, C)
            else:
                gauges.append(b.register(zid, Metric.QUEUE_LENGTH, S))
                b.register(zid, Metric.SERVED, C)
                b.register(zid, Metric.QUEUE_WAIT_S, S)
            b.register(zid, Metric.PASS_BYS, C)
            b.register(zid, Metric.DWELL_S, S, DWELL_HISTOGRAM_EDGES_S)
        gauges.append(b.register(self.camera_id, Metric.PEOPLE, S))
        self._gauge_series = np.array(gauges, np.intp)
        self._gauge_keys = [
            (Metric.OCCUPANCY if k == "dwell" else Metric.QUEUE_LENGTH, z)
            for z, k in zip(self.zones.zone_ids, self.zones.zone_kinds, strict=True)
        ] + [(Metric.PEOPLE, self.camera_id)]
        # What the rules see on every frame; a closing bucket's mean of these is not fed to
        # them again (a mean over the minute would read as a dip and restart a rule's hold).
        self._per_frame: frozenset[tuple[str, str]] = frozenset(
            [
                *self._gauge_keys,
                *((Metric.QUEUE_WAIT_S, self.zones.zone_ids[i]) for i in self._queue_idx),
            ]
        )

    def unix(self, t_s: float) -> float:
        """UNIX seconds of media time ``t_s``."""
        return self.epoch_start_s + t_s

    def update(
        self,
        tracks: Tracks,
        t_s: float,
        frame_w: int,
        frame_h: int,
        shelf: ShelfFrame | None = None,
    ) -> AnalyticsOutput:
        """Process one frame's tracks at media time ``t_s`` (s) of a ``frame_w`` x ``frame_h``
        pixel frame, and ``shelf`` (every class's detections) for the monitored shelves.
        Frame times must not go backwards."""
        if self._last_t is not None and t_s < self._last_t:
            raise ValueError(
                f"camera {self.camera_id}: frame time {t_s} s is before the previous frame's "
                f"{self._last_t} s; analytics need media time in order"
            )
        dt = 0.0 if self._last_t is None else min(t_s - self._last_t, self._max_dt)
        self._last_t = t_s
        out = AnalyticsOutput()
        feet = normalised_feet(tracks, frame_w, frame_h)
        ids, hits = tracks.track_id, tracks.hits
        confirmed = hits >= self.config.min_hits
        bucket = self.book.touch(t_s)

        for crossing in self.lines.update(ids, feet, hits, t_s):
            out.events.append(self._crossing_event(crossing))
        self._on_visits(self.zones.update(ids, feet, hits, t_s, dt), out)

        occupancy = self.zones.occupancy
        gauges = np.append(occupancy, np.count_nonzero(confirmed)).astype(np.float64)
        self.book.sample_many(self._gauge_series, t_s, gauges)
        for (metric, target), value in zip(self._gauge_keys, gauges, strict=True):
            if self.alerts.watches(metric, target):
                self._on_alerts(self.alerts.observe(metric, target, float(value), t_s), out)
        for zi in self._queue_idx:
            self._on_queue_frame(self.zones.zone_ids[zi], int(occupancy[zi]), t_s, out)
        for zi, zid in enumerate(self.zones.zone_ids):
            if zid in self._summary.zones:
                zs = self._summary.zones[zid]
                zs.max_occupancy = max(zs.max_occupancy, int(occupancy[zi]))

        heat = self._heat.get(bucket)
        if heat is None:
            heat = self._heat[bucket] = HeatmapAccumulator(self._grid)
        heat.add(feet[confirmed], dt)
        if self.shelves and shelf is not None:
            self._on_shelves(shelf, bucket, t_s, frame_w, frame_h, out)

        self._close(self.book.advance(t_s), t_s, out)
        if t_s - self._last_forget >= FORGET_CHECK_S:
            self._last_forget = t_s
            self.lines.forget(t_s - self.forget_after_s)
            self.zones.forget(t_s - self.forget_after_s)
        return out

    def observe_metric(
        self, metric: str, target: str, value: float, t_s: float
    ) -> list[AnalyticsEvent]:
        """Feed a metric computed outside the analytics (e.g. ``camera_offline`` = 1.0) to the
        alert rules at media time ``t_s``; returns the alert events it causes."""
        out = AnalyticsOutput()
        self._on_alerts(self.alerts.observe(metric, target, value, t_s), out)
        return out.events

    def flush(self, t_s: float) -> AnalyticsOutput:
        """End of the video or stream at media time ``t_s``: end open visits at their last
        sighting, then close every open bucket."""
        out = AnalyticsOutput()
        self._on_visits(self.zones.flush(), out)
        if self._last_t is not None:
            out.shelves.extend(self.shelf_status(m, self._last_t) for m in self.shelves)
        self._close(self.book.close_all(), t_s, out)
        return out

    def summary(self) -> AnalyticsSummary:
        """Totals so far (a copy); ``.model_dump(by_alias=True)`` is the report JSON."""
        s = self._summary.model_copy(deep=True)
        for lid, (n_in, n_out) in self.lines.totals().items():
            s.lines[lid] = LineSummary(in_=n_in, out=n_out)
        for m in self.shelves:
            sh = s.shelves[m.shelf_id]
            sh.frames, sh.occluded_frames = m.frames, m.occluded_frames
            sh.stock_level, sh.status = m.stock_level, m.status
            sh.slots = {v.slot_id: v.state for v in m.slots()}
            sh.misplaced = [v.slot_id for v in m.slots() if v.misplaced]
        return s

    def shelf_status(self, monitor: ShelfMonitor, t_s: float) -> ShelfStatus:
        """The ``ShelfStatus`` record of one monitored shelf as of media time ``t_s``."""
        slots = [
            SlotReport(
                slot_id=v.slot_id,
                state=v.state,
                product=v.product,
                seen_product=v.seen_product,
                misplaced=v.misplaced,
                since=None if v.state == "unknown" else self.unix(v.since_s),
                empty_since=None if v.empty_since_s is None else self.unix(v.empty_since_s),
            )
            for v in monitor.slots()
        ]
        return ShelfStatus(
            store_id=self.store_id,
            camera_id=self.camera_id,
            shelf_id=monitor.shelf_id,
            observed_at=self.unix(t_s),
            status=monitor.status,
            stock_level=monitor.stock_level,
            low_stock_below=monitor.config.low_stock_below,
            slots=slots,
        )

    def heatmap_counts(self) -> npt.NDArray[np.float64]:
        """(grid_h, grid_w) person-seconds per cell since the start, closed and open buckets."""
        total = self._heat_total.copy()
        for acc in self._heat.values():
            total += acc.counts
        return total

    # -- internals -------------------------------------------------------------------------

    def _crossing_event(self, c: LineCrossing) -> AnalyticsEvent:
        series = self.book.index(
            c.line_id, Metric.LINE_IN if c.direction == "in" else Metric.LINE_OUT
        )
        self.book.count(series, c.t_s)
        return AnalyticsEvent(
            kind=EventKind.LINE_CROSSING,
            store_id=self.store_id,
            camera_id=self.camera_id,
            target_id=c.line_id,
            occurred_at=self.unix(c.t_s),
            track_id=c.track_id,
            payload=LineCrossingPayload(direction=c.direction),
        )

    def _on_visits(self, visits: list[Visit], out: AnalyticsOutput) -> None:
        b = self.book
        for v in visits:
            if v.pass_by:
                b.count(b.index(v.zone_id, Metric.PASS_BYS), v.exited_s)
                if v.zone_kind == "dwell":
                    self._summary.zones[v.zone_id].pass_bys += 1
                else:
                    self._summary.queues[v.zone_id].pass_bys += 1
                continue
            b.sample(b.index(v.zone_id, Metric.DWELL_S), v.exited_s, v.dwell_s)
            if v.zone_kind == "dwell":
                b.count(b.index(v.zone_id, Metric.VISITS), v.exited_s)
                zs = self._summary.zones[v.zone_id]
                zs.visits += 1
                zs.dwell_s.append(v.dwell_s)
                if v.engaged:
                    b.count(b.index(v.zone_id, Metric.ENGAGED), v.exited_s)
                    zs.engaged += 1
            else:
                b.count(b.index(v.zone_id, Metric.SERVED), v.exited_s)
                self.queues[v.zone_id].record_departure(v.exited_s)
                qs = self._summary.queues[v.zone_id]
                qs.served += 1
                qs.time_in_queue_s.append(v.dwell_s)
            out.events.append(
                AnalyticsEvent(
                    kind=EventKind.VISIT,
                    store_id=self.store_id,
                    camera_id=self.camera_id,
                    target_id=v.zone_id,
                    occurred_at=self.unix(v.exited_s),
                    track_id=v.track_id,
                    payload=VisitPayload(
                        zone_kind=v.zone_kind,
                        entered_at=self.unix(v.entered_s),
                        dwell_s=v.dwell_s,
                        engaged=v.engaged,
                    ),
                )
            )

    def _on_shelves(
        self,
        frame: ShelfFrame,
        bucket: int,
        t_s: float,
        frame_w: int,
        frame_h: int,
        out: AnalyticsOutput,
    ) -> None:
        b = self.book
        heartbeat = bucket != self._shelf_bucket  # first frame of a bucket: every shelf reports
        self._shelf_bucket = bucket
        for m in self.shelves:
            upd = m.update(frame, frame_w, frame_h, t_s)
            b.sample(b.index(m.shelf_id, Metric.SHELF_OCCLUDED), t_s, float(upd.occluded))
            level = m.stock_level
            if level is not None:
                b.sample(b.index(m.shelf_id, Metric.STOCK_LEVEL), t_s, level)
                self._on_alerts(
                    self.alerts.observe(Metric.STOCK_LEVEL, m.shelf_id, level, t_s), out
                )
            changes = self._summary.shelves[m.shelf_id].changes
            changes.extend(
                ShelfChangeSummary(
                    slot=c.slot_id, what=c.what, value=c.value, since_s=c.since_s, at_s=c.t_s
                )
                for c in upd.changes
            )
            if upd.changes or heartbeat:
                out.shelves.append(self.shelf_status(m, t_s))

    def _on_queue_frame(self, zid: str, length: int, t_s: float, out: AnalyticsOutput) -> None:
        est = self.queues[zid]
        est.observe(t_s, length)
        wait = est.expected_wait(length, t_s)
        qs = self._summary.queues[zid]
        qs.max_length = max(qs.max_length, length)
        qs.wait_estimate_s = wait
        if wait is None:
            return
        self.book.sample(self.book.index(zid, Metric.QUEUE_WAIT_S), t_s, wait)
        if self.alerts.watches(Metric.QUEUE_WAIT_S, zid):
            self._on_alerts(self.alerts.observe(Metric.QUEUE_WAIT_S, zid, wait, t_s), out)

    def _on_alerts(self, events: list[AlertEvent], out: AnalyticsOutput) -> None:
        for e in events:
            r = e.rule
            if e.kind == "raised":
                self._summary.alerts.append(AlertSummary(rule=r.id, raised_at_s=e.t_s))
            else:
                for a in reversed(self._summary.alerts):
                    if a.rule == r.id and a.cleared_at_s is None:
                        a.cleared_at_s = e.t_s
                        break
            out.events.append(
                AnalyticsEvent(
                    kind=EventKind.ALERT_RAISED if e.kind == "raised" else EventKind.ALERT_CLEARED,
                    store_id=self.store_id,
                    camera_id=self.camera_id,
                    target_id=r.target,
                    occurred_at=self.unix(e.t_s),
                    payload=AlertPayload(
                        rule_id=r.id,
                        metric=r.metric,
                        op=r.op,
                        threshold=r.threshold,
                        clear_threshold=r.clear_at,
                        value=e.value,
                    ),
                )
            )

    def _close(
        self, closed: list[tuple[int, list[Rollup]]], t_s: float, out: AnalyticsOutput
    ) -> None:
        gw, gh = self._grid
        for bucket, rollups in closed:
            out.rollups.extend(rollups)
            acc = self._heat.pop(bucket, None)
            if acc is not None:
                grid = acc.take()
                self._heat_total += grid
                out.heatmaps.append(
                    HeatmapRollup(
                        store_id=self.store_id,
                        camera_id=self.camera_id,
                        bucket_start=bucket,
                        interval_s=self.book.interval_s,
                        grid_w=gw,
                        grid_h=gh,
                        person_seconds=grid.ravel().tolist(),
                    )
                )
            for r in rollups:
                if (
                    r.metric in _SHELF_METRICS
                    or (r.metric, r.target_id) in self._per_frame
                    or not self.alerts.watches(r.metric, r.target_id)
                ):
                    continue  # per-frame metrics are seen per frame only, never a bucket's mean
                value = float(r.count) if r.kind is RollupKind.COUNTER else r.mean
                if value is not None:
                    self._on_alerts(self.alerts.observe(r.metric, r.target_id, value, t_s), out)
