"""Queues: the Little's-law wait estimate against queueing theory on a synthetic M/D/1 queue."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from common.telemetry import Metric
from edge_agent.analytics import CameraAnalytics, CameraAnalyticsConfig, QueueWaitEstimator
from tests.edge_agent.analytics_helpers import H, W, tracks_at


def test_rate_and_wait_by_hand() -> None:
    est = QueueWaitEstimator(window_s=60.0)
    est.observe(0.0)
    assert est.expected_wait(3, 5.0) is None  # nobody served yet: no rate to divide by
    for t in (10.0, 20.0, 30.0):
        est.record_departure(t)
    assert est.service_rate(40.0) == 3 / 40  # only 40 s observed so far
    assert est.expected_wait(2, 40.0) == 2 / (3 / 40)
    assert est.service_rate(70.0) == 2 / 60  # the departure at 10 s left the window (10, 70]
    assert est.expected_wait(0, 70.0) == 0.0
    assert est.service_rate(95.0) is None  # nobody served in (35, 95]


def simulate_md1(
    rate: float, service_s: float, duration_s: float, seed: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Poisson arrivals, one server with a fixed service time, first come first served."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / rate, int(rate * duration_s * 1.5)))
    arrivals = arrivals[arrivals < duration_s]
    departures = np.empty_like(arrivals)
    free_at = 0.0
    for i, a in enumerate(arrivals):
        free_at = max(a, free_at) + service_s
        departures[i] = free_at
    return arrivals, departures


def test_littles_law_wait_matches_md1_theory() -> None:
    """Arrivals 0.25/s, service 2 s (utilisation 0.5). Pollaczek-Khinchine gives the mean time
    in the system W = S + rate * S^2 / (2 (1 - rho)) = 2 + 0.25 * 4 / 1 = 3 s. The estimate for
    someone joining, L_now / measured throughput, averaged over time, must come out near W, and
    the throughput near the arrival rate."""
    rate, service_s, duration_s, fps = 0.25, 2.0, 5400.0, 2.0
    rho = rate * service_s
    w_theory = service_s + rate * service_s**2 / (2 * (1 - rho))
    arrivals, departures = simulate_md1(rate, service_s, duration_s, seed=7)
    cfg = CameraAnalyticsConfig.model_validate(
        {
            "zones": [
                {
                    "id": "checkout",
                    "kind": "queue",
                    "polygon": [[0.1, 0.2], [0.5, 0.2], [0.5, 0.8], [0.1, 0.8]],
                    "min_dwell_s": 0.5,
                    "engaged_s": 0.5,
                    "exit_grace_s": 1.0,
                    "rate_window_s": 600.0,
                }
            ],
            "rollup_interval_s": 60,
            "min_hits": 3,
        }
    )
    cam = CameraAnalytics(cfg, store_id="s", camera_id="c")
    rng = np.random.default_rng(1)
    spots = rng.uniform([0.12, 0.22], [0.48, 0.78], (len(arrivals), 2))
    rollups = []
    first_seen: dict[int, int] = {}
    served_in_frames = 0
    for k in range(int(duration_s * fps)):
        t = k / fps
        waiting = np.flatnonzero((arrivals <= t) & (departures > t))
        leaving = np.flatnonzero((departures <= t) & (departures > t - 1 / fps))
        ids = [*waiting.tolist(), *leaving.tolist()]
        feet = [*spots[waiting], *([(0.8, 0.5)] * len(leaving))]  # walk out of the zone
        for i in waiting.tolist():
            first_seen.setdefault(i, k)
        hits = [k - first_seen.get(i, k) + 3 for i in ids]
        rollups += cam.update(tracks_at(ids, feet, hits), t, W, H).rollups
        served_in_frames = len(first_seen)
    rollups += cam.flush(duration_s).rollups
    waits = [r for r in rollups if r.metric == Metric.QUEUE_WAIT_S]
    mean_estimate = sum(r.sum or 0.0 for r in waits) / sum(r.count for r in waits)
    summary = cam.summary().queues["checkout"]
    assert summary.served == served_in_frames  # everyone who was seen queuing left once
    assert abs(mean_estimate - w_theory) / w_theory < 0.10, (mean_estimate, w_theory)
    measured = float(np.mean(summary.time_in_queue_s))
    assert abs(measured - w_theory) / w_theory < 0.10, (measured, w_theory)
    throughput = cam.queues["checkout"].service_rate(duration_s - 1.0)
    assert throughput is not None and abs(throughput - rate) / rate < 0.15
    # No estimate exists before the first person has been served.
    first_departure_bucket = int(departures[0] // 60 * 60)
    assert min(r.bucket_start for r in waits) == first_departure_bucket
