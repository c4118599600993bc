"""Export report: FP32 vs FP16 vs INT8 latency and agreement, for two detectors.

1. ``yolov8n.yaml`` exported by ultralytics at ``--imgsz`` (random weights: nothing can be
   downloaded here, so its agreement numbers mean little; latency and size are real).
2. The real YOLOX-nano (416x416) from the shared assets, wrapped by ``retail-export import``.

For each, ``model_export.quantize.make_variants`` writes signed FP32/FP16/INT8 bundles and
their report: INT8 calibrated on ``--calib-frames`` frames of the Intel sample videos, and
every variant scored on ``--eval-frames`` other frames of the same videos plus the 12
labelled MOT17-mini frames (person AP50 against FP32's own boxes and against the labels).
Latency is then re-measured with the variants interleaved, ``--rounds`` rounds of
``--latency-runs`` single-frame ONNX Runtime CPU calls each, best round kept (the CPU may be
shared), and reported as a ratio to FP32 (the peer in the same run). Prints the table and
appends it to BENCHMARKS.md unless ``--no-append``.

    python benchmarks/bench_export.py [--imgsz 640] [--rounds 3] [--no-append]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from common.bundle import verify_bundle
from common.manifest import DecoderFamily
from common.signing import TrustedKeys, generate_key_pair, load_private_key
from model_export.bundle.importer import ImportOptions, import_model, read_classes
from model_export.quantize.evaluate import latency_ms, open_session, prepare
from model_export.quantize.frames import (
    DEFAULT_MOT,
    DEFAULT_VIDEOS,
    Frame,
    mot_frames,
    resolve_assets,
    sample_videos,
)
from model_export.quantize.pipeline import VariantSettings, make_variants
from model_export.quantize.report import ExportReport
from model_export.yolo.export import export_yolo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import append_section, assets_dir


def interleaved_latency(
    report: ExportReport, trusted: TrustedKeys, frame: Frame, runs: int, rounds: int
) -> dict[str, float]:
    """Best-of-rounds median latency (ms) per variant, the variants taking turns each round."""
    sessions, tensors = {}, {}
    for v in report.variants:
        verified = verify_bundle(Path(v.bundle), trusted)
        sessions[v.precision.value] = open_session(verified.model_path)
        tensors[v.precision.value] = prepare([frame], verified.manifest).tensors[0]
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, session in sessions.items():
            median, _ = latency_ms(session, tensors[name], runs)
            best[name] = min(best.get(name, median), median)
    return best


def rows(report: ExportReport, latency: dict[str, float]) -> list[str]:
    """Table rows for one model."""

    def num(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    out = []
    for v in report.variants:
        ms = latency[v.precision.value]
        out.append(
            f"| {report.model} {report.input} | {v.precision.value} | {v.size_bytes / 1e6:.2f} "
            f"| {ms:.2f} | {ms / latency['fp32']:.2f}x | {v.score_rel_error:.4f} "
            f"| {num(v.ap50_vs_fp32)} | {num(v.ap50_vs_labels)} | {v.persons} |"
        )
    return out


def main() -> None:
    """Run both exports, print the table, append it to BENCHMARKS.md."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--imgsz", type=int, default=640, help="yolov8n export size (default 640)")
    p.add_argument("--calib-frames", type=int, default=32)
    p.add_argument("--eval-frames", type=int, default=24)
    p.add_argument("--latency-runs", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, help="keep the bundles here (default: a temp folder)")
    p.add_argument("--no-append", action="store_true")
    args = p.parse_args()

    load_before = os.getloadavg()[0]
    assets = assets_dir()
    videos = resolve_assets(DEFAULT_VIDEOS, assets)
    calibration = sample_videos(videos, args.calib_frames, "calibration")
    evaluation = sample_videos(videos, args.eval_frames, "evaluation")
    for seq in resolve_assets(DEFAULT_MOT, assets):
        evaluation.extend(mot_frames(seq))
    settings = VariantSettings(latency_runs=args.latency_runs)
    table = [
        "| model | precision | size MB | latency ms | vs FP32 | score rel. error "
        "| AP50 vs FP32 | AP50 vs labels | persons |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        out = args.out or Path(tmp)
        private, _ = generate_key_pair(out / "keys")
        key, trusted = load_private_key(private), TrustedKeys.from_dir(out / "keys")

        model, manifest = export_yolo(
            "yolov8n.yaml",
            args.imgsz,
            out / "export",
            classes=read_classes(assets / "models/person/coco.names"),
        )
        yolo = make_variants(
            model, manifest, out / "yolov8n", calibration, evaluation, key, settings
        )
        imported = out / "yolox-import"
        fp32 = import_model(
            assets / "models/person/yolox_nano.onnx",
            imported,
            ImportOptions(family=DecoderFamily.YOLOX),
            key,
        )
        assert fp32.model_file is not None
        yolox = make_variants(
            imported / fp32.model_file, fp32, out / "yolox", calibration, evaluation, key, settings
        )
        for report in (yolo, yolox):
            latency = interleaved_latency(
                report, trusted, evaluation[0], args.latency_runs, args.rounds
            )
            table.extend(rows(report, latency))
            notes.append(f"- {report.model}: {report.markdown().splitlines()[0]}")
    body = (
        f"yolov8n.yaml (random weights) exported by ultralytics at {args.imgsz}, and the real "
        "YOLOX-nano; FP16 = float16 weights and activations (float32 I/O), INT8 = ONNX "
        "Runtime static QDQ (per-channel int8 weights, uint8 activations, min-max), the "
        "decoding tail kept in float. Latency: ONNX Runtime CPU, one frame per call, median of "
        f"{args.latency_runs} calls, best of {args.rounds} interleaved rounds. AP50 vs FP32: "
        "FP32's person boxes with score >= 0.25 as truth, on every eval frame; AP50 vs labels: "
        "the 12 MOT17-mini frames (considered pedestrians). Random yolov8n weights find no "
        "person: its AP columns are n/a / 0 and mean nothing.\n\n"
        + "\n".join(table)
        + "\n\n"
        + "\n".join(notes)
        + f"\n- 1-minute load average: {load_before:.2f} before, {os.getloadavg()[0]:.2f} after "
        f"({os.cpu_count()} cores; above that count the latencies are inflated by other work)\n"
    )
    if args.no_append:
        print(body)
    else:
        append_section("Model export: FP32 / FP16 / INT8 variants (model_export)", body)


if __name__ == "__main__":
    main()
