"""Training data from store footage: frame extraction, YOLO-format export, split by scene.

The steps, each a library function and a ``retail-export dataset`` command:

1. ``extract_frames`` (``dataset frames``): sample videos at a chosen fps, drop
   near-duplicates, write JPEGs and ``frames.jsonl`` (source video and time of each frame).
2. Pre-label with the edge's detector: ``retail-edge detect`` writes ``common.labels`` JSON
   lines (the edge and this package never import each other).
3. ``export_yolo_dataset`` (``dataset export``): YOLO images/labels/data.yaml with a
   train/val split that keeps every video or scene on one side.
"""

from model_export.dataset.errors import DatasetError
from model_export.dataset.export import DatasetSummary, export_yolo_dataset, read_summary
from model_export.dataset.frames import Extraction, FrameRecord, extract_frames
from model_export.dataset.split import GroupSplit, split_groups

__all__ = [
    "DatasetError",
    "DatasetSummary",
    "Extraction",
    "FrameRecord",
    "GroupSplit",
    "export_yolo_dataset",
    "extract_frames",
    "read_summary",
    "split_groups",
]
