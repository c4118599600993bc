"""The privacy gate: every image that is stored or leaves the box passes through here.

- ``faces``: YuNet face detection (OpenCV ``FaceDetectorYN``), two scales for small faces.
- ``regions``: face and head regions, irreversible pixelation (pure functions).
- ``gate``: ``PrivacyGate.release`` / ``release_heatmap``, the only makers of ``SafeImage``.
- ``background``: a people-free heatmap background (median of sampled frames).
- ``sinks``: ``ImageExporter`` (audit folder + manifest); sinks accept only ``SafeImage``.
- ``snapshots``: alert snapshots, periodic samples and the heatmap of one camera.
- ``retention``: delete the oldest image files beyond an age or a total size.
- ``debug_dump``: raw frames for debugging, only when switched on explicitly, loudly logged.

Nothing outside this package encodes or writes images (``tests/edge_agent/
test_privacy_structure.py`` enforces it), so an image can only leave the box as a
``SafeImage``. The auditor that checks the gate (RetinaFace) lives under ``tests/`` so the
gate cannot use it.
"""

from edge_agent.privacy.background import HeatmapBackground
from edge_agent.privacy.debug_dump import RawFrameDebugDump
from edge_agent.privacy.errors import PrivacyError
from edge_agent.privacy.faces import FaceDetector, Faces
from edge_agent.privacy.gate import HiddenRegions, ImagePurpose, PrivacyGate, SafeImage
from edge_agent.privacy.retention import RetentionResult, enforce_retention, plan_retention
from edge_agent.privacy.settings import PrivacySettings
from edge_agent.privacy.sinks import (
    ImageExporter,
    ImageRecord,
    ImageSink,
    OutboxImageSink,
    TeeSink,
    read_manifest,
)
from edge_agent.privacy.snapshots import CameraSnapshots, export_snapshots, person_boxes

__all__ = [
    "CameraSnapshots",
    "FaceDetector",
    "Faces",
    "HeatmapBackground",
    "HiddenRegions",
    "ImageExporter",
    "ImagePurpose",
    "ImageRecord",
    "ImageSink",
    "OutboxImageSink",
    "PrivacyError",
    "PrivacyGate",
    "PrivacySettings",
    "RawFrameDebugDump",
    "RetentionResult",
    "SafeImage",
    "TeeSink",
    "enforce_retention",
    "export_snapshots",
    "person_boxes",
    "plan_retention",
    "read_manifest",
]
