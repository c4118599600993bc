"""The smoke test: the running model and a candidate on the same recent frames."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from common.twin import SmokeMetrics
from edge_agent.detect.detector import Detector


def smoke_test(
    current: Detector,
    candidate: Detector,
    frames: Sequence[npt.NDArray[np.uint8]],
    repeats: int = 3,
) -> SmokeMetrics:
    """Run both detectors on each frame ``repeats`` times, alternating so that both see the
    same load; per model the median over frames of the best of ``repeats`` milliseconds (the
    best run is the one least disturbed by other work on the box), and the mean detections
    per frame.

    Any exception of the candidate propagates: it failed the smoke test.
    """
    if not frames:
        raise ValueError("the smoke test needs at least one frame")
    candidate.detect([frames[0]])  # warm-up: the first run of a new session allocates
    best = {"before": [np.inf] * len(frames), "after": [np.inf] * len(frames)}
    dets: dict[str, list[int]] = {"before": [], "after": []}
    for _ in range(repeats):
        for i, image in enumerate(frames):
            for key, detector in (("before", current), ("after", candidate)):
                t0 = time.perf_counter()
                found = detector.detect([image])[0]
                best[key][i] = min(best[key][i], (time.perf_counter() - t0) * 1000.0)
                dets[key].append(len(found))
    return SmokeMetrics(
        frames=len(frames),
        latency_ms_before=float(statistics.median(best["before"])),
        latency_ms_after=float(statistics.median(best["after"])),
        detections_per_frame_before=statistics.fmean(dets["before"]),
        detections_per_frame_after=statistics.fmean(dets["after"]),
    )
