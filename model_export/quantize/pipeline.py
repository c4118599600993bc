"""FP32 model → FP32, FP16 and INT8 bundles, each evaluated, and the report.

``make_variants`` writes ``OUT/fp32``, ``OUT/fp16``, ``OUT/int8`` (bundles, signed when a key
is given, each manifest carrying its measured metrics) and ``OUT/report.json`` +
``OUT/report.md``. Every variant is run on the same preprocessed frames.
"""

from __future__ import annotations

import logging
import os
import platform
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.bundle import sign_bundle, write_bundle
from common.manifest import ModelManifest
from model_export.bundle.errors import ExportError
from model_export.quantize.evaluate import (
    average_precision,
    latency_ms,
    open_session,
    person_boxes,
    prepare,
    run_raw,
    score_error,
)
from model_export.quantize.frames import Frame
from model_export.quantize.report import ExportReport, Precision, VariantResult
from model_export.quantize.variants import to_fp16, to_int8

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VariantSettings:
    """How variants are made and scored.

    Attributes:
        precisions: which variants to write (FP32 is always the reference).
        reference_conf: FP32 person boxes scoring at least this are the agreement truth (0-1).
        latency_runs: timed single-frame calls per variant.
        class_name: the class scored for AP50.
    """

    precisions: tuple[Precision, ...] = (Precision.FP32, Precision.FP16, Precision.INT8)
    reference_conf: float = 0.25
    latency_runs: int = 50
    class_name: str = "person"


def machine() -> str:
    """One line describing this machine (CPU model, cores, OS)."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def make_variants(
    model: Path,
    manifest: ModelManifest,
    out: Path,
    calibration: Sequence[Frame],
    evaluation: Sequence[Frame],
    key: Ed25519PrivateKey | None = None,
    settings: VariantSettings | None = None,
) -> ExportReport:
    """Write the variant bundles and the report for the FP32 ONNX ``model`` into ``out``.

    Raises:
        ExportError: not an ONNX model, no evaluation frames, or a variant fails to load.
    """
    import onnxruntime as ort

    s = settings or VariantSettings()
    if model.suffix.lower() != ".onnx":
        raise ExportError(f"{model}: FP16/INT8 variants are made from an ONNX model")
    if not evaluation:
        raise ExportError("no evaluation frames")
    inputs = prepare(evaluation, manifest)
    labelled = [i for i, f in enumerate(evaluation) if f.persons is not None]
    truths = [evaluation[i].persons for i in labelled]
    results: list[VariantResult] = []
    with tempfile.TemporaryDirectory(prefix="retail-export-variants-") as tmp:
        paths: dict[Precision, Path] = {Precision.FP32: model}
        if Precision.FP16 in s.precisions:
            paths[Precision.FP16] = to_fp16(model, Path(tmp) / f"{model.stem}-fp16.onnx")
        if Precision.INT8 in s.precisions:
            calib = prepare(calibration, manifest).tensors
            paths[Precision.INT8] = to_int8(model, Path(tmp) / f"{model.stem}-int8.onnx", calib)
        reference_raw = run_raw(open_session(model), inputs)
        reference = person_boxes(manifest, reference_raw, inputs, s.class_name)
        reference_truth = [b.above(s.reference_conf).xyxy for b in reference]
        for precision in (p for p in Precision if p in paths):
            path = paths[precision]
            session = open_session(path)
            raw = run_raw(session, inputs)
            boxes = person_boxes(manifest, raw, inputs, s.class_name)
            median, p90 = latency_ms(session, inputs.tensors[0], s.latency_runs)
            del session
            folder = out / precision.value
            result = VariantResult(
                precision=precision,
                bundle=str(folder),
                size_bytes=path.stat().st_size,
                latency_ms_median=median,
                latency_ms_p90=p90,
                score_rel_error=score_error(manifest, raw, reference_raw),
                ap50_vs_fp32=average_precision(boxes, reference_truth),
                ap50_vs_labels=average_precision(
                    [boxes[i] for i in labelled],
                    [t for t in truths if t is not None],
                )
                if labelled
                else None,
                persons=sum(len(b.above(s.reference_conf).xyxy) for b in boxes),
            )
            results.append(result)
            if precision in s.precisions:
                variant = manifest.model_copy(
                    update={
                        "version": manifest.version
                        if precision is Precision.FP32
                        else f"{manifest.version}-{precision.value}",
                        "metrics": {**manifest.metrics, **result.metrics()},
                        "files": {},
                        "model_file": None,
                    }
                )
                write_bundle(folder, [path], variant, model_file=path.name)
                if key is not None:
                    sign_bundle(folder, key)
            log.info("%s: %.2f ms, AP50 vs FP32 %s", precision.value, median, result.ap50_vs_fp32)
    report = ExportReport(
        model=f"{manifest.name} {manifest.version}",
        family=manifest.family.value,
        input=f"{manifest.input.width}x{manifest.input.height}",
        created_at=datetime.now(UTC),
        machine=machine(),
        onnxruntime=ort.__version__,
        calibration_frames=[f.name for f in calibration] if Precision.INT8 in paths else [],
        eval_frames=len(evaluation),
        labelled_frames=len(labelled),
        labelled_persons=sum(len(t) for t in truths if t is not None),
        reference_conf=s.reference_conf,
        latency_runs=s.latency_runs,
        variants=results,
    )
    report.write(out)
    return report
