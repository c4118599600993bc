"""``retail-export``: offline model tooling.

Command groups: ``classifier`` (product recognition: train, eval, add-product), ``dataset``
(training data: frames, export) and ``yolo`` (detector: export with FP16/INT8 variants,
train, eval); ``quantize`` (FP16/INT8 variants of a bundle); signed model bundles: ``keys
generate``, ``sign``, ``verify``, ``import``, ``pack``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from model_export.bundle import cli as bundle_cli
from model_export.classifier import cli as classifier_cli
from model_export.dataset import cli as dataset_cli
from model_export.quantize import cli as quantize_cli
from model_export.yolo import cli as yolo_cli


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command group."""
    parser = argparse.ArgumentParser(prog="retail-export", description="Retail CV model tooling.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    groups = parser.add_subparsers(dest="group", required=True)
    classifier_cli.add_parser(groups)
    bundle_cli.add_parsers(groups)
    yolo_cli.add_parser(groups)  # yolo export, and train/eval from training_cli
    quantize_cli.add_parser(groups)
    dataset_cli.add_parser(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the command, return its exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.group == "classifier":
        return classifier_cli.run(args)
    if args.group in (*bundle_cli.COMMANDS, "quantize"):
        return bundle_cli.run(args)
    if args.group == "dataset":
        return dataset_cli.run(args)
    if args.group == "yolo":
        return yolo_cli.run(args)
    raise AssertionError(f"unhandled command group {args.group!r}")


if __name__ == "__main__":
    sys.exit(main())
