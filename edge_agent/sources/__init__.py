"""Camera ingestion: parse a camera `source`, read files and live streams into `Frame`s.

- `parse_source` / `open_source`: what a `source` setting means, and opening it with OpenCV.
- `FileSource`: a video file as a plain iterator (batch analysis).
- `CameraReader`: one thread per camera, newest-frame buffer, sampling, reconnects, health.
"""

from edge_agent.sources.backoff import BackoffPolicy, backoff_delay
from edge_agent.sources.camera_reader import DEFAULT_TARGET_FPS, CameraReader
from edge_agent.sources.capture import CaptureInfo, capture_info, open_source
from edge_agent.sources.file_source import FileSource
from edge_agent.sources.frame import Frame
from edge_agent.sources.health import CameraHealth, CameraState, RateMeter
from edge_agent.sources.sampling import MediaClock, MediaTimeSampler
from edge_agent.sources.spec import SourceKind, SourceSpec, parse_source

__all__ = [
    "DEFAULT_TARGET_FPS",
    "BackoffPolicy",
    "CameraHealth",
    "CameraReader",
    "CameraState",
    "CaptureInfo",
    "FileSource",
    "Frame",
    "MediaClock",
    "MediaTimeSampler",
    "RateMeter",
    "SourceKind",
    "SourceSpec",
    "backoff_delay",
    "capture_info",
    "open_source",
    "parse_source",
]
