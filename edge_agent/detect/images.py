"""Detect in a folder of still images and express the boxes as labels (``retail-edge detect``).

Pre-labelling for the training pipeline: the edge's own detector runs on extracted frames and
its boxes become ``common.labels.ImageLabels`` lines that ``retail-export dataset export``
reads. Nothing here knows about training; the labels file is the whole interface.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from common.labels import ImageLabels, LabelBox
from edge_agent.detect.detections import Detections
from edge_agent.detect.detector import Detector
from edge_agent.errors import SourceError

log = logging.getLogger(__name__)

#: File suffixes (lower case) treated as images when a folder is listed.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted by relative path."""
    if not folder.is_dir():
        raise SourceError(f"image folder {folder} does not exist or is not a folder")
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _read(path: Path) -> npt.NDArray[np.uint8]:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"image {path} cannot be decoded (damaged or not an image)")
    return image  # type: ignore[return-value]


def to_labels(
    detections: Detections, classes: list[str], image: str, width: int, height: int, source: str
) -> ImageLabels:
    """One image's detections as labels (pixels, class names from ``classes``)."""
    boxes = [
        LabelBox(
            # Hundredths of a pixel and four decimals of score: exact enough, half the bytes.
            xyxy=(round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)),
            class_name=classes[int(c)],
            score=round(min(max(s, 0.0), 1.0), 4),
        )
        for (x1, y1, x2, y2), s, c in zip(
            detections.xyxy.tolist(),
            detections.confidence.tolist(),
            detections.class_id.tolist(),
            strict=True,
        )
    ]
    return ImageLabels(image=image, width=width, height=height, source=source, boxes=boxes)


def detect_images(
    detector: Detector,
    folder: Path,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[ImageLabels]:
    """Run ``detector`` on every image under ``folder``; yields labels in sorted path order.

    ``progress(done, total)`` is called after each image. An image that cannot be decoded
    raises ``SourceError`` naming it (a labels file that silently skips frames would make a
    dataset whose gaps nobody notices).
    """
    paths = list_images(folder)
    if not paths:
        raise SourceError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    m = detector.manifest
    source = f"{m.name} {m.version}"
    shapes: dict[Path, tuple[int, int]] = {}

    def image_of(path: Path) -> npt.NDArray[np.uint8]:
        image = _read(path)
        shapes[path] = (image.shape[1], image.shape[0])
        return image

    for done, (path, dets) in enumerate(detector.detect_stream(paths, image_of), start=1):
        width, height = shapes.pop(path)
        rel = path.relative_to(folder).as_posix()
        yield to_labels(dets, m.classes, rel, width, height, source)
        if progress is not None:
            progress(done, len(paths))
    log.info("labelled %d images under %s with %s", len(paths), folder, source)
