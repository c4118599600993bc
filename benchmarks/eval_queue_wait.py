"""Queue wait estimate against what people really spent, on real footage.

    python benchmarks/eval_queue_wait.py [--no-append]

The assets have no checkout queue, so this uses the one service-like process they show:
`one-by-one-person-detection.mp4`, where six people in turn walk to a display, stand there
9-25 s and leave (hand-annotated in tests/data/one_by_one). The display zone is configured as
a queue zone; the real pipeline (YOLOX-nano, ByteTrack, every frame at 10 fps) produces the
tracks; the analytics are replayed on them and, for every person after the first (the first has
no service rate yet), the estimate shown when they join is compared with their annotated time
at the display. Two estimators side by side: ours (L over the service rate while the queue is
busy) and plain Little's law (L over the throughput of the whole window, idle time included).
Six people are a small sample: the numbers show the size of the error, not a distribution.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, append_section, assets_dir

sys.path.insert(0, str(REPO))
from edge_agent.analytics import CameraAnalytics
from edge_agent.config import load_config
from edge_agent.process import process_video
from edge_agent.track.tracks import Tracks

GT = REPO / "tests/data/one_by_one"
FPS = 10.0
WINDOW_S = 300.0


def main() -> None:
    """Run, compare, print (and append to BENCHMARKS.md)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-append", action="store_true", help="print only")
    args = ap.parse_args()
    truth = json.loads((GT / "ground_truth.json").read_text())
    visits = truth["zones"]["display"]["visits"]
    config = load_config(GT / "store.yaml")
    camera = config.cameras[0]
    zone = camera.zones[0]
    queue_zone = zone.model_copy(update={"kind": "queue", "rate_window_s": WINDOW_S})
    camera = camera.model_copy(update={"zones": [queue_zone]})
    video = assets_dir() / "videos/one-by-one-person-detection.mp4"
    with tempfile.TemporaryDirectory() as tmp:
        mot = Path(tmp) / "tracks.txt"
        process_video(video, config, camera, all_frames=True, tracks_path=mot)
        rows = np.loadtxt(mot, delimiter=",", ndmin=2)
    w, h = 768, 432
    cam = CameraAnalytics(camera, store_id="s", camera_id=camera.id)
    estimates: dict[int, float | None] = {}
    lengths: dict[int, int] = {}
    departures: list[float] = []
    last_frame = int(rows[:, 0].max())
    for frame in range(1, last_frame + 1):
        r = rows[rows[:, 0] == frame]
        xyxy = np.column_stack([r[:, 2], r[:, 3], r[:, 2] + r[:, 4], r[:, 3] + r[:, 5]])
        tracks = Tracks(
            xyxy.astype(np.float32),
            r[:, 6].astype(np.float32),
            np.zeros(len(r), np.int32),
            r[:, 1].astype(np.int64),
            np.full(len(r), 100, np.int32),  # written tracks were confirmed
        )
        t = (frame - 1) / FPS
        out = cam.update(tracks, t, w, h)
        departures += [e.occurred_at - cam.unix(0.0) for e in out.events if e.kind == "visit"]
        estimates[frame] = cam.summary().queues[zone.id].wait_estimate_s
        lengths[frame] = int(cam.zones.occupancy[0])
    lines = [
        "| person | joins at s | annotated time at the display s | ours: L / busy service "
        "rate s | plain Little's law: L / throughput s |",
        "|---|---|---|---|---|",
    ]
    ours_err, little_err = [], []
    for v in visits[1:]:
        frame = next(f for f in range(int(v["enter_frame"]) + 1, last_frame + 1) if lengths[f] >= 1)
        t = (frame - 1) / FPS
        est = estimates[frame]
        served = [d for d in departures if t - WINDOW_S < d <= t]
        little = lengths[frame] / (len(served) / min(WINDOW_S, t)) if served else None
        if est is not None:
            ours_err.append(abs(est - v["dwell_s"]))
        if little is not None:
            little_err.append(abs(little - v["dwell_s"]))
        lines.append(
            f"| {v['person']} | {t:.1f} | {v['dwell_s']:.1f} | "
            f"{'-' if est is None else f'{est:.1f}'} | "
            f"{'-' if little is None else f'{little:.1f}'} |"
        )
    lines += [
        "",
        f"Mean absolute error: ours {np.mean(ours_err):.1f} s, plain Little's law "
        f"{np.mean(little_err):.1f} s (persons 2-6; window {WINDOW_S:.0f} s).",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_append:
        append_section("Queue wait estimate on footage (one-by-one, display as a queue)", body)


if __name__ == "__main__":
    main()
