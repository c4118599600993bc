"""``retail-export quantize``: FP16/INT8 variants of a bundle's ONNX model, evaluated.

Argument parsing only; the options for frames and scoring are shared with ``retail-export
yolo`` (``add_variant_options``, ``run_variants``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common.bundle import inspect_bundle, verify_bundle
from common.manifest import ModelManifest
from common.signing import TrustedKeys, load_private_key
from model_export.quantize.frames import (
    DEFAULT_MOT,
    DEFAULT_VIDEOS,
    mot_frames,
    resolve_assets,
    sample_videos,
)
from model_export.quantize.pipeline import VariantSettings, make_variants
from model_export.quantize.report import REPORT_JSON, REPORT_MD, ExportReport, Precision
from model_export.quantize.settings import VariantEnvironment
from model_export.quantize.tracking import log_export_run


def add_variant_options(parser: argparse.ArgumentParser) -> None:
    """Options for calibration frames, evaluation frames, scoring and signing."""
    parser.add_argument("--out", type=Path, required=True, help="folder for bundles and report")
    parser.add_argument("--key", type=Path, help="private key: sign every variant bundle")
    parser.add_argument(
        "--precisions",
        default="fp32,fp16,int8",
        help="variants to write, comma-separated (default: fp32,fp16,int8)",
    )
    parser.add_argument(
        "--videos",
        nargs="+",
        default=list(DEFAULT_VIDEOS),
        help="videos to sample calibration and evaluation frames from (relative: in assets)",
    )
    parser.add_argument(
        "--mot",
        nargs="*",
        default=list(DEFAULT_MOT),
        help="labelled MOTChallenge sequences to evaluate on (relative: in assets)",
    )
    parser.add_argument("--calib-frames", type=int, default=32, help="INT8 calibration frames")
    parser.add_argument(
        "--eval-frames", type=int, default=24, help="unlabelled evaluation frames from --videos"
    )
    parser.add_argument(
        "--reference-conf",
        type=float,
        default=0.25,
        help="FP32 person boxes at or above this score are the agreement truth",
    )
    parser.add_argument(
        "--latency-runs", type=int, default=50, help="timed calls per variant (default 50)"
    )


def run_variants(args: argparse.Namespace, model: Path, manifest: ModelManifest) -> ExportReport:
    """Sample the frames the options name, make and score the variants, print the table."""
    assets = VariantEnvironment().assets
    videos = resolve_assets(args.videos, assets)
    calibration = sample_videos(videos, args.calib_frames, "calibration")
    evaluation = sample_videos(videos, args.eval_frames, "evaluation")
    for seq in resolve_assets(args.mot or [], assets):
        evaluation.extend(mot_frames(seq))
    precisions = tuple(Precision(p.strip()) for p in args.precisions.split(",") if p.strip())
    report = make_variants(
        model,
        manifest,
        args.out,
        calibration,
        evaluation,
        key=load_private_key(args.key) if args.key else None,
        settings=VariantSettings(
            precisions=precisions,
            reference_conf=args.reference_conf,
            latency_runs=args.latency_runs,
        ),
    )
    log_export_run(
        report,
        [args.out / REPORT_JSON, args.out / REPORT_MD],
        run_name=f"{manifest.name}-{manifest.input.width}",
    )
    print(report.markdown())
    print(json.dumps({"report": str(args.out / REPORT_JSON)}))
    return report


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``quantize``."""
    q = subparsers.add_parser(
        "quantize", help="FP16/INT8 variants of a bundle's ONNX model, each evaluated"
    )
    q.add_argument("bundle", type=Path, help="bundle folder (retail-export import writes one)")
    q.add_argument(
        "--trusted-keys",
        type=Path,
        help="verify the bundle's signature first (default: check file hashes only)",
    )
    add_variant_options(q)
    q.set_defaults(func=_quantize)


def _quantize(args: argparse.Namespace) -> int:
    if args.trusted_keys is not None:
        verified = verify_bundle(args.bundle, TrustedKeys.from_dir(args.trusted_keys))
        manifest = verified.manifest
    else:
        manifest = inspect_bundle(args.bundle)
    assert manifest.model_file is not None  # inspect/verify guarantee it
    run_variants(args, args.bundle / manifest.model_file, manifest)
    return 0
