"""The detector: preprocessing, a runtime, a decoder and NMS, driven by the model manifest."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt

from common.bundle import SIGNATURE_FILE
from common.detection.decoders import decode, split_batch
from common.detection.nms import nms
from common.detection.preprocess import InputTransform, preprocess_into
from common.manifest import ModelManifest
from common.signing import TrustedKeys
from edge_agent.detect.backends import InferenceBackend, Mode, open_backend
from edge_agent.detect.bundle import is_bundle, verified_bundle
from edge_agent.detect.detections import Detections
from edge_agent.detect.model_info import resolve_manifest
from edge_agent.errors import ModelError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """Thresholds and filters applied after the model.

    Attributes:
        confidence: minimum score kept (0-1).
        iou: NMS IoU threshold (0-1).
        classes: class names to keep (``None`` keeps all).
        max_detections: most boxes kept per frame.
        max_batch: most frames per inference call (multi-camera batching); above 1, a model
            whose batch axis is fixed at 1 is given a dynamic one where the runtime can.
    """

    confidence: float = 0.3
    iou: float = 0.45
    classes: tuple[str, ...] | None = ("person",)
    max_detections: int = 300
    max_batch: int = 1


class Detector:
    """Runs one detection model on BGR frames; returns boxes in frame pixels."""

    def __init__(
        self,
        manifest: ModelManifest,
        backend: InferenceBackend,
        settings: DetectorSettings | None = None,
    ) -> None:
        self.manifest = manifest
        self.backend = backend
        self.settings = settings or DetectorSettings()
        shape = backend.input_shape
        spec = manifest.input
        if len(shape) != 4 or shape[1] not in (3, None):
            raise ModelError(f"model {manifest.name}: expected an NCHW input, got {shape}")
        if (shape[2], shape[3]) != (spec.height, spec.width) and None not in shape[2:]:
            raise ModelError(
                f"model {manifest.name}: manifest says input {spec.width}x{spec.height} but the "
                f"model takes {shape[3]}x{shape[2]}"
            )
        self._classes = self._class_filter(self.settings.classes)
        self._batch_ok = True

    def _class_filter(self, names: tuple[str, ...] | None) -> npt.NDArray[np.intp] | None:
        if names is None:
            return None
        # OpenVINO labels write spaces as underscores; accept both spellings.
        known = {c.replace("_", " "): i for i, c in enumerate(self.manifest.classes)}
        missing = [n for n in names if n.replace("_", " ") not in known]
        if missing:
            raise ModelError(
                f"model {self.manifest.name} has no class {missing}; it knows "
                f"{self.manifest.classes[:12]}{'…' if len(self.manifest.classes) > 12 else ''}"
            )
        return np.asarray([known[n.replace("_", " ")] for n in names], np.intp)

    @classmethod
    def open(
        cls,
        path: Path,
        manifest: ModelManifest | dict[str, object] | Path | None = None,
        settings: DetectorSettings | None = None,
        runtime: Literal["auto", "onnxruntime", "openvino"] = "auto",
        providers: str | list[str] = "auto",
        device: str = "CPU",
        mode: Mode = "latency",
        trusted_keys: Path | TrustedKeys | None = None,
    ) -> Detector:
        """Load a model file, resolving its manifest (see ``model_info.resolve_manifest``),
        or a signed bundle (folder or ``.tar``) verified against ``trusted_keys``.

        With ``trusted_keys`` only a signed bundle loads, and only after its signature and
        every file's sha256 check out (``detect.bundle``); its signed manifest is the one used.
        ``settings.max_batch`` > 1 asks for multi-camera batching; for a model whose batch
        axis is fixed at 1 the OpenVINO runtime is asked to make it dynamic, and the result is
        verified on load.

        Raises:
            ModelError: the model cannot be loaded; ``BundleRejected`` (a ModelError) when a
                bundle fails verification.
        """
        settings = settings or DetectorSettings()

        def load(model_path: Path, resolved: ModelManifest) -> Detector:
            backend = open_backend(
                model_path,
                runtime=runtime,
                providers=providers,
                device=device,
                mode=mode,
                batch=settings.max_batch,
            )
            detector = cls(resolved, backend, settings)
            if settings.max_batch > 1 and backend.dynamic_batch:
                detector._verify_batching()
            return detector

        if trusted_keys is None and not is_bundle(path):
            if (path.parent / SIGNATURE_FILE).is_file():
                log.warning(
                    "model %s is part of a signed bundle but no trusted keys are configured: "
                    "its signature is not checked (set model.trusted_keys and model.path to "
                    "the bundle folder)",
                    path,
                )
            return load(path, resolve_manifest(path, manifest))
        if trusted_keys is None:
            raise ModelError(
                f"{path} is a model bundle: set model.trusted_keys to the folder of public keys "
                "it may be signed with"
            )
        if not path.exists():
            raise ModelError(f"model bundle not found: {path}")
        if not is_bundle(path):
            raise ModelError(
                f"model.trusted_keys is set, so only signed bundles load, and {path} is not a "
                "bundle folder or .tar archive (retail-export import wraps a model into one)"
            )
        if manifest is not None:
            raise ModelError(
                f"{path} is a signed bundle: its own manifest is used, remove model.manifest"
            )
        with verified_bundle(path, trusted_keys) as bundle:
            return load(bundle.model_path, bundle.manifest)

    def _verify_batching(self) -> None:
        """Check that a batch of two different frames decodes like two single frames.

        Some graphs accept a reshaped batch but fold it into one image (a hard-coded reshape);
        such a model keeps working one frame per call, and the log says so.
        """
        rng = np.random.default_rng(0)
        spec = self.manifest.input
        batch = rng.uniform(0, 255, (2, 3, spec.height, spec.width)).astype(np.float32)
        batch *= spec.scale

        def scores(raw: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
            # The ten best candidate scores at a near-zero threshold: a fingerprint of the image
            # that ignores how a runtime orders near-ties in the long tail.
            return np.sort(decode(self.manifest, raw, 1e-4, None)[1])[-10:]

        try:
            together = split_batch(self.manifest, self.backend.infer(batch)[0], 2)
            alone = [
                split_batch(self.manifest, self.backend.infer(batch[i : i + 1])[0], 1)[0]
                for i in range(2)
            ]
            same = all(
                np.allclose(scores(a), scores(b), atol=1e-3)
                for a, b in zip(together, alone, strict=True)
            )
        except (ValueError, RuntimeError) as exc:
            same = False
            log.debug("batched probe failed: %s", exc)
        if not same:
            log.warning(
                "model %s does not batch correctly: running one frame per inference call",
                self.manifest.name,
            )
            self._batch_ok = False

    @property
    def batch_size(self) -> int:
        """Frames per inference call."""
        fixed = self.backend.input_shape[0]
        if fixed is None:
            return self.settings.max_batch if self._batch_ok else 1
        return int(fixed)

    def _detect_batch(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        spec = self.manifest.input
        batch = np.empty((len(images), 3, spec.height, spec.width), np.float32)
        transforms = [preprocess_into(img, spec, batch[i]) for i, img in enumerate(images)]
        outputs = self.backend.infer(batch)
        per_image = split_batch(self.manifest, outputs[0], len(images))
        return [self._postprocess(raw, t) for raw, t in zip(per_image, transforms, strict=True)]

    def _postprocess(self, raw: npt.NDArray[np.float32], t: InputTransform) -> Detections:
        s = self.settings
        xyxy, conf, cls = decode(self.manifest, raw, s.confidence, self._classes)
        keep = nms(xyxy, conf, cls, s.iou, s.max_detections)
        return Detections(t.to_frame(xyxy[keep]), conf[keep], cls[keep])

    def detect(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        """Detect in several frames (e.g. one per camera).

        With a dynamic batch axis the frames go through the model in one call (up to
        ``max_batch``); otherwise one call per frame.
        """
        n = self.batch_size
        out: list[Detections] = []
        for start in range(0, len(images), n):
            out.extend(self._detect_batch(images[start : start + n]))
        return out

    def detect_stream(
        self,
        items: Iterable[T],
        image_of: Callable[[T], npt.NDArray[np.uint8]],
        depth: int | None = None,
    ) -> Iterator[tuple[T, Detections]]:
        """Detect in a stream of items, keeping ``depth`` inferences in flight; order is kept.

        Preprocessing, inference and decoding run in worker threads (they release the GIL),
        so decoding the next frame overlaps with inference of the previous ones.
        """
        depth = depth or max(self.backend.parallel_requests, 1)
        pending: deque[tuple[T, Future[list[Detections]]]] = deque()
        with ThreadPoolExecutor(max_workers=depth, thread_name_prefix="detect") as pool:
            for item in items:
                pending.append((item, pool.submit(self._detect_batch, [image_of(item)])))
                if len(pending) > depth:
                    done, fut = pending.popleft()
                    yield done, fut.result()[0]
            while pending:
                done, fut = pending.popleft()
                yield done, fut.result()[0]
