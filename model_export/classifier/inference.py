"""Run a classifier bundle on image files with ONNX Runtime alone (what the edge will do)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from model_export.classifier.bundle import ClassifierManifest, read_manifest
from model_export.classifier.compose import EMBEDDING, INPUT, PROBS
from model_export.classifier.embed import open_session
from model_export.classifier.errors import ClassifierError
from model_export.classifier.preprocess import load_batch, read_rgb

F32 = npt.NDArray[np.float32]


class BundleRunner:
    """An ONNX Runtime session over a bundle's model, fed as its manifest says."""

    def __init__(self, bundle: Path, batch_size: int = 32) -> None:
        self.manifest: ClassifierManifest = read_manifest(bundle)
        self.batch_size = batch_size
        self._session = open_session((bundle / self.manifest.model_file).read_bytes())
        names = {o.name for o in self._session.get_outputs()}
        if not {PROBS, EMBEDDING} <= names:
            raise ClassifierError(
                f"{bundle}: model outputs {sorted(names)}, not {PROBS}/{EMBEDDING}"
            )

    def run(self, paths: Sequence[Path], output: str, crop: float | None = None) -> F32:
        """``output`` (``probabilities`` (N, K) or ``embedding`` (N, D)) of N image files.

        ``crop`` overrides the manifest's centre-crop fraction (add-product embeds photos at
        every training crop).
        """
        if not paths:
            raise ClassifierError("no images given")
        fraction = self.manifest.center_crop if crop is None else crop
        parts: list[F32] = []
        for i in range(0, len(paths), self.batch_size):
            images = [read_rgb(p) for p in paths[i : i + self.batch_size]]
            parts.append(self._session.run([output], {INPUT: load_batch(images, fraction)})[0])
        return np.concatenate(parts).astype(np.float32)

    def predict(self, paths: Sequence[Path]) -> npt.NDArray[np.int64]:
        """(N,) index into ``manifest.classes`` of the most likely class of each image."""
        out: npt.NDArray[np.int64] = self.run(paths, PROBS).argmax(axis=1).astype(np.int64)
        return out
