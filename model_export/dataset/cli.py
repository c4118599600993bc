"""``retail-export dataset ...``: argument parsing only; the work is in the library."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from model_export.dataset.errors import DatasetError
from model_export.dataset.frames import DEFAULT_FPS
from model_export.dataset.sampling import DEFAULT_MIN_CHANGE, DEFAULT_PIXEL_DELTA
from model_export.dataset.split import DEFAULT_VAL_FRACTION

_STEPS = """\
steps (each writes what the next reads):
  1. retail-export dataset frames VIDEO... --out FRAMES
       sample each video at --fps (3), drop near-duplicate frames, write
       FRAMES/<video>/*.jpg and FRAMES/frames.jsonl (source video and time of each frame)
  2. retail-edge detect --model yolox_nano.onnx --images FRAMES --out FRAMES/labels.jsonl
       pre-label with the edge's detector (boxes in pixels, classes, scores; review them)
  3. retail-export dataset export --images FRAMES --labels FRAMES/labels.jsonl --out DATA
       YOLO dataset: DATA/images, DATA/labels (class cx cy w h, normalised), DATA/data.yaml,
       DATA/dataset.json; an 80/20 train/val split that never puts frames of one video (or
       photos of one folder) on both sides
  4. retail-export yolo train --data DATA --out RUN
       fine-tune with ultralytics, report mAP50 / mAP50-95 on val (retail-export yolo eval
       scores any weights; retail-export yolo export --weights RUN/weights/best.pt exports)
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``dataset`` command group and its subcommands."""
    group = subparsers.add_parser(
        "dataset",
        help="training data: extract frames from videos, export a YOLO dataset",
        description="Build a detector training dataset from store footage.",
        epilog=_STEPS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = group.add_subparsers(dest="dataset_command", required=True)

    fr = sub.add_parser(
        "frames",
        help="extract frames from videos at a chosen fps, without near-duplicates",
        description="Sample each video at --fps by media time and write the frames as JPEG "
        "under OUT/<video name>/, with OUT/frames.jsonl recording each frame's source video "
        "and time. A frame is dropped as a near-duplicate when fewer than --min-change of "
        "the pixels of its 64x36 grayscale thumbnail differ by more than --pixel-delta grey "
        "levels from the last kept frame's. Re-extracting a video replaces its frames.",
    )
    fr.add_argument("videos", type=Path, nargs="+", help="video files (mp4, avi, gif, ...)")
    fr.add_argument("--out", type=Path, required=True, help="frames folder to write into")
    fr.add_argument(
        "--fps", type=float, default=DEFAULT_FPS, help=f"frames per second ({DEFAULT_FPS:g})"
    )
    fr.add_argument(
        "--min-change",
        type=float,
        default=DEFAULT_MIN_CHANGE,
        help=f"near-duplicate threshold: fraction of thumbnail pixels that must change "
        f"({DEFAULT_MIN_CHANGE:g}; 0 keeps every sampled frame)",
    )
    fr.add_argument(
        "--pixel-delta",
        type=int,
        default=DEFAULT_PIXEL_DELTA,
        help=f"grey levels a thumbnail pixel must change by to count ({DEFAULT_PIXEL_DELTA})",
    )
    fr.add_argument("--end", type=float, metavar="S", help="stop at this media time (seconds)")
    fr.add_argument("--no-progress", action="store_true", help="no progress bar")
    fr.set_defaults(func=_frames)

    ex = sub.add_parser(
        "export",
        help="write a YOLO-format dataset with a train/val split by video/scene",
        description="Copy the labelled images into OUT/images/{train,val}, write YOLO label "
        "files (class cx cy w h, normalised 0-1) into OUT/labels/{train,val}, OUT/data.yaml "
        "for ultralytics and OUT/dataset.json (which scene went where). Frames of one video "
        "(from frames.jsonl) or still photos of one folder are one scene; a scene is never "
        "split across train and val.",
    )
    ex.add_argument("--images", type=Path, required=True, help="folder the labels refer to")
    ex.add_argument(
        "--labels", type=Path, required=True, help="labels JSON lines (retail-edge detect)"
    )
    ex.add_argument("--out", type=Path, required=True, help="dataset folder (new or earlier)")
    ex.add_argument(
        "--class",
        dest="classes",
        action="append",
        metavar="NAME",
        help="dataset class, in order (repeatable; default: every class in the labels)",
    )
    ex.add_argument(
        "--val-fraction",
        type=float,
        default=DEFAULT_VAL_FRACTION,
        help=f"share of images aimed for in val ({DEFAULT_VAL_FRACTION:g})",
    )
    ex.add_argument("--seed", type=int, default=0, help="which scenes go to val (0)")
    ex.add_argument(
        "--min-score", type=float, default=0.0, help="drop pre-labels scoring below this (0)"
    )
    ex.set_defaults(func=_export)


def _frames(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model_export.dataset.frames import extract_videos

    bars: dict[Path, tqdm[None]] = {}

    def progress(video: Path, done: int, total: int | None) -> None:
        bar = bars.get(video)
        if bar is None:
            bar = bars[video] = tqdm(
                desc=video.name, unit="frame", disable=args.no_progress, file=sys.stderr
            )
        bar.total = total
        bar.update(done - bar.n)

    try:
        results = extract_videos(
            args.videos,
            args.out,
            fps=args.fps,
            min_change=args.min_change,
            pixel_delta=args.pixel_delta,
            end_s=args.end,
            progress=progress,
        )
    finally:
        for bar in bars.values():
            bar.close()
    summary = {
        "out": str(args.out),
        "videos": [
            {
                "video": str(r.video),
                "frames_read": r.frames_read,
                "sampled": r.sampled,
                "kept": len(r.records),
                "ended_early": r.ended_early,
            }
            for r in results
        ],
    }
    print(json.dumps(summary))
    return 0


def _export(args: argparse.Namespace) -> int:
    from model_export.dataset.export import export_yolo_dataset

    summary = export_yolo_dataset(
        args.images,
        args.labels,
        args.out,
        classes=args.classes,
        val_fraction=args.val_fraction,
        seed=args.seed,
        min_score=args.min_score,
    )
    out = {
        "dataset": str(args.out),
        "classes": summary.classes,
        "scenes": summary.scenes,
        "counts": {k: v.model_dump() for k, v in summary.counts.items()},
        "dropped_boxes": summary.dropped_boxes,
    }
    print(json.dumps(out))
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the parsed ``dataset`` subcommand; domain errors print one line and return 2."""
    try:
        code: int = args.func(args)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code
