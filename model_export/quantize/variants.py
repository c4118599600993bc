"""FP16 and INT8 variants of an FP32 ONNX detector.

- FP16: weights and activations in float16 (``onnxruntime.transformers.float16``); the graph's
  inputs and outputs stay float32, so the edge feeds it exactly like the FP32 model.
- INT8: ONNX Runtime static quantisation (QDQ, per-channel int8 weights, uint8 activations,
  min-max ranges) calibrated on real frames preprocessed as the manifest says. The decoding
  tail stays in float: every node after the last convolutions (sigmoids, the concatenation of
  box offsets, objectness and class scores into one tensor, reshapes), and the
  distribution-focal box decoding of YOLOv8 (softmax and its fixed 1x1 convolution).
  Quantising a tensor that concatenates pixel offsets and 0-1 scores with one scale would
  flatten the scores. Models below opset 13 are converted first (per-channel needs it).
"""

from __future__ import annotations

import logging
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from model_export.bundle.errors import ExportError

log = logging.getLogger(__name__)

MIN_QDQ_OPSET = 13
# Nodes that only carry a tensor through; walked past when following a softmax to its conv.
_PASS_THROUGH = {"Reshape", "Transpose", "Identity", "Squeeze", "Unsqueeze", "Flatten"}


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise ExportError(f"onnx is needed for FP16/INT8 variants: {exc}") from exc
    return onnx


def to_fp16(src: Path, dst: Path) -> Path:
    """Write an FP16 copy of ``src`` to ``dst`` (float32 inputs and outputs kept)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx = _onnx()
    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    return dst


def float_tail(model: Any) -> list[str]:
    """Names of the nodes INT8 quantisation leaves in float (see the module docstring)."""
    nodes = list(model.graph.node)
    consumers: dict[str, list[Any]] = defaultdict(list)
    for node in nodes:
        for name in node.input:
            consumers[name].append(node)

    @cache
    def conv_downstream(index: int) -> bool:
        node = nodes[index]
        return any(
            c.op_type == "Conv" or conv_downstream(position[c.name])
            for out in node.output
            for c in consumers[out]
        )

    position = {n.name: i for i, n in enumerate(nodes)}
    tail = {n.name for i, n in enumerate(nodes) if n.op_type != "Conv" and not conv_downstream(i)}
    for node in nodes:
        if node.op_type != "Softmax":
            continue
        tail.add(node.name)
        frontier = [node]
        while frontier:
            current = frontier.pop()
            for out in current.output:
                for c in consumers[out]:
                    tail.add(c.name)
                    if c.op_type in _PASS_THROUGH:
                        frontier.append(c)
    return sorted(tail)


def to_int8(src: Path, dst: Path, calibration: Sequence[npt.NDArray[np.float32]]) -> Path:
    """Write a statically quantised INT8 copy of ``src`` to ``dst``.

    Args:
        calibration: preprocessed input tensors (3, H, W) or (1, 3, H, W) from real frames.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise ExportError("INT8 calibration needs at least one frame")
    onnx = _onnx()
    model = onnx.load(str(src))
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    excluded = float_tail(model)
    input_name = model.graph.input[0].name
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="retail-export-int8-") as tmp:
        work = Path(tmp) / "fp32.onnx"
        if opset < MIN_QDQ_OPSET:
            from onnx import version_converter

            log.info("%s: opset %d -> %d for per-channel INT8", src.name, opset, MIN_QDQ_OPSET)
            model = version_converter.convert_version(model, MIN_QDQ_OPSET)
        onnx.save(model, str(work))
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(work), str(prepared), skip_symbolic_shape=True)

        class Frames(CalibrationDataReader):
            """The calibration tensors, one (1, 3, H, W) batch per call."""

            def __init__(self) -> None:
                self._items = iter({input_name: t[None] if t.ndim == 3 else t} for t in calibration)

            def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
                return next(self._items, None)

        quantize_static(
            str(prepared),
            str(dst),
            Frames(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=excluded,
        )
    log.info(
        "%s: INT8 from %d calibration frames, %d tail nodes in float",
        src.name,
        len(calibration),
        len(excluded),
    )
    return dst
