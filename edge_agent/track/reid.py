"""Person appearance embeddings for re-identification (OSNet-style ONNX models).

The model takes ``[B, 3, 256, 128]`` float RGB crops scaled to [0, 1] and normalised with the
ImageNet mean and std, and returns ``[B, D]`` features (D = 512 for OSNet x0.25). All crops of
one frame go through the model in a single batched call.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge_agent.errors import ModelError

log = logging.getLogger(__name__)

CROP_HEIGHT = 256
CROP_WIDTH = 128
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)


class AppearanceEmbedder:
    """Runs a person re-identification ONNX model on box crops of a frame.

    Args:
        model_path: path to the ONNX file, e.g. ``models/reid/osnet_x0_25_msmt17.onnx``.
        threads: onnxruntime intra-op threads; None lets onnxruntime decide.

    Raises:
        ModelError: the file is missing, is not a loadable ONNX model, or its input is not
            ``[B, 3, 256, 128]`` / its output is not ``[B, D]``.
    """

    def __init__(self, model_path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        path = Path(model_path)
        if not path.is_file():
            raise ModelError(
                f"re-identification model not found: {path}; point the tracker's reid model "
                "path at an OSNet ONNX file (e.g. models/reid/osnet_x0_25_msmt17.onnx)"
            )
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises several unrelated types for bad files
            raise ModelError(f"cannot load re-identification model {path}: {exc}") from exc
        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        in_shape = list(inputs[0].shape) if inputs else []
        out_shape = list(outputs[0].shape) if outputs else []
        if len(inputs) != 1 or len(in_shape) != 4 or in_shape[1:] != [3, CROP_HEIGHT, CROP_WIDTH]:
            raise ModelError(
                f"re-identification model {path} has input {in_shape}; expected one input "
                f"[batch, 3, {CROP_HEIGHT}, {CROP_WIDTH}] (an OSNet person re-id export)"
            )
        if len(out_shape) != 2 or not isinstance(out_shape[1], int):
            raise ModelError(
                f"re-identification model {path} has output {out_shape}; expected [batch, dim]"
            )
        self._input = inputs[0].name
        self._fixed_batch = in_shape[0] if isinstance(in_shape[0], int) else None
        self.dim: int = int(out_shape[1])
        """Embedding length."""
        log.info("re-id model %s loaded: embedding dim %d", path, self.dim)

    def preprocess(
        self, image: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.floating]
    ) -> npt.NDArray[np.float32]:
        """Crops (N, 4) pixel boxes of a BGR frame into the model's [N, 3, 256, 128] input.

        Boxes are clipped to the frame and widened to at least one pixel.
        """
        height, width = image.shape[:2]
        boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        x1 = np.clip(np.floor(boxes[:, 0]), 0, width - 1).astype(np.intp)
        y1 = np.clip(np.floor(boxes[:, 1]), 0, height - 1).astype(np.intp)
        x2 = np.maximum(np.clip(np.ceil(boxes[:, 2]), 0, width).astype(np.intp), x1 + 1)
        y2 = np.maximum(np.clip(np.ceil(boxes[:, 3]), 0, height).astype(np.intp), y1 + 1)
        batch = np.empty((len(boxes), CROP_HEIGHT, CROP_WIDTH, 3), np.uint8)
        # One resize per crop is unavoidable (each has its own size); the model call is batched.
        for i in range(len(boxes)):
            batch[i] = cv2.resize(
                image[y1[i] : y2[i], x1[i] : x2[i]],
                (CROP_WIDTH, CROP_HEIGHT),
                interpolation=cv2.INTER_LINEAR,
            )
        rgb = batch[..., ::-1].astype(np.float32) / 255.0
        return np.ascontiguousarray(((rgb - _MEAN) / _STD).transpose(0, 3, 1, 2))

    def embed(
        self, image: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.floating]
    ) -> npt.NDArray[np.float32]:
        """L2-normalised appearance embeddings (N, dim) of the (N, 4) pixel boxes in a BGR frame."""
        n = len(xyxy)
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        blob = self.preprocess(image, xyxy)
        if self._fixed_batch is None:
            feats = self._run(blob)
        else:
            feats = np.concatenate(
                [self._run(blob[i : i + self._fixed_batch]) for i in range(0, n, self._fixed_batch)]
            )
        norms = np.linalg.norm(feats, axis=1, keepdims=True)
        return (feats / np.maximum(norms, 1e-12)).astype(np.float32)

    def _run(self, blob: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        count = len(blob)
        if self._fixed_batch is not None and count < self._fixed_batch:
            pad = np.zeros((self._fixed_batch - count, *blob.shape[1:]), np.float32)
            blob = np.concatenate([blob, pad])
        out = self._session.run(None, {self._input: blob})[0]
        return np.asarray(out, dtype=np.float32)[:count]
