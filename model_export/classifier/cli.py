"""``retail-export classifier ...``: argument parsing only; the work is in the library."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from model_export.classifier.errors import ClassifierError
from model_export.classifier.settings import ClassifierSettings
from model_export.classifier.train import DEFAULT_CROP


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``classifier`` command group and its subcommands."""
    group = subparsers.add_parser(
        "classifier", help="product classifier: train, eval, add products"
    )
    sub = group.add_subparsers(dest="classifier_command", required=True)

    train = sub.add_parser(
        "train", help="fit the head on train.txt (chosen on val.txt), write a bundle"
    )
    train.add_argument(
        "--dataset", type=Path, required=True, help="folder with classes.csv, train.txt, val.txt"
    )
    train.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    train.add_argument(
        "--extractor",
        type=Path,
        help="frozen extractor ONNX (default: $RETAIL_EXPORT_EXTRACTOR, else shared assets)",
    )
    train.add_argument(
        "--cache-dir", type=Path, help="embedding cache (default: $RETAIL_EXPORT_CACHE_DIR)"
    )
    train.add_argument(
        "--crop",
        type=float,
        default=DEFAULT_CROP,
        help=f"centre-crop fraction (default {DEFAULT_CROP})",
    )
    train.set_defaults(func=_train)

    ev = sub.add_parser("eval", help="score a bundle on a split with ONNX Runtime; prints JSON")
    ev.add_argument(
        "--dataset", type=Path, required=True, help="folder with classes.csv and the split file"
    )
    ev.add_argument("--bundle", type=Path, required=True, help="bundle folder written by train")
    ev.add_argument("--split", default="test", help="split file to score (default: test)")
    ev.set_defaults(func=_eval)

    add = sub.add_parser("add-product", help="add a class to a bundle from a few photos (CPU)")
    add.add_argument("--bundle", type=Path, required=True, help="bundle folder to extend")
    add.add_argument("--name", required=True, help="the new product's class name")
    add.add_argument("--out", type=Path, help="bundle folder to write (default: in place)")
    add.add_argument("photos", type=Path, nargs="+", help="photos of the product")
    add.set_defaults(func=_add_product)


def _train(args: argparse.Namespace) -> int:
    from model_export.classifier.embed import EmbeddingCache
    from model_export.classifier.train import train_classifier

    settings = ClassifierSettings()
    cache_dir = args.cache_dir or settings.cache_dir
    result = train_classifier(
        args.dataset,
        args.extractor or settings.extractor_path(),
        args.out,
        created_at=datetime.now(UTC),
        cache=EmbeddingCache(cache_dir) if cache_dir else None,
        crop=args.crop,
    )
    m = result.manifest
    summary = {
        "bundle": str(result.bundle),
        "classes": len(m.classes),
        "train_images": m.training.train_images,
        "l2": m.training.l2,
        "metrics": m.metrics,
        "val_top1_by_l2": {f"{k:g}": v for k, v in result.val_top1_by_l2.items()},
    }
    print(json.dumps(summary))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from model_export.classifier.evaluate import evaluate_bundle

    report = evaluate_bundle(args.dataset, args.bundle, args.split)
    print(json.dumps(report.to_json()))
    print(report.table(), file=sys.stderr)
    return 0


def _add_product(args: argparse.Namespace) -> int:
    from model_export.classifier.products import add_product

    out = args.out or args.bundle
    manifest = add_product(args.bundle, args.name, list(args.photos), out)
    print(json.dumps({"bundle": str(out), "classes": len(manifest.classes), "added": args.name}))
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the parsed ``classifier`` subcommand; domain errors print one line and return 2."""
    try:
        code: int = args.func(args)
    except ClassifierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code
