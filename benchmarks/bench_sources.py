"""Benchmark: decoding a video file with FileSource vs a plain OpenCV loop.

Rows: the plain `cv2.VideoCapture.read()` loop (the peer), `FileSource` yielding every frame,
sampling to 3 fps by reading every frame and discarding (naive peer), and `FileSource` at 3 fps
(unselected frames only grabbed). Speed is source media seconds decoded per wall second.

Usage: python benchmarks/bench_sources.py [--video PATH] [--repeat N] [--append BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import cv2

from edge_agent.sources import FileSource

DEFAULT_VIDEO = "videos/one-by-one-person-detection.mp4"


def _assets() -> Path:
    env = os.environ.get("RETAIL_CV_ASSETS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "assets"


def plain_read(path: Path) -> int:
    """Peer: decode and convert every frame with cv2; returns frames delivered."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    count = 0
    while True:
        ok, _ = capture.read()
        if not ok:
            break
        count += 1
    capture.release()
    return count


def naive_sampled(path: Path, fps: float = 3.0) -> int:
    """Peer: read every frame, keep the first at or after each 1/fps tick of media time."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    kept, next_t = 0, 0.0
    while True:
        ok, _ = capture.read()
        if not ok:
            break
        t = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if t >= next_t:
            kept += 1
            next_t += 1.0 / fps
    capture.release()
    return kept


def file_source(path: Path, fps: float | None) -> int:
    """FileSource, every frame (fps None) or sampled; returns frames yielded."""
    with FileSource(path, target_fps=fps) as source:
        return sum(1 for _ in source)


def best_of(run: Callable[[], int], repeat: int) -> tuple[float, int]:
    """Fastest wall time (seconds) over `repeat` runs, and the frames the run returned."""
    best, frames = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        frames = run()
        best = min(best, time.perf_counter() - start)
    return best, frames


def main() -> None:
    """Run the benchmark, print a markdown table, optionally append it to a file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=_assets() / DEFAULT_VIDEO)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--append", type=Path, help="markdown file to append the table to")
    args = parser.parse_args()

    with FileSource(args.video) as probe:
        duration = probe.duration_s or 0.0
    rows: list[tuple[str, Callable[[], int]]] = [
        ("cv2 read() every frame (peer)", lambda: plain_read(args.video)),
        ("FileSource every frame", lambda: file_source(args.video, None)),
        ("cv2 read() + keep 3 fps (peer)", lambda: naive_sampled(args.video)),
        ("FileSource 3 fps (grab-skip)", lambda: file_source(args.video, 3.0)),
    ]
    results = [(name, *best_of(run, args.repeat)) for name, run in rows]
    peer_every, peer_sampled = results[0][1], results[2][1]
    lines = [
        f"### bench_sources — {datetime.date.today()} — {platform.machine()}, "
        f"{os.cpu_count()} CPUs, OpenCV {cv2.__version__}",
        "",
        f"`{args.video.name}` ({duration:.1f} s of media), best of {args.repeat}",
        "",
        "| reader | frames out | wall s | media s per wall s | vs its peer |",
        "|---|---:|---:|---:|---:|",
    ]
    for i, (name, wall, frames) in enumerate(results):
        peer = peer_every if i < 2 else peer_sampled
        lines.append(
            f"| {name} | {frames} | {wall:.2f} | {duration / wall:.0f} | {peer / wall:.2f}× |"
        )
    table = "\n".join(lines)
    print(table)
    if args.append is not None:
        with args.append.open("a", encoding="utf-8") as out:
            out.write(table + "\n\n")


if __name__ == "__main__":
    main()
