"""Product embeddings from the frozen extractor with ONNX Runtime, with an optional disk cache.

The embedding of an image at a crop fraction is the flip-averaged, power-normalised extractor
output: ``unit(unit(sqrt(f(x))) + unit(sqrt(f(mirror(x)))))``, where ``f`` is the extractor's
1024-d average-pooled feature (non-negative: it follows a ReLU6) and ``unit`` divides by the
L2 norm. The square root damps the few large activations; averaging with the mirror image
makes the embedding insensitive to which way a package is photographed. ``compose`` builds the
same computation into the exported ONNX graph; tests check the two agree.

The extractor ships with a fixed batch of 1; ``dynamic_batch`` relabels its batch axis so that
images go through in batches (the convolutions do not care).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from model_export.classifier.errors import ClassifierError
from model_export.classifier.preprocess import U8, load_batch, read_rgb

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
EPS = 1e-12


def l2_normalise(x: npt.NDArray[np.floating]) -> F32:
    """Rows scaled to unit Euclidean length (zero rows stay zero)."""
    x = np.asarray(x, np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    out: F32 = x / np.maximum(norm, np.float32(EPS))
    return out


def combine_views(plain: F32, mirrored: F32) -> F32:
    """(N, D) embeddings from the raw extractor features of N images and of their mirrors."""
    a = l2_normalise(np.sqrt(np.maximum(plain, 0.0)))
    b = l2_normalise(np.sqrt(np.maximum(mirrored, 0.0)))
    return l2_normalise(a + b)


def import_onnx() -> Any:
    """The ``onnx`` package (building and editing graphs: train, add-product; not eval)."""
    try:
        import onnx
    except ModuleNotFoundError:
        raise ClassifierError(
            "the onnx package is needed to build classifier models: pip install onnx "
            "(it is in the export extra)"
        ) from None
    return onnx


def dynamic_batch(model: Any, name: str = "N") -> Any:
    """A copy of an ONNX ``model`` whose inputs and outputs have a symbolic batch axis ``name``."""
    onnx = import_onnx()

    out = onnx.ModelProto()
    out.CopyFrom(model)
    for value in [*out.graph.input, *out.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = name
    del out.graph.value_info[:]  # stale batch-1 shapes of intermediate tensors
    return out


def load_model(path: Path) -> Any:
    """Read an ONNX file, raising ClassifierError with the path if it is missing or invalid."""
    onnx = import_onnx()
    from google.protobuf.message import DecodeError

    if not path.is_file():
        raise ClassifierError(f"model file not found: {path}")
    try:
        return onnx.load(str(path))
    except (DecodeError, ValueError, OSError) as exc:
        raise ClassifierError(f"{path} is not a readable ONNX model: {exc}") from exc


def open_session(model_bytes: bytes) -> Any:
    """An ONNX Runtime CPU session over a serialised model."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model_bytes, sess_options=opts, providers=["CPUExecutionProvider"])


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


class Embedder:
    """Embeds image files with the frozen extractor (see the module docstring for the maths)."""

    def __init__(self, extractor_path: Path, batch_size: int = 32) -> None:
        model = load_model(extractor_path)
        if len(model.graph.input) != 1 or len(model.graph.output) != 1:
            raise ClassifierError(f"{extractor_path}: the extractor needs one input and one output")
        self.model = model
        self.sha256 = sha256_bytes(extractor_path.read_bytes())
        self.batch_size = batch_size
        self._session = open_session(dynamic_batch(model).SerializeToString())
        self._input = self._session.get_inputs()[0].name

    def features(self, batch: F32) -> F32:
        """Raw (N, D) extractor features of an (N, 3, 224, 224) preprocessed batch."""
        out: F32 = self._session.run(None, {self._input: batch})[0]
        return out.reshape(len(batch), -1).astype(np.float32)

    def embed_images(self, images: Sequence[U8], crop: float) -> F32:
        """(N, D) unit embeddings of decoded RGB images at one crop fraction."""
        if not images:
            raise ClassifierError("no images to embed")
        batch = load_batch(list(images), crop)
        mirrored = np.ascontiguousarray(batch[..., ::-1])
        return combine_views(self.features(batch), self.features(mirrored))

    def embed_files(
        self, paths: Sequence[Path], crop: float, cache: EmbeddingCache | None = None
    ) -> F32:
        """(N, D) embeddings of image files at one crop fraction, reusing ``cache`` if given."""
        if not paths:
            raise ClassifierError("no images to embed")
        found = cache.lookup(self.sha256, crop, paths) if cache else {}
        missing = [i for i in range(len(paths)) if i not in found]
        for start in range(0, len(missing), self.batch_size):
            rows = missing[start : start + self.batch_size]
            emb = self.embed_images([read_rgb(paths[i]) for i in rows], crop)
            found.update(zip(rows, emb, strict=True))
        if cache and missing:
            cache.store(
                self.sha256,
                crop,
                [paths[i] for i in missing],
                np.stack([found[i] for i in missing]),
            )
        return np.stack([found[i] for i in range(len(paths))])


class EmbeddingCache:
    """Embeddings memoised on disk, one ``.npz`` per (extractor, crop), keyed by image path.

    For repeated training runs on the same images (tests, benchmarks); an image edited in place
    keeps its stale embedding, so point it at a fresh folder when the images change.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _file(self, extractor_sha: str, crop: float) -> Path:
        return self.folder / f"emb-{extractor_sha[:16]}-crop{crop:g}.npz"

    def _load(self, file: Path) -> dict[str, F32]:
        if not file.is_file():
            return {}
        with np.load(file) as data:
            return dict(zip(data["paths"].tolist(), data["embeddings"], strict=True))

    def lookup(self, extractor_sha: str, crop: float, paths: Sequence[Path]) -> dict[int, F32]:
        """The cached embeddings of ``paths``, by position in ``paths``."""
        known = self._load(self._file(extractor_sha, crop))
        keys = [str(p.resolve()) for p in paths]
        return {i: known[k] for i, k in enumerate(keys) if k in known}

    def store(self, extractor_sha: str, crop: float, paths: Sequence[Path], emb: F32) -> None:
        """Add embeddings of ``paths`` (rows of ``emb``) to the cache."""
        file = self._file(extractor_sha, crop)
        known = self._load(file)
        known.update(zip([str(p.resolve()) for p in paths], emb, strict=True))
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(".tmp.npz")
        np.savez(tmp, paths=np.array(list(known)), embeddings=np.stack(list(known.values())))
        tmp.replace(file)
        log.info("cached %d embeddings (crop %g) in %s", len(paths), crop, file)
