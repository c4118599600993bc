"""``retail-export yolo export|train|eval``: the YOLO detector command group.

``export`` (here): ultralytics ONNX export, then FP32/FP16/INT8 bundles and the report.
``train`` and ``eval`` come from ``model_export.training.cli``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from model_export.bundle import cli as bundle_cli
from model_export.bundle.importer import read_classes
from model_export.quantize.cli import add_variant_options, run_variants
from model_export.training import cli as training_cli
from model_export.yolo.export import export_yolo, import_ultralytics


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``yolo`` group: ``export`` here, ``train`` and ``eval`` from training."""
    group = subparsers.add_parser(
        "yolo",
        help="YOLO detector: export (ONNX, FP16/INT8 variants, evaluated), train, eval",
        description="Detector export, training and evaluation through ultralytics (export extra).",
    )
    sub = group.add_subparsers(dest="yolo_command", required=True)
    y = sub.add_parser(
        "export",
        help="export to ONNX with FP16/INT8 variants, each evaluated; signed bundles + report",
        description="ultralytics ONNX export (simplified) of --weights or --arch, then "
        "OUT/fp32, OUT/fp16, OUT/int8 bundles and OUT/report.json + report.md: latency on "
        "this machine and person AP50 against the FP32 model and against labels.",
    )
    source = y.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", type=Path, help="ultralytics .pt weights file")
    source.add_argument(
        "--arch", help="ultralytics architecture (e.g. yolov8n.yaml): random weights, seeded"
    )
    y.add_argument("--imgsz", type=int, default=640, help="square input size (default 640)")
    y.add_argument("--classes", type=Path, help="class names file, one per line")
    y.add_argument("--name", help="model name (default: the source's file stem)")
    y.add_argument("--seed", type=int, default=0, help="torch seed for --arch weights")
    add_variant_options(y)
    y.set_defaults(func=_yolo)
    training_cli.add_subcommands(sub)


def run(args: argparse.Namespace) -> int:
    """Run the parsed ``yolo`` subcommand."""
    if args.yolo_command == "export":
        return bundle_cli.run(args)
    return training_cli.run(args)


@contextlib.contextmanager
def _console_to_stderr() -> Iterator[None]:
    """Send ultralytics' console output to stderr, so stdout carries only the report."""
    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        # A first import (a fresh machine) prints its settings notice and binds its log handler
        # to the (redirected) stdout; an earlier import's handler is moved for the duration.
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


def _yolo(args: argparse.Namespace) -> int:
    classes = read_classes(args.classes) if args.classes else None
    with tempfile.TemporaryDirectory(prefix="retail-export-yolo-") as tmp:
        with _console_to_stderr():
            model, manifest = export_yolo(
                args.weights or args.arch,
                args.imgsz,
                Path(tmp),
                classes=classes,
                name=args.name,
                seed=args.seed,
            )
        run_variants(args, model, manifest)
    return 0
