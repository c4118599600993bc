"""The product classifier on the edge: a bundle from ``retail-export classifier train`` run
with ONNX Runtime alone (no model_export import: the edge reads the bundle's files).

The bundle folder holds ``manifest.json`` (classes in output order, the input spec, the centre
crop, the model's sha256) and the ONNX graph, whose ``probabilities`` output is the softmax
over the classes. Each product box is cut from the frame, its central square of side
``center_crop`` x the shorter side is resized to the input size, and the pixels are scaled as
the manifest's ``InputSpec`` says.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.manifest import InputSpec
from edge_agent.errors import ModelError

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
INPUT_NAME = "input"
PROBS_OUTPUT = "probabilities"

F32 = npt.NDArray[np.float32]


class ProductBundleInfo(BaseModel):
    """The fields of a classifier bundle's manifest the edge needs (others are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    task: str = Field(pattern="^classify$")
    model_file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    classes: list[str] = Field(min_length=1)
    input: InputSpec
    center_crop: float = Field(gt=0, le=1)


def read_bundle_info(folder: Path) -> ProductBundleInfo:
    """The bundle's manifest, checked against the model file's sha256.

    Raises:
        ModelError: no manifest, an invalid one, a missing model, or a sha256 mismatch.
    """
    path = folder / MANIFEST_FILE
    try:
        text = path.read_text()
    except OSError as exc:
        raise ModelError(
            f"product classifier bundle {folder}: cannot read {MANIFEST_FILE} ({exc.strerror}); "
            "make one with: retail-export classifier train"
        ) from None
    try:
        info = ProductBundleInfo.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ModelError(f"{path}: {where}: {first['msg']}") from None
    model = folder / info.model_file
    try:
        digest = hashlib.sha256(model.read_bytes()).hexdigest()
    except OSError as exc:
        raise ModelError(f"{model} (named by {path}): {exc.strerror}") from None
    if digest != info.sha256:
        raise ModelError(f"{model} does not match the sha256 in {path}: refusing to run it")
    return info


class ProductClassifier:
    """Names the product in each box of a frame (ONNX Runtime, CPU)."""

    def __init__(self, folder: Path) -> None:
        import onnxruntime as ort

        self.folder = folder
        self.info = read_bundle_info(folder)
        self.classes = list(self.info.classes)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # a few crops per frame: one thread, beside the detector
        self._session = ort.InferenceSession(
            str(folder / self.info.model_file),
            sess_options=opts,
            providers=["CPUExecutionProvider"],
        )
        outputs = {o.name for o in self._session.get_outputs()}
        if PROBS_OUTPUT not in outputs:
            raise ModelError(f"{folder}: the model has no {PROBS_OUTPUT!r} output ({outputs})")
        spec = self.info.input
        self._scale = np.float32(spec.scale)
        self._mean = np.asarray(spec.mean, np.float32)[:, None, None]
        self._std = np.asarray(spec.std, np.float32)[:, None, None]
        log.info("product classifier %s: %d classes", folder, len(self.classes))

    def _crop(self, image_bgr: npt.NDArray[np.uint8], box: npt.NDArray[np.floating]) -> F32:
        spec = self.info.input
        h, w = image_bgr.shape[:2]
        x1, y1 = int(np.clip(np.floor(box[0]), 0, w - 1)), int(np.clip(np.floor(box[1]), 0, h - 1))
        x2, y2 = int(np.clip(np.ceil(box[2]), x1 + 1, w)), int(np.clip(np.ceil(box[3]), y1 + 1, h))
        patch = image_bgr[y1:y2, x1:x2]
        side = max(1, round(min(patch.shape[:2]) * self.info.center_crop))
        oy, ox = (patch.shape[0] - side) // 2, (patch.shape[1] - side) // 2
        square = patch[oy : oy + side, ox : ox + side]
        if spec.color == "rgb":
            square = np.asarray(cv2.cvtColor(square, cv2.COLOR_BGR2RGB), np.uint8)
        small = cv2.resize(square, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
        chw = small.transpose(2, 0, 1).astype(np.float32)
        out: F32 = (chw * self._scale - self._mean) / self._std
        return out

    def classify(
        self, image_bgr: npt.NDArray[np.uint8], boxes_px: npt.NDArray[np.floating]
    ) -> tuple[npt.NDArray[np.intp], F32]:
        """Class index (into ``classes``) and its probability for each (N, 4) pixel box of a
        BGR frame; one inference call for all N."""
        if len(boxes_px) == 0:
            return np.zeros(0, np.intp), np.zeros(0, np.float32)
        batch = np.stack([self._crop(image_bgr, b) for b in boxes_px])
        probs = np.asarray(self._session.run([PROBS_OUTPUT], {INPUT_NAME: batch})[0], np.float32)
        best = probs.argmax(axis=1).astype(np.intp)
        return best, probs[np.arange(len(best)), best]
