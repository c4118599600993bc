"""Cost of the privacy gate per exported image, next to the person detector in the same run.

For every frame of the face footage (three 480x270 GIFs, 121 frames) and for 1080p frames
(MOT17-mini), times ``PrivacyGate.release`` (YuNet face detection at one or two scales, head
regions of the detector's person boxes, pixelation, downscale to 640, JPEG encode under
150 KB) and, as the peer, the YOLOX-nano person detector on the same frame. Reports wall and
CPU milliseconds (CPU time counts every thread of the process, which is what the box pays),
the face detection part of the gate, and the gate's share of the edge CPU budget of one
camera analysed at ``--camera-fps``: at one alert snapshot per camera per minute, and at the
audit rate (a gated sample of every analysed frame). Prints a table and appends it to
BENCHMARKS.md at the repo root unless ``--no-append``.

    python benchmarks/bench_privacy.py [--repeat 3] [--camera-fps 3] [--no-append]
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
import numpy.typing as npt

from edge_agent.detect.detector import Detector, DetectorSettings
from edge_agent.privacy import ImagePurpose, PrivacyGate, PrivacySettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import append_section, assets_dir

FACE_VIDEOS = (
    "face-demographics-walking.gif",
    "face-demographics-walking-and-pause.gif",
    "classroom.gif",
)


def read_frames(video: Path) -> list[npt.NDArray[np.uint8]]:
    """Every frame of a video file, BGR."""
    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(np.asarray(frame, np.uint8))
    cap.release()
    return frames


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of ``repeat`` calls of ``fn``."""
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append((time.perf_counter() - w0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def measure(
    frames: list[npt.NDArray[np.uint8]], gate: PrivacyGate, detector: Detector, repeat: int
) -> dict[str, float]:
    """Per-frame medians over ``frames``: gate, its face detection, detector (ms), bytes."""
    rows: dict[str, list[float]] = {k: [] for k in ("gw", "gc", "fw", "fc", "dw", "dc", "kb")}
    for img in frames:
        people = detector.detect([img])[0].xyxy

        def detect(img: npt.NDArray[np.uint8] = img) -> object:
            return detector.detect([img])

        def faces(img: npt.NDArray[np.uint8] = img) -> object:
            return gate.faces.detect(img)

        def release(
            img: npt.NDArray[np.uint8] = img, people: npt.NDArray[np.float32] = people
        ) -> object:
            return gate.release(img, people, ImagePurpose.SAMPLE)

        dw, dc = timed(detect, repeat)
        fw, fc = timed(faces, repeat)
        gw, gc = timed(release, repeat)
        size = len(gate.release(img, people, ImagePurpose.SAMPLE).data)
        for key, value in zip(rows, (gw, gc, fw, fc, dw, dc, size / 1000), strict=True):
            rows[key].append(value)
    return {k: statistics.median(v) for k, v in rows.items()}


def main() -> None:
    a = assets_dir()
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeat", type=int, default=3, help="timed calls per frame (median kept)")
    p.add_argument("--camera-fps", type=float, default=3.0, help="analysed frames/s per camera")
    p.add_argument("--no-append", action="store_true", help="print only, no BENCHMARKS.md")
    args = p.parse_args()

    gate = PrivacyGate.open(PrivacySettings(face_model=a / "models/face/yunet_n_dynamic.onnx"))
    detector = Detector.open(
        a / "models/person/yolox_nano.onnx", settings=DetectorSettings(confidence=0.2)
    )
    footage = [f for name in FACE_VIDEOS for f in read_frames(a / "videos" / name)]
    hd_files = sorted((a / "mot/MOT17-mini/train").glob("*/img1/*.jpg"))
    hd = [np.asarray(cv2.imread(str(p)), np.uint8) for p in hd_files]
    sets: list[tuple[str, list[npt.NDArray[np.uint8]]]] = [
        (f"face footage 480x270 ({len(footage)} frames, faces at 1x and 2x)", footage),
        (f"MOT17 1920x1080 ({len(hd)} frames, faces at 1x)", hd),
    ]
    results = [(name, measure(frames, gate, detector, args.repeat)) for name, frames in sets]

    lines = [
        "| frames | gate ms (wall / CPU) | of which faces ms (wall / CPU) | detector ms "
        "(wall / CPU) | gate / detector (CPU) | JPEG KB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results:
        lines.append(
            f"| {name} | {r['gw']:.1f} / {r['gc']:.1f} | {r['fw']:.1f} / {r['fc']:.1f} | "
            f"{r['dw']:.1f} / {r['dc']:.1f} | {r['gc'] / r['dc']:.1f}x | {r['kb']:.0f} |"
        )
    lines.append("")
    per_min = args.camera_fps * 60
    for name, r in results:
        snap = r["gc"] / (per_min * r["dc"] + r["gc"])
        audit = r["gc"] / (r["dc"] + r["gc"])
        lines.append(
            f"- {name.split(' (')[0]}: one snapshot per camera per minute costs "
            f"{r['gc'] / 60_000:.3%} of a core and {snap:.2%} of the camera's CPU (detector at "
            f"{args.camera_fps:g} fps + gate); at the audit rate (every analysed frame) the gate "
            f"is {audit:.0%} of it"
        )
    lines.append(
        f"- medians per frame of {args.repeat} timed calls each; CPU = process time of all "
        f"threads (OpenCV uses {cv2.getNumThreads()}); detector: YOLOX-nano 416, ONNX Runtime, "
        "latency mode"
    )
    body = "\n".join(lines)
    if args.no_append:
        print(body)
    else:
        append_section("Privacy gate cost per exported image", body)


if __name__ == "__main__":
    main()
