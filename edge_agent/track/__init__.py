"""Per-camera multi-object tracking: ByteTrack with optional appearance re-identification."""

from edge_agent.track.bytetrack import ByteTracker
from edge_agent.track.config import TrackerConfig
from edge_agent.track.matching import iou_matrix, linear_assignment
from edge_agent.track.reid import AppearanceEmbedder
from edge_agent.track.tracks import Tracks

__all__ = [
    "AppearanceEmbedder",
    "ByteTracker",
    "TrackerConfig",
    "Tracks",
    "iou_matrix",
    "linear_assignment",
]
