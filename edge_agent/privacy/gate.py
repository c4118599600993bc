"""The privacy gate: the only way an image leaves the box, and the only maker of ``SafeImage``.

``PrivacyGate.release`` finds faces (YuNet, two scales), adds the head region of every person
box (for faces too small or turned away), pixelates all of them irreversibly, downscales and
encodes. ``release_heatmap`` draws the occupancy heatmap over a people-free background. Both
return a ``SafeImage``: encoded bytes plus metadata, nothing else. A ``SafeImage`` cannot be
built outside this module (its constructor demands a module-private token), and every sink
that stores or sends images (``ImageExporter``, later the outbox) accepts nothing else, so a
raw frame has no typed way out; ``tests/edge_agent/test_privacy_structure.py`` fails the build
if any code outside this package encodes or writes images itself.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import InitVar, dataclass
from enum import StrEnum
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from edge_agent.analytics.heatmap import overlay_heatmap
from edge_agent.privacy.background import HeatmapBackground
from edge_agent.privacy.errors import PrivacyError
from edge_agent.privacy.faces import FaceDetector
from edge_agent.privacy.regions import (
    anonymise,
    anonymise_mask,
    clip_boxes,
    expand_boxes,
    head_regions,
    resize_u8,
)
from edge_agent.privacy.settings import PrivacySettings

log = logging.getLogger(__name__)

_GATE_TOKEN = object()  # proof that the gate made a SafeImage; never leaves this module

ImageFormat = Literal["jpeg", "png"]
_MIN_JPEG_QUALITY = 30
_SHRINK = 0.8  # each step when an image is still over the byte bound
_MIN_SIDE = 64


class ImagePurpose(StrEnum):
    """Why an image leaves the box (the manifest, the outbox and retention key on it)."""

    ALERT_SNAPSHOT = "alert_snapshot"  # attached to an alert
    HEATMAP = "heatmap"  # occupancy heatmap over a people-free background
    SAMPLE = "sample"  # periodic sample: audits, data collected for labelling
    DEBUG_FRAME = "debug_frame"  # a frame an engineer asked for, still anonymised


@dataclass(frozen=True, slots=True)
class SafeImage:
    """An image that passed the privacy gate: encoded bytes and what the gate did to it.

    Only ``PrivacyGate`` can make one. Attributes: ``data`` the encoded file (JPEG or PNG),
    ``media_type``, ``purpose``, ``width`` / ``height`` in pixels of the encoded image,
    ``faces_blurred`` (faces found and hidden), ``heads_blurred`` (person head regions hidden;
    for a heatmap, the regions where people lingered, hidden whole),
    ``sha256`` (hex digest of ``data``).
    """

    data: bytes
    media_type: Literal["image/jpeg", "image/png"]
    purpose: ImagePurpose
    width: int
    height: int
    faces_blurred: int
    heads_blurred: int
    sha256: str
    token: InitVar[object]

    def __post_init__(self, token: object) -> None:
        if token is not _GATE_TOKEN:
            raise PrivacyError(
                "a SafeImage can only be made by PrivacyGate.release / release_heatmap; pass "
                "the frame through the gate instead of building one"
            )
        if hashlib.sha256(self.data).hexdigest() != self.sha256:
            raise PrivacyError("SafeImage sha256 does not match its data")

    @property
    def extension(self) -> str:
        """File extension for ``data``: ``jpg`` or ``png``."""
        return "jpg" if self.media_type == "image/jpeg" else "png"


@dataclass(frozen=True, slots=True)
class HiddenRegions:
    """Boxes the gate hides, float32 (N, 4) xyxy pixels: padded faces and person heads."""

    faces: npt.NDArray[np.float32]
    heads: npt.NDArray[np.float32]

    @property
    def all(self) -> npt.NDArray[np.float32]:
        """Faces and heads together, (N, 4)."""
        return np.concatenate([self.faces, self.heads])


def _check_image(image: npt.NDArray[np.uint8]) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise PrivacyError(
            f"the privacy gate takes H x W x 3 uint8 BGR images, got {image.shape} {image.dtype}"
        )
    if min(image.shape[:2]) < 1:
        raise PrivacyError(f"empty image {image.shape}")


def _encode(
    image: npt.NDArray[np.uint8], fmt: ImageFormat, quality: int, max_bytes: int
) -> tuple[bytes, int, int]:
    """Encode, lowering JPEG quality and then the size until the result fits ``max_bytes``.

    Returns (data, width, height).
    """
    q = quality
    while True:
        if fmt == "jpeg":
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, q])
        else:
            ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if not ok:
            raise PrivacyError(f"OpenCV could not encode a {image.shape} image as {fmt}")
        data = buf.tobytes()
        h, w = image.shape[:2]
        if len(data) <= max_bytes:
            return data, w, h
        if fmt == "jpeg" and q > _MIN_JPEG_QUALITY:
            q = max(_MIN_JPEG_QUALITY, q - 15)
            continue
        if max(h, w) * _SHRINK < _MIN_SIDE:
            raise PrivacyError(
                f"cannot fit a {fmt} image in {max_bytes} bytes even at {w}x{h}; raise max_bytes"
            )
        size = (max(1, round(w * _SHRINK)), max(1, round(h * _SHRINK)))
        image = resize_u8(image, size, cv2.INTER_AREA)


def _downscale(image: npt.NDArray[np.uint8], max_side: int) -> npt.NDArray[np.uint8]:
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return resize_u8(image, size, cv2.INTER_AREA)


class PrivacyGate:
    """Makes images safe to store or send: faces and heads hidden, downscaled, size-bounded."""

    def __init__(self, faces: FaceDetector, settings: PrivacySettings | None = None) -> None:
        self.faces = faces
        self.settings = settings or PrivacySettings()

    @classmethod
    def open(cls, settings: PrivacySettings) -> PrivacyGate:
        """Load the face model named in ``settings``.

        Raises:
            PrivacyError: no face model configured. ModelError: it cannot be loaded.
        """
        if settings.face_model is None:
            raise PrivacyError(
                "no face model for the privacy gate: set RETAIL_CV_PRIVACY_FACE_MODEL (or pass "
                "--face-model) to the YuNet file, e.g. models/face/yunet_n_dynamic.onnx"
            )
        faces = FaceDetector(
            settings.face_model,
            settings.face_score_threshold,
            settings.face_nms_iou,
            settings.upscale_max_side,
        )
        return cls(faces, settings)

    def find_regions(
        self, image_bgr: npt.NDArray[np.uint8], person_xyxy: npt.ArrayLike
    ) -> HiddenRegions:
        """Where the gate would hide people in this image (boxes only, no pixels).

        Faces are YuNet's boxes grown by ``face_pad``; heads come from the person boxes (see
        ``regions.head_regions``). All in the image's pixels, not clipped.
        """
        _check_image(image_bgr)
        s = self.settings
        faces = self.faces.detect(image_bgr)
        people = np.asarray(person_xyxy, np.float32).reshape(-1, 4)
        heads = head_regions(people, s.head_height_share, s.head_width_share, s.head_pad)
        return HiddenRegions(expand_boxes(faces.xyxy, s.face_pad), heads)

    def _hide_people(
        self, image_bgr: npt.NDArray[np.uint8], person_xyxy: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.uint8], int, int]:
        # Returns (copy with faces and head regions pixelated, faces hidden, heads hidden).
        h, w = image_bgr.shape[:2]
        found = self.find_regions(image_bgr, person_xyxy)
        boxes = clip_boxes(np.concatenate([found.faces, found.heads]), w, h)
        out = anonymise(image_bgr, boxes, self.settings.blocks_across)
        return out, len(found.faces), len(found.heads)

    def release(
        self,
        image_bgr: npt.NDArray[np.uint8],
        person_xyxy: npt.ArrayLike,
        purpose: ImagePurpose,
        *,
        fmt: ImageFormat = "jpeg",
        max_side: int | None = None,
        max_bytes: int | None = None,
    ) -> SafeImage:
        """The privacy-safe version of a camera frame.

        Args:
            image_bgr: the frame, H x W x 3 uint8 BGR (not modified).
            person_xyxy: (N, 4) person boxes in the frame's pixels (detections and tracks;
                more boxes only hide more).
            purpose: why the image leaves the box.
            fmt: ``jpeg`` (photos) or ``png``.
            max_side: longest side of the result in pixels (default from settings).
            max_bytes: most bytes of the encoded result (default from settings); quality and
                then size are lowered until it fits.

        Raises:
            PrivacyError: not an image, or it cannot be made to fit ``max_bytes``.
        """
        _check_image(image_bgr)
        s = self.settings
        hidden, n_faces, n_heads = self._hide_people(image_bgr, person_xyxy)
        small = _downscale(hidden, max_side or s.max_side)
        return self._seal(small, purpose, fmt, max_bytes or s.max_bytes, n_faces, n_heads)

    def release_heatmap(
        self,
        counts: npt.NDArray[np.floating],
        background: HeatmapBackground,
        *,
        max_side: int | None = None,
        max_bytes: int | None = None,
    ) -> SafeImage:
        """The occupancy heatmap (grid_h, grid_w person-seconds) as a PNG over the camera's
        people-free background (see ``HeatmapBackground``), with any face left in it hidden.

        Raises:
            PrivacyError: no frame was sampled, or the PNG cannot fit ``max_bytes``.
        """
        s = self.settings
        if len(background) == 0:
            raise PrivacyError("no frame was sampled for the heatmap background")
        median, lingered = background.median()
        cell = max(8, max(median.shape[:2]) // 24)
        hidden = anonymise_mask(median, lingered, cell)
        hidden, n_faces, _ = self._hide_people(hidden, np.zeros((0, 4), np.float32))
        small = _downscale(hidden, max_side or s.max_side)
        drawn = overlay_heatmap(counts, small, s.heatmap_alpha)
        n_regions = cv2.connectedComponents(lingered.astype(np.uint8))[0] - 1
        return self._seal(
            drawn, ImagePurpose.HEATMAP, "png", max_bytes or s.max_bytes, n_faces, n_regions
        )

    def _seal(
        self,
        image: npt.NDArray[np.uint8],
        purpose: ImagePurpose,
        fmt: ImageFormat,
        max_bytes: int,
        n_faces: int,
        n_heads: int,
    ) -> SafeImage:
        data, w, h = _encode(image, fmt, self.settings.jpeg_quality, max_bytes)
        return SafeImage(
            data=data,
            media_type="image/jpeg" if fmt == "jpeg" else "image/png",
            purpose=ImagePurpose(purpose),
            width=w,
            height=h,
            faces_blurred=n_faces,
            heads_blurred=n_heads,
            sha256=hashlib.sha256(data).hexdigest(),
            token=_GATE_TOKEN,
        )
