"""Per-frame cost of the edge analytics (lines, zones, queues, heatmap, alerts, rollups).

Scene: 4 counting lines, 4 zones (3 dwell, 1 queue), one alert rule, N people random-walking
over a 1920x1080 frame at 10 fps, new identities appearing as others leave. Reports ms/frame
for the whole ``CameraAnalytics.update`` and for its line and zone parts, next to a peer run
in the same process: the same line-crossing and zone-membership geometry written the obvious
way, a Python loop over boxes (scalar maths, ``cv2.pointPolygonTest``), so the ratio shows
what vectorising buys. Prints a table and appends it to BENCHMARKS.md at the repo root.

    python benchmarks/bench_analytics.py [--frames 2000] [--tracks 5 20 50] [--no-append]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edge_agent.analytics import (
    AlertRule,
    CameraAnalytics,
    CameraAnalyticsConfig,
    LineConfig,
    LineCounter,
    ZoneConfig,
    ZoneTracker,
)
from edge_agent.analytics.geometry import normalised_feet
from edge_agent.track.tracks import Tracks

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import append_section

FRAME_W, FRAME_H, FPS = 1920, 1080, 10.0


def scene_config() -> CameraAnalyticsConfig:
    """4 lines across the frame, 4 zones side by side (the last a queue), one alert."""
    lines = [
        LineConfig(
            id=f"line{i}",
            points=((0.1, 0.2 + 0.2 * i), (0.9, 0.2 + 0.2 * i)),
            inside=(0.5, 0.1 + 0.2 * i),
        )
        for i in range(4)
    ]
    zones = [
        ZoneConfig(
            id=f"zone{i}",
            polygon=[
                (0.25 * i, 0.1),
                (0.25 * i + 0.2, 0.1),
                (0.25 * i + 0.2, 0.9),
                (0.25 * i, 0.9),
            ],
            kind="queue" if i == 3 else "dwell",
        )
        for i in range(4)
    ]
    alerts = [
        AlertRule(id="long-queue", metric="queue_length", target="zone3", op=">", threshold=5)
    ]
    return CameraAnalyticsConfig(lines=lines, zones=zones, alerts=alerts)


def make_frames(n_tracks: int, n_frames: int, seed: int = 0) -> list[Tracks]:
    """Random walkers; each frame one in 200 people leaves and a new id takes their place."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform([0, 0], [FRAME_W, FRAME_H], (n_tracks, 2))
    ids = np.arange(n_tracks, dtype=np.int64)
    hits = np.ones(n_tracks, np.int32)
    next_id = n_tracks
    frames = []
    for _ in range(n_frames):
        pos = (pos + rng.normal(0, 12, pos.shape)) % [FRAME_W, FRAME_H]
        hits += 1
        swap = rng.random(n_tracks) < 0.005
        n_swap = int(swap.sum())
        ids[swap] = np.arange(next_id, next_id + n_swap)
        hits[swap] = 1
        next_id += n_swap
        xyxy = np.column_stack([pos - np.array([30.0, 160.0]), pos + np.array([30.0, 0.0])]).astype(
            np.float32
        )
        frames.append(
            Tracks(
                xyxy,
                np.full(n_tracks, 0.8, np.float32),
                np.zeros(n_tracks, np.int32),
                ids.copy(),
                hits.copy(),
            )
        )
    return frames


class NaivePeer:
    """The same line and zone geometry as a per-box Python loop (the thing not to write)."""

    def __init__(self, cfg: CameraAnalyticsConfig) -> None:
        self.lines = [
            (np.array(ln.points), ln.hysteresis, np.sign(ln.inside_distance)) for ln in cfg.lines
        ]
        self.zones = [np.array(z.polygon, np.float32) for z in cfg.zones]
        self.side: dict[tuple[int, int], int] = {}
        self.inside: dict[tuple[int, int], bool] = {}
        self.counts = [[0, 0] for _ in cfg.lines]

    def update(self, tracks: Tracks) -> None:
        for box, tid in zip(tracks.xyxy, tracks.track_id, strict=True):
            x = float(box[0] + box[2]) / 2 / FRAME_W
            y = float(box[3]) / FRAME_H
            for li, ((a, b), h, sign) in enumerate(self.lines):
                dx, dy = b[0] - a[0], b[1] - a[1]
                d = sign * (dx * (y - a[1]) - dy * (x - a[0])) / (dx * dx + dy * dy) ** 0.5
                now = 1 if d >= h else -1 if d <= -h else 0
                prev = self.side.get((int(tid), li), 0)
                if now and prev and now != prev:
                    self.counts[li][0 if now > 0 else 1] += 1
                if now:
                    self.side[(int(tid), li)] = now
            for zi, poly in enumerate(self.zones):
                self.inside[(int(tid), zi)] = cv2.pointPolygonTest(poly, (x, y), False) > 0


