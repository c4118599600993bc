"""Prometheus metrics of a running store box, read when scraped (nothing in the hot path).

``EdgeMetrics(agent, outbox)`` registers a collector in its own registry that asks the agent
for each camera's health and its detector counters, and the outbox for its depth, at scrape
time; ``start(port)`` serves them at ``/metrics``. Metrics:

* ``retail_edge_camera_up{camera}``: 1 while the camera streams.
* ``retail_edge_camera_input_fps`` / ``retail_edge_camera_processed_fps{camera}``: frames per
  second read from the source and analysed (recent window).
* ``retail_edge_camera_frames_dropped_total{camera}``: sampled frames the detector was too slow
  for; ``retail_edge_camera_reconnects_total{camera}``.
* ``retail_edge_inference_seconds_total`` / ``retail_edge_inference_frames_total``: their ratio is
  the mean inference time per frame (``rate(a)/rate(b)`` in PromQL).
* ``retail_edge_outbox_pending_records``, ``retail_edge_outbox_pending_bytes``,
  ``retail_edge_outbox_oldest_pending_seconds`` (the sync lag: 0 when empty),
  ``retail_edge_outbox_dropped_total{kind}``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edge_agent.agent import AgentStats
from edge_agent.outbox.store import OutboxStats
from edge_agent.sources.health import CameraHealth, CameraState


class _EdgeCollector(Collector):
    def __init__(
        self,
        health: Callable[[], list[CameraHealth]],
        stats: Callable[[], AgentStats],
        outbox: Callable[[float], OutboxStats] | None,
    ) -> None:
        self.health = health
        self.stats = stats
        self.outbox = outbox

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "retail_edge_camera_up", "1 while the camera streams", labels=["camera"]
        )
        fps_in = GaugeMetricFamily(
            "retail_edge_camera_input_fps", "frames/s read from the source", labels=["camera"]
        )
        fps_done = GaugeMetricFamily(
            "retail_edge_camera_processed_fps", "frames/s analysed", labels=["camera"]
        )
        dropped = CounterMetricFamily(
            "retail_edge_camera_frames_dropped",
            "sampled frames overwritten before the detector took them",
            labels=["camera"],
        )
        reconnects = CounterMetricFamily(
            "retail_edge_camera_reconnects", "source reopen attempts", labels=["camera"]
        )
        for h in self.health():
            up.add_metric([h.camera_id], 1.0 if h.state is CameraState.STREAMING else 0.0)
            fps_in.add_metric([h.camera_id], h.input_fps)
            fps_done.add_metric([h.camera_id], h.processed_fps)
            dropped.add_metric([h.camera_id], h.dropped_frames)
            reconnects.add_metric([h.camera_id], h.reconnect_count)
        yield from (up, fps_in, fps_done, dropped, reconnects)
        s = self.stats()
        yield CounterMetricFamily(
            "retail_edge_inference_seconds", "seconds spent in detector calls", value=s.inference_s
        )
        yield CounterMetricFamily(
            "retail_edge_inference_frames", "frames analysed by the detector", value=s.frames
        )
        if self.outbox is None:
            return
        o = self.outbox(time.time())
        yield GaugeMetricFamily(
            "retail_edge_outbox_pending_records",
            "records waiting for the hub",
            value=o.pending_count,
        )
        yield GaugeMetricFamily(
            "retail_edge_outbox_pending_bytes", "their stored bytes", value=o.pending_bytes
        )
        yield GaugeMetricFamily(
            "retail_edge_outbox_oldest_pending_seconds",
            "age of the oldest record not yet at the hub (sync lag; 0 when empty)",
            value=o.oldest_pending_age_s or 0.0,
        )
        drops = CounterMetricFamily(
            "retail_edge_outbox_dropped", "records dropped by the outbox bounds", labels=["kind"]
        )
        for kind, n in sorted(o.dropped_total.items()):
            drops.add_metric([kind], n)
        yield drops


class EdgeMetrics:
    """The box's metrics in their own registry, served over HTTP between ``start``/``stop``."""

    def __init__(
        self,
        health: Callable[[], list[CameraHealth]],
        stats: Callable[[], AgentStats],
        outbox: Callable[[float], OutboxStats] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_EdgeCollector(health, stats, outbox))
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, port: int, addr: str = "127.0.0.1") -> None:
        """Serve ``/metrics`` on ``addr:port`` from a daemon thread."""
        self._server, self._thread = start_http_server(port, addr, registry=self.registry)

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
