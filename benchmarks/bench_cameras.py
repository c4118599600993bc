"""How many cameras at 3 fps one box sustains with no dropped frames, and memory with 4.

Each camera replays a real store video in real time (paced by media time, looping) through its
own reader thread; the agent runs the YOLOX-nano detector on every new frame. A camera count is
"sustained" when, after a warm-up, no camera drops a sampled frame and every camera is
analysed at >= 95% of its target fps. Each count runs in a fresh process so that its peak RSS
is its own. The peer in the same run is the bare model: its inferences/s divided by the target
fps is the ceiling no pipeline can beat on this machine.

Usage: python benchmarks/bench_cameras.py [--counts 4 8 12 16] [--seconds 40]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, append_section, assets_dir

FPS = 3.0


def child(n: int, seconds: float, warmup: float, model: Path, video: Path) -> None:
    """Run n cameras; print one JSON line with the per-camera results and peak RSS."""
    from edge_agent.agent import EdgeAgent
    from edge_agent.config import parse_config
    from edge_agent.process import open_detector

    cfg = parse_config(
        {
            "store_id": "bench",
            "device_id": "bench",
            "model": {"path": str(model)},
            "cameras": [{"id": f"cam{i}", "source": str(video), "fps": FPS} for i in range(n)],
        },
        REPO,
    )
    agent = EdgeAgent(cfg, open_detector(cfg, throughput=True, max_batch=n))
    with agent:
        agent.run(duration_s=warmup)
        before = {h.camera_id: h for h in agent.health()}
        start = time.monotonic()
        agent.run(duration_s=seconds)
        elapsed = time.monotonic() - start
        after = {h.camera_id: h for h in agent.health()}
    dropped = [after[c].dropped_frames - before[c].dropped_frames for c in after]
    fps = [(after[c].frames_processed - before[c].frames_processed) / elapsed for c in after]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "n": n,
                "dropped": dropped,
                "fps": fps,
                "rss_mb": rss_mb,
                "inference_s": agent.stats().inference_s,
            }
        )
    )


def bare_inferences_per_s(model: Path, seconds: float = 10.0) -> float:
    """The detector alone (same runtime settings as the agent), frames/s."""
    import cv2

    from edge_agent.detect.detector import Detector

    det = Detector.open(model)
    cap = cv2.VideoCapture(str(assets_dir() / "videos/one-by-one-person-detection.mp4"))
    ok, frame = cap.read()
    assert ok
    det.detect([frame])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        det.detect([frame])
        done += 1
    return done / (time.perf_counter() - start)


def main() -> None:
    a = assets_dir()
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--counts", type=int, nargs="+", default=[4, 8, 12, 16])
    p.add_argument("--seconds", type=float, default=40.0)
    p.add_argument("--warmup", type=float, default=8.0)
    p.add_argument("--model", type=Path, default=a / "models/person/yolox_nano.onnx")
    p.add_argument("--video", type=Path, default=a / "videos/one-by-one-person-detection.mp4")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()
    if args.child:
        child(args.child, args.seconds, args.warmup, args.model, args.video)
        return

    bare = bare_inferences_per_s(args.model)
    rows, sustained = [], 0
    for n in args.counts:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(n),
                "--seconds",
                str(args.seconds),
                "--warmup",
                str(args.warmup),
                "--model",
                str(args.model),
                "--video",
                str(args.video),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        ok = sum(r["dropped"]) == 0 and min(r["fps"]) >= 0.95 * FPS
        sustained = max(sustained, n) if ok else sustained
        rows.append(
            f"| {n} | {sum(r['dropped'])} | {min(r['fps']):.2f} | {np.mean(r['fps']):.2f} | "
            f"{r['rss_mb']:.0f} | {'yes' if ok else 'no'} |"
        )
        print(rows[-1], flush=True)
    ceiling = bare / FPS
    body = "\n".join(
        [
            f"Model `{args.model.name}` (ONNX Runtime, CPU), each camera replaying "
            f"`{args.video.name}` in real time, sampled at {FPS:g} fps; "
            f"{args.seconds:g} s measured after {args.warmup:g} s warm-up.",
            "",
            "| cameras | dropped frames | min fps per camera | mean fps | peak RSS MB "
            "| sustained |",
            "|---:|---:|---:|---:|---:|---|",
            *rows,
            "",
            f"- most cameras sustained: **{sustained}**",
            f"- bare detector: {bare:.1f} frames/s, a ceiling of {ceiling:.1f} cameras at "
            f"{FPS:g} fps; sustained / ceiling = **{sustained / ceiling:.2f}**",
        ]
    )
    if args.no_write:
        print(body)
    else:
        append_section("Cameras per box at 3 fps (YOLOX-nano)", body)


if __name__ == "__main__":
    main()
