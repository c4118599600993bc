"""``retail-export yolo train|eval``: argument parsing only; the work is in the library.

Ultralytics writes its own console output (progress bars, tables) to stdout; while a command
here runs it goes to stderr, so stdout carries only the command's JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from model_export.training.detector import DEFAULT_MODEL, TrainSettings
from model_export.training.errors import TrainingError


def add_subcommands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``train`` and ``eval`` to the ``yolo`` group (``model_export.yolo.cli``)."""
    d = TrainSettings()
    train = sub.add_parser(
        "train",
        help="fine-tune a YOLO detector on a dataset, then score it on val (mAP)",
        description="Train with ultralytics on a dataset written by `retail-export dataset "
        "export`, from an architecture (yolov8n.yaml: random weights, as no pretrained "
        "weights can be downloaded here) or a .pt file on disk. Writes OUT/weights/best.pt "
        "and last.pt, results.csv, and OUT/report.json: mAP50, mAP50-95, precision and "
        "recall of best.pt on the val split; prints the report as JSON.",
    )
    train.add_argument("--data", type=Path, required=True, help="dataset folder or data.yaml")
    train.add_argument("--out", type=Path, required=True, help="run folder to write")
    train.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"architecture or .pt file ({DEFAULT_MODEL})"
    )
    train.add_argument("--epochs", type=int, default=d.epochs, help=f"epochs ({d.epochs})")
    train.add_argument(
        "--imgsz", type=int, default=d.imgsz, help=f"image size in pixels ({d.imgsz})"
    )
    train.add_argument("--batch", type=int, default=d.batch, help=f"batch size ({d.batch})")
    train.add_argument("--device", default=d.device, help=f"cpu, 0, 0,1 ... ({d.device})")
    train.add_argument("--seed", type=int, default=d.seed, help=f"random seed ({d.seed})")
    train.add_argument(
        "--workers", type=int, default=d.workers, help=f"data-loading processes ({d.workers})"
    )
    train.set_defaults(func=_train)

    ev = sub.add_parser(
        "eval",
        help="score weights on a dataset split (mAP50, mAP50-95); prints JSON",
        description="Run ultralytics val for WEIGHTS on a split of a dataset and print the "
        "report (mAP50, mAP50-95, precision, recall, per class) as JSON on stdout and a "
        "table on stderr.",
    )
    ev.add_argument("--data", type=Path, required=True, help="dataset folder or data.yaml")
    ev.add_argument("--weights", type=Path, required=True, help="weights (.pt) to score")
    ev.add_argument("--split", default="val", help="split to score (val)")
    ev.add_argument("--imgsz", type=int, default=d.imgsz, help=f"image size ({d.imgsz})")
    ev.add_argument("--batch", type=int, default=d.batch, help=f"batch size ({d.batch})")
    ev.add_argument("--device", default=d.device, help=f"cpu, 0, ... ({d.device})")
    ev.add_argument("--report", type=Path, help="also write the report JSON here")
    ev.set_defaults(func=_eval)


@contextlib.contextmanager
def _console_to_stderr() -> Iterator[None]:
    from model_export.training.detector import import_ultralytics

    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        # A first import prints its settings notice and binds its log handler to the
        # (redirected) stdout; an earlier import's handler is moved for the duration.
        import_ultralytics()
        moved = [
            h
            for h in logging.getLogger("ultralytics").handlers
            if isinstance(h, logging.StreamHandler) and h.stream is stdout
        ]
        for h in moved:
            h.setStream(sys.stderr)
        try:
            yield
        finally:
            for h in moved:
                h.setStream(stdout)


def _train(args: argparse.Namespace) -> int:
    from model_export.training.detector import train_detector

    settings = TrainSettings(
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        device=args.device,
        seed=args.seed,
        workers=args.workers,
    )
    with _console_to_stderr():
        result = train_detector(args.data, args.out, model=args.model, settings=settings)
    print(result.report.table(), file=sys.stderr)
    print(json.dumps({"run": str(result.run_dir), **result.report.model_dump(mode="json")}))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from model_export.training.detector import evaluate_detector

    with _console_to_stderr():
        report = evaluate_detector(
            args.weights,
            args.data,
            args.split,
            imgsz=args.imgsz,
            batch=args.batch,
            device=args.device,
        )
    text = report.model_dump_json()
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(report.model_dump_json(indent=2) + "\n")
    print(report.table(), file=sys.stderr)
    print(text)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the parsed ``yolo train|eval`` subcommand; domain errors print one line and return 2."""
    try:
        code: int = args.func(args)
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code