def ms_per_frame(step: Callable[[int], None], n_frames: int) -> float:
    """Mean milliseconds per call of ``step(frame_index)`` over all frames."""
    t0 = time.perf_counter()
    for k in range(n_frames):
        step(k)
    return (time.perf_counter() - t0) / n_frames * 1000


def bench(n_tracks: int, n_frames: int, repeats: int) -> dict[str, float]:
    """Median ms/frame of the facade, its line and zone parts, and the naive peer."""
    cfg = scene_config()
    frames = make_frames(n_tracks, n_frames)
    feet = [normalised_feet(f, FRAME_W, FRAME_H) for f in frames]
    runs: dict[str, list[float]] = {"full": [], "lines": [], "zones": [], "peer": []}
    for _ in range(repeats):  # fresh state each run, so every run sees the same scene
        cam = CameraAnalytics(cfg, store_id="bench", camera_id="cam")
        lines = LineCounter(cfg.lines, cfg.min_hits)
        zones = ZoneTracker(cfg.zones, cfg.min_hits)
        peer = NaivePeer(cfg)

        def full(k: int, cam: CameraAnalytics = cam) -> None:
            cam.update(frames[k], k / FPS, FRAME_W, FRAME_H)

        def line_part(k: int, lc: LineCounter = lines) -> None:
            lc.update(frames[k].track_id, feet[k], frames[k].hits, k / FPS)

        def zone_part(k: int, zt: ZoneTracker = zones) -> None:
            zt.update(frames[k].track_id, feet[k], frames[k].hits, k / FPS, 1 / FPS)

        def peer_part(k: int, pe: NaivePeer = peer) -> None:
            pe.update(frames[k])

        for name, step in (
            ("full", full),
            ("lines", line_part),
            ("zones", zone_part),
            ("peer", peer_part),
        ):
            runs[name].append(ms_per_frame(step, n_frames))
    return {name: statistics.median(v) for name, v in runs.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--tracks", type=int, nargs="+", default=[5, 20, 50])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-append", action="store_true", help="print only, leave BENCHMARKS.md")
    args = ap.parse_args()

    header = (
        "| people | CameraAnalytics.update ms/frame | LineCounter ms | ZoneTracker ms "
        "| naive loop peer (lines+zones) ms | peer / (lines+zones) |"
    )
    rows = [header, "|---:|---:|---:|---:|---:|---:|"]
    for n in args.tracks:
        r = bench(n, args.frames, args.repeats)
        ratio = r["peer"] / (r["lines"] + r["zones"])
        rows.append(
            f"| {n} | {r['full']:.3f} | {r['lines']:.3f} | {r['zones']:.3f} | {r['peer']:.3f} "
            f"| {ratio:.1f}x |"
        )
    table = "\n".join(rows)
    print(table)
    if args.no_append:
        return 0
    body = (
        f"4 lines, 4 zones (3 dwell, 1 queue), 1 alert rule, heatmap and 60 s rollups; random "
        f"walkers on a {FRAME_W}x{FRAME_H} frame at {FPS:.0f} fps, {args.frames} frames, median "
        f"of {args.repeats} runs, numpy {np.__version__}. Peer, same run: the same line and zone "
        "geometry as a per-box Python loop (scalar maths, cv2.pointPolygonTest), without the "
        f"rollups, heatmap and alerts the full update also does.\n\n{table}\n"
    )
    append_section("Edge analytics (edge_agent/analytics): per-frame cost", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
