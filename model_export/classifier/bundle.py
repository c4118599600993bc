"""The classifier bundle: a folder with the model, its manifest and the head's training data.

```
BUNDLE/
  classifier.onnx    one graph: mirror + frozen extractor + embedding + head (ONNX Runtime only)
  manifest.json      ClassifierManifest: classes, input, centre crop, sha256, metrics
  head-train.npz     training embeddings and labels, for add-product; not needed on the edge
```

The manifest reuses the detectors' ``InputSpec`` (``common.manifest``): the tensor is
``(pixel * scale - mean) / std`` in RGB, NCHW, after the image's central square of side
``center_crop`` x shorter side is resized to ``width`` x ``height`` (``stretch``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.manifest import InputSpec, Letterbox
from model_export.classifier.compose import EMBEDDING, PROBS
from model_export.classifier.errors import ClassifierError
from model_export.classifier.preprocess import INPUT_MEAN, INPUT_SCALE, INPUT_SIZE

MODEL_FILE = "classifier.onnx"
MANIFEST_FILE = "manifest.json"
HEAD_DATA_FILE = "head-train.npz"
CLASSIFIER_MANIFEST_VERSION = 1

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

EXTRACTOR_INPUT = InputSpec(
    width=INPUT_SIZE,
    height=INPUT_SIZE,
    color="rgb",
    scale=INPUT_SCALE,
    mean=(INPUT_MEAN * INPUT_SCALE,) * 3,
    letterbox=Letterbox.STRETCH,
    dynamic_batch=True,
)


class HeadTraining(BaseModel):
    """How the head was fitted, so that ``add-product`` can refit it the same way."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str = Field(description="dataset folder the classes came from")
    train_images: int = Field(ge=1, description="train.txt images (each at every train crop)")
    train_crops: list[float] = Field(min_length=1, description="crop fractions seen in training")
    l2: float = Field(gt=0, description="L2 penalty of the logistic head, chosen on val")
    extractor_sha256: str
    added_products: list[str] = Field(default_factory=list, description="by add-product")


class ClassifierManifest(BaseModel):
    """What the edge needs to run ``classifier.onnx`` without guessing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = CLASSIFIER_MANIFEST_VERSION
    name: str = "product-classifier"
    task: Literal["classify"] = "classify"
    model_file: str = MODEL_FILE
    sha256: str = Field(description="sha256 of model_file")
    classes: list[str] = Field(min_length=1, description="class names, in output order")
    input: InputSpec = EXTRACTOR_INPUT
    center_crop: float = Field(
        gt=0, le=1, description="side of the central square kept, as a fraction of the shorter side"
    )
    outputs: list[str] = Field(default_factory=lambda: [PROBS, EMBEDDING])
    metrics: dict[str, float] = Field(default_factory=dict, description="val_top1 (0-1), ...")
    training: HeadTraining
    created_at: datetime
    source: str = (
        "frozen MobileNetV1 int8 embedding extractor (google-coral test_data, Apache-2.0) "
        "+ logistic head trained by retail-export classifier"
    )


@dataclass(frozen=True)
class HeadData:
    """Training embeddings (M, D) and their class indices (M,), for refitting the head."""

    embeddings: F32
    labels: I64


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_bundle(
    folder: Path, model: Any, manifest: ClassifierManifest, head_data: HeadData
) -> ClassifierManifest:
    """Write the model, its head data and the manifest (with the model's sha256) to ``folder``."""
    from model_export.classifier.embed import import_onnx

    onnx = import_onnx()
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / manifest.model_file
    onnx.save(model, str(model_path))
    np.savez(folder / HEAD_DATA_FILE, embeddings=head_data.embeddings, labels=head_data.labels)
    final = manifest.model_copy(update={"sha256": sha256_file(model_path)})
    (folder / MANIFEST_FILE).write_text(final.model_dump_json(indent=2) + "\n")
    return final


def read_manifest(folder: Path) -> ClassifierManifest:
    """The bundle's manifest, checked against the model file's sha256."""
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise ClassifierError(f"{path} not found: not a classifier bundle (run classifier train)")
    try:
        manifest = ClassifierManifest.model_validate_json(path.read_text())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ClassifierError(f"{path}: {where}: {first['msg']}") from None
    model_path = folder / manifest.model_file
    if not model_path.is_file():
        raise ClassifierError(f"{model_path} not found (named by {path})")
    if sha256_file(model_path) != manifest.sha256:
        raise ClassifierError(f"{model_path} does not match the sha256 in {path}")
    return manifest


def read_head_data(folder: Path, n_classes: int) -> HeadData:
    """The bundle's head training data; checks its labels fit ``n_classes``."""
    path = folder / HEAD_DATA_FILE
    if not path.is_file():
        raise ClassifierError(f"{path} not found: add-product needs the head's training data")
    with np.load(path) as data:
        out = HeadData(data["embeddings"].astype(np.float32), data["labels"].astype(np.int64))
    if len(out.labels) != len(out.embeddings) or out.labels.max() >= n_classes:
        raise ClassifierError(f"{path} does not match the manifest's {n_classes} classes")
    return out
