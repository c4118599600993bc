"""Add a product to a classifier bundle from a few photos, on the CPU, in seconds.

The photos go through the bundle's own model (its ``embedding`` output) at every training crop
fraction, join the head's stored training embeddings as a new class, and the class-balanced
logistic head is refitted with the same L2 penalty; the extractor is unchanged. No GPU, no
original training images, no extractor file needed: the bundle alone is enough.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from model_export.classifier.bundle import (
    ClassifierManifest,
    HeadData,
    read_head_data,
    write_bundle,
)
from model_export.classifier.compose import EMBEDDING, replace_head
from model_export.classifier.embed import load_model
from model_export.classifier.errors import ClassifierError
from model_export.classifier.heads import fit_logistic
from model_export.classifier.inference import BundleRunner

log = logging.getLogger(__name__)


def add_product(bundle: Path, name: str, photos: list[Path], out: Path) -> ClassifierManifest:
    """Write to ``out`` the bundle ``bundle`` with class ``name`` learnt from ``photos``.

    ``out`` may be ``bundle`` itself. Returns the new manifest. Raises ClassifierError for an
    empty or existing name, no photos, an unreadable photo, or a bundle that is not one.
    """
    name = name.strip()
    if not name:
        raise ClassifierError("the new product needs a name")
    if not photos:
        raise ClassifierError(f"give at least one photo of {name!r}")
    runner = BundleRunner(bundle)
    manifest = runner.manifest
    if name in manifest.classes:
        raise ClassifierError(f"class {name!r} is already in {bundle}; pick another name")
    data = read_head_data(bundle, len(manifest.classes))
    crops = manifest.training.train_crops
    new_x = np.concatenate([runner.run(photos, EMBEDDING, crop) for crop in crops])
    new_label = len(manifest.classes)
    head_data = HeadData(
        np.concatenate([data.embeddings, new_x]),
        np.concatenate([data.labels, np.full(len(new_x), new_label, np.int64)]),
    )
    classes = (*manifest.classes, name)
    head = fit_logistic(head_data.embeddings, head_data.labels, classes, manifest.training.l2)
    model = replace_head(load_model(bundle / manifest.model_file), head)
    training = manifest.training.model_copy(
        update={"added_products": [*manifest.training.added_products, name]}
    )
    updated = manifest.model_copy(update={"classes": list(classes), "training": training})
    written = write_bundle(out, model, updated, head_data)
    log.info("added %r from %d photos: %d classes in %s", name, len(photos), len(classes), out)
    return written
