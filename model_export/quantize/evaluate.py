"""Score an ONNX detector on real frames: latency, raw-output error, person AP50.

The model runs in ONNX Runtime on the CPU with the shared detection core
(``common.detection``: the same preprocessing, decoder and NMS as the edge), so what is scored
is what the edge will see. Person AP50 is computed two ways:

- against the FP32 model's own boxes (score >= ``reference_conf``): how much a variant agrees
  with the model it was made from, on any frame;
- against labels where frames have them (MOTChallenge ground truth).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from common.detection.decoders import decode
from common.detection.nms import box_iou, nms
from common.detection.preprocess import InputTransform, preprocess_into
from common.manifest import DecoderFamily, ModelManifest
from model_export.bundle.errors import ExportError
from model_export.quantize.frames import Frame

F32 = npt.NDArray[np.float32]
#: Lowest score kept when scoring AP (the whole precision-recall curve counts).
AP_MIN_CONF = 0.001
#: Most boxes kept per frame after NMS.
MAX_DETECTIONS = 300


@dataclass(frozen=True, slots=True)
class PersonBoxes:
    """Person boxes found in one frame: xyxy (N, 4) in frame pixels and scores (N,)."""

    xyxy: F32
    confidence: F32

    def above(self, conf: float) -> PersonBoxes:
        """Only the boxes scoring at least ``conf``."""
        keep = self.confidence >= conf
        return PersonBoxes(self.xyxy[keep], self.confidence[keep])


@dataclass(frozen=True, slots=True)
class Inputs:
    """Frames preprocessed once for a manifest: tensors (1, 3, H, W) and their transforms."""

    tensors: list[F32]
    transforms: list[InputTransform]


def prepare(frames: Sequence[Frame], manifest: ModelManifest) -> Inputs:
    """Preprocess ``frames`` as ``manifest.input`` says (as the edge does)."""
    spec = manifest.input
    tensors, transforms = [], []
    for frame in frames:
        t = np.empty((1, 3, spec.height, spec.width), np.float32)
        transforms.append(preprocess_into(frame.image, spec, t[0]))
        tensors.append(t)
    return Inputs(tensors, transforms)


def open_session(model: Path) -> Any:
    """An ONNX Runtime CPU session using every core (latency mode)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises several unrelated types for bad files
        raise ExportError(f"ONNX Runtime cannot load {model}: {exc}") from exc


def run_raw(session: Any, inputs: Inputs) -> list[F32]:
    """The model's first output for each frame."""
    name = session.get_inputs()[0].name
    return [np.asarray(session.run(None, {name: t})[0], np.float32) for t in inputs.tensors]


def person_boxes(
    manifest: ModelManifest, raw: Sequence[F32], inputs: Inputs, class_name: str = "person"
) -> list[PersonBoxes]:
    """Decode + NMS each frame's raw output; ``class_name`` boxes in frame pixels."""
    classes = np.asarray([manifest.class_index(class_name)], np.intp)
    out = []
    for r, t in zip(raw, inputs.transforms, strict=True):
        xyxy, conf, cls = decode(manifest, r[0], AP_MIN_CONF, classes)
        keep = nms(xyxy, conf, cls, 0.45, MAX_DETECTIONS)
        out.append(PersonBoxes(t.to_frame(xyxy[keep]), conf[keep]))
    return out


def average_precision(
    predictions: Sequence[PersonBoxes], truths: Sequence[F32], iou: float = 0.5
) -> float | None:
    """All-point interpolated AP of ``predictions`` against ``truths``, per frame pairs.

    A prediction is a true positive when it overlaps an unmatched truth of the same frame by at
    least ``iou`` (the best-overlapping one, highest scores matched first). None when there is
    no truth at all (AP is undefined).
    """
    n_truth = sum(len(t) for t in truths)
    if n_truth == 0:
        return None
    scores: list[F32] = []
    hits: list[npt.NDArray[np.bool_]] = []
    for pred, truth in zip(predictions, truths, strict=True):
        order = np.argsort(-pred.confidence, kind="stable")
        tp = np.zeros(len(order), bool)
        if len(truth) and len(order):
            overlap = box_iou(pred.xyxy[order], truth)
            taken = np.zeros(len(truth), bool)
            for i in range(len(order)):
                candidates = np.where(taken, -1.0, overlap[i])
                j = int(np.argmax(candidates))
                if candidates[j] >= iou:
                    taken[j] = True
                    tp[i] = True
        scores.append(pred.confidence[order])
        hits.append(tp)
    all_scores = np.concatenate(scores) if scores else np.zeros(0, np.float32)
    all_hits = np.concatenate(hits) if hits else np.zeros(0, bool)
    order = np.argsort(-all_scores, kind="stable")
    tp_cum = np.cumsum(all_hits[order])
    fp_cum = np.cumsum(~all_hits[order])
    recall = tp_cum / n_truth
    precision = tp_cum / np.maximum(tp_cum + fp_cum, 1)
    # Precision envelope (monotone non-increasing), then the area under the step curve.
    r = np.concatenate([[0.0], recall, [recall[-1] if len(recall) else 0.0]])
    p = np.concatenate([[1.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    return float(np.sum((r[1:] - r[:-1]) * p[1:]))


def raw_scores(manifest: ModelManifest, raw: F32) -> F32:
    """The score part of one raw output (objectness and class scores, 0-1), per family.

    Box coordinates are left out: in a YOLOv8 head they are large pixel values that would
    hide any change in the scores, which decide what is detected.
    """
    if manifest.family is DecoderFamily.YOLOV8:
        return raw[:, 4:, :]  # (B, 4 + C, N)
    if manifest.family is DecoderFamily.YOLOX:
        return raw[..., 4:]  # (B, N, 5 + C)
    return raw.reshape(-1, 7)[:, 2]  # DetectionOutput rows (image, label, conf, box)


def score_error(manifest: ModelManifest, raw: Sequence[F32], reference: Sequence[F32]) -> float:
    """||s - s_ref|| / ||s_ref|| over the raw scores of every frame (L2; 0 = identical)."""
    pairs = [
        (raw_scores(manifest, a), raw_scores(manifest, b))
        for a, b in zip(raw, reference, strict=True)
    ]
    num = sum(float(np.sum((a.astype(np.float64) - b) ** 2)) for a, b in pairs)
    den = sum(float(np.sum(b.astype(np.float64) ** 2)) for _, b in pairs)
    return float(np.sqrt(num / den)) if den > 0 else 0.0


def latency_ms(session: Any, tensor: F32, runs: int, warmup: int = 3) -> tuple[float, float]:
    """Median and 90th percentile of one inference call, in milliseconds."""
    name = session.get_inputs()[0].name
    for _ in range(warmup):
        session.run(None, {name: tensor})
    times = []
    for _ in range(max(runs, 1)):
        start = time.perf_counter()
        session.run(None, {name: tensor})
        times.append((time.perf_counter() - start) * 1000)
    p90 = float(np.percentile(times, 90))
    return statistics.median(times), p90
