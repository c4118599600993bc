"""Train the product classifier and write its bundle (``retail-export classifier train``).

Each train.txt image is embedded at every crop fraction of ``train_crops`` (each embedding
already averages the image and its mirror), which triples the examples the head sees; val.txt
and test.txt images are embedded once, at ``crop``. A logistic head is fitted for each L2
penalty of ``l2_grid`` and the one with the best val.txt top-1 is exported (ties go to the
stronger penalty). Without a val.txt the head is fitted once with ``DEFAULT_L2`` (logged, and
the manifest then has no val metrics). test.txt is never looked at here: ``classifier eval``
scores it.

The defaults come from val.txt of the grocery data (frozen MobileNetV1, logistic head, val
top-1 of 100 images): centre crop 0.875 (ImageNet habit) 0.74, 0.65 0.81, 0.55 0.83, 0.45
0.81; adding the 0.45 and 0.65 crops of each training image 0.83 -> 0.86.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from model_export.classifier.bundle import (
    ClassifierManifest,
    HeadData,
    HeadTraining,
    write_bundle,
)
from model_export.classifier.compose import compose
from model_export.classifier.dataset import load_split, train_classes
from model_export.classifier.embed import Embedder, EmbeddingCache
from model_export.classifier.heads import LogisticHead, fit_logistic

log = logging.getLogger(__name__)

DEFAULT_CROP = 0.55
DEFAULT_TRAIN_CROPS = (0.45, 0.55, 0.65)
DEFAULT_L2_GRID = (1e-4, 1e-5, 1e-6)
DEFAULT_L2 = 1e-5


@dataclass(frozen=True)
class TrainResult:
    """The bundle written and the val top-1 (0-1) of each L2 penalty tried (none without val)."""

    bundle: Path
    manifest: ClassifierManifest
    val_top1_by_l2: dict[float, float]


def train_classifier(
    dataset: Path,
    extractor: Path,
    out: Path,
    created_at: datetime,
    cache: EmbeddingCache | None = None,
    crop: float = DEFAULT_CROP,
    train_crops: Sequence[float] = DEFAULT_TRAIN_CROPS,
    l2_grid: Sequence[float] = DEFAULT_L2_GRID,
) -> TrainResult:
    """Fit the head on ``dataset``'s train.txt, choose its L2 penalty on val.txt, write ``out``.

    Raises ClassifierError for a missing or malformed dataset, an unreadable image, or a val
    class that train does not have.
    """
    train = load_split(dataset, "train")
    classes = train_classes(dataset, train)
    val = load_split(dataset, "val") if (dataset / "val.txt").is_file() else None
    y_train = np.tile(np.asarray(train.labels(classes), np.int64), len(train_crops))
    embedder = Embedder(extractor)
    x_train = np.concatenate([embedder.embed_files(train.paths, c, cache) for c in train_crops])
    heads: dict[float, LogisticHead] = {}
    scores: dict[float, float] = {}
    if val is None:
        log.warning("%s has no val.txt: fitting the head with l2=%g", dataset, DEFAULT_L2)
        best = DEFAULT_L2
        heads[best] = fit_logistic(x_train, y_train, classes, best)
        metrics: dict[str, float] = {}
    else:
        y_val = np.asarray(val.labels(classes), np.int64)
        x_val = embedder.embed_files(val.paths, crop, cache)
        for l2 in l2_grid:
            heads[l2] = fit_logistic(x_train, y_train, classes, l2)
            scores[l2] = float((heads[l2].predict(x_val) == y_val).mean())
            log.info("l2=%g: val top-1 %.3f on %d images", l2, scores[l2], len(val))
        best = max(l2_grid, key=lambda l2: (scores[l2], l2))
        metrics = {"val_top1": scores[best], "val_images": float(len(val))}
    manifest = ClassifierManifest(
        sha256="",
        classes=list(classes),
        center_crop=crop,
        metrics=metrics,
        training=HeadTraining(
            dataset=str(dataset),
            train_images=len(train),
            train_crops=list(train_crops),
            l2=best,
            extractor_sha256=embedder.sha256,
        ),
        created_at=created_at,
    )
    model = compose(embedder.model, heads[best])
    written = write_bundle(out, model, manifest, HeadData(x_train, y_train))
    log.info("wrote %s: %d classes, l2=%g, metrics %s", out, len(classes), best, metrics)
    return TrainResult(out, written, scores)
