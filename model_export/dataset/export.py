"""Turn labelled images into a YOLO-format dataset with a train/val split by scene.

Layout written under ``out_dir`` (what ultralytics reads)::

    data.yaml                 path, train/val image folders, class names
    dataset.json              DatasetSummary: classes, which scene went where, counts
    images/{train,val}/*.jpg  copies of the labelled images
    labels/{train,val}/*.txt  one line per box: class cx cy w h, normalised to 0-1

An image's file name in the dataset is its path under the images folder with ``/`` written
as ``__``, so frames of different videos never collide. Images without boxes are kept as
background images (an empty label file).
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
import yaml
from pydantic import BaseModel, ConfigDict, Field

from common.labels import ImageLabels, LabelsError, read_labels
from model_export.dataset.errors import DatasetError
from model_export.dataset.frames import read_frame_index
from model_export.dataset.split import DEFAULT_VAL_FRACTION, scene_keys, split_groups

log = logging.getLogger(__name__)

Side = Literal["train", "val"]
SIDES: tuple[Side, Side] = ("train", "val")
SUMMARY_FILE = "dataset.json"
DATA_YAML = "data.yaml"


class DatasetImage(BaseModel):
    """One image of the dataset: where it is, where it came from, its scene and side."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str = Field(description="path relative to the dataset folder")
    source: str = Field(description="path relative to the labelled images folder")
    scene: str
    split: Side
    boxes: int = Field(ge=0, description="boxes written to its label file")


class SplitCounts(BaseModel):
    """Images and boxes on one side of the split."""

    images: int = 0
    boxes: int = 0


class DatasetSummary(BaseModel):
    """What ``export_yolo_dataset`` wrote (``dataset.json``)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    classes: list[str]
    val_fraction: float
    seed: int
    min_score: float
    labels: str = Field(description="the labels file the dataset was built from")
    scenes: dict[str, Side]
    counts: dict[Side, SplitCounts]
    dropped_boxes: int = Field(description="boxes of other classes or below min_score")
    images: list[DatasetImage]


def yolo_rows(
    xyxy: npt.NDArray[np.float64],
    class_ids: npt.NDArray[np.int64],
    width: int,
    height: int,
) -> npt.NDArray[np.float64]:
    """Boxes in pixels (N, 4 corners) as YOLO rows (M, 5): class, cx, cy, w, h normalised.

    Boxes are clipped to the image first; boxes with no area left are dropped (M <= N).
    """
    boxes = np.asarray(xyxy, np.float64).reshape(-1, 4).copy()
    np.clip(boxes[:, 0::2], 0.0, width, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0.0, height, out=boxes[:, 1::2])
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    keep = (w > 0) & (h > 0)
    rows = np.empty((int(keep.sum()), 5), np.float64)
    rows[:, 0] = np.asarray(class_ids, np.float64)[keep]
    rows[:, 1] = (boxes[keep, 0] + boxes[keep, 2]) / 2 / width
    rows[:, 2] = (boxes[keep, 1] + boxes[keep, 3]) / 2 / height
    rows[:, 3] = w[keep] / width
    rows[:, 4] = h[keep] / height
    return rows


def format_rows(rows: npt.NDArray[np.float64]) -> str:
    """YOLO label file text for rows from ``yolo_rows`` (6 decimals, one box per line)."""
    return "".join(
        f"{int(c)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n" for c, cx, cy, w, h in rows.tolist()
    )


def _prepare_out(out_dir: Path) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not (out_dir / SUMMARY_FILE).is_file():
            raise DatasetError(
                f"{out_dir} is not empty and holds no {SUMMARY_FILE}: choose an empty or new "
                "folder (an earlier dataset folder is replaced)"
            )
        for sub in ("images", "labels"):
            shutil.rmtree(out_dir / sub, ignore_errors=True)
        for name in (SUMMARY_FILE, DATA_YAML):
            (out_dir / name).unlink(missing_ok=True)
    for side in SIDES:
        (out_dir / "images" / side).mkdir(parents=True, exist_ok=True)
        (out_dir / "labels" / side).mkdir(parents=True, exist_ok=True)


def _check_image(path: Path, item: ImageLabels) -> None:
    if not path.is_file():
        raise DatasetError(f"labelled image {path} does not exist")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetError(f"labelled image {path} cannot be decoded")
    if (image.shape[1], image.shape[0]) != (item.width, item.height):
        raise DatasetError(
            f"{path} is {image.shape[1]}x{image.shape[0]} pixels but its labels say "
            f"{item.width}x{item.height}: the labels belong to another image"
        )


def export_yolo_dataset(
    images_dir: Path,
    labels_path: Path,
    out_dir: Path,
    classes: Sequence[str] | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = 0,
    min_score: float = 0.0,
) -> DatasetSummary:
    """Write the YOLO dataset of the images in ``labels_path`` (paths under ``images_dir``).

    ``classes``: the dataset's classes in order (default: every class in the labels, sorted);
    boxes of other classes and boxes scoring below ``min_score`` are dropped. The split puts
    whole scenes (``model_export.dataset.split``) on one side, about ``val_fraction`` of the
    images in val. Returns the summary also written to ``dataset.json``.
    """
    try:
        labels = read_labels(labels_path)
    except LabelsError as exc:
        raise DatasetError(str(exc)) from None
    if not labels:
        raise DatasetError(f"{labels_path} labels no images")
    if not 0.0 <= min_score <= 1.0:
        raise DatasetError(f"min score must be between 0 and 1, got {min_score!r}")
    names = list(classes) if classes else sorted({b.class_name for i in labels for b in i.boxes})
    if not names:
        raise DatasetError(f"{labels_path} has no boxes, so no classes: pass the classes")
    if len(set(names)) != len(names):
        raise DatasetError(f"classes listed twice: {names}")
    frames = read_frame_index(images_dir)
    scenes = scene_keys((item.image for item in labels), frames)
    split = split_groups(Counter(scenes.values()), val_fraction, seed)

    stems: dict[str, str] = {}
    for item in labels:
        flat = item.image.replace("/", "__")
        other = stems.setdefault(Path(flat).stem, item.image)
        if other != item.image:
            raise DatasetError(f"images {other} and {item.image} would share one label file")

    for item in labels:  # every image checked before anything is written
        _check_image(images_dir / item.image, item)
    out_dir.mkdir(parents=True, exist_ok=True)
    _prepare_out(out_dir)
    index = {name: i for i, name in enumerate(names)}
    counts = {side: SplitCounts() for side in SIDES}
    entries: list[DatasetImage] = []
    dropped = 0
    for item in labels:
        src = images_dir / item.image
        side: Side = "val" if scenes[item.image] in split.val else "train"
        kept = [b for b in item.boxes if b.class_name in index and b.score >= min_score]
        rows = yolo_rows(
            np.array([b.xyxy for b in kept], np.float64).reshape(-1, 4),
            np.array([index[b.class_name] for b in kept], np.int64),
            item.width,
            item.height,
        )
        dropped += len(item.boxes) - len(rows)
        flat = item.image.replace("/", "__")
        shutil.copyfile(src, out_dir / "images" / side / flat)
        (out_dir / "labels" / side / f"{Path(flat).stem}.txt").write_text(format_rows(rows))
        counts[side].images += 1
        counts[side].boxes += len(rows)
        entries.append(
            DatasetImage(
                image=f"images/{side}/{flat}",
                source=item.image,
                scene=scenes[item.image],
                split=side,
                boxes=len(rows),
            )
        )
    data = {
        "path": str(out_dir.resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(names)),
    }
    (out_dir / DATA_YAML).write_text(yaml.safe_dump(data, sort_keys=False))
    summary = DatasetSummary(
        classes=names,
        val_fraction=val_fraction,
        seed=seed,
        min_score=min_score,
        labels=str(labels_path.resolve()),
        scenes={s: split.side(s) for s in sorted(set(scenes.values()))},
        counts=counts,
        dropped_boxes=dropped,
        images=entries,
    )
    (out_dir / SUMMARY_FILE).write_text(summary.model_dump_json(indent=2) + "\n")
    log.info(
        "dataset %s: %d train / %d val images from %d scenes, classes %s",
        out_dir,
        counts["train"].images,
        counts["val"].images,
        len(summary.scenes),
        names,
    )
    return summary


def read_summary(dataset_dir: Path) -> DatasetSummary:
    """The ``dataset.json`` of a dataset written by ``export_yolo_dataset``."""
    path = dataset_dir / SUMMARY_FILE
    if not path.is_file():
        raise DatasetError(f"{path} not found: not a dataset written by `retail-export dataset`")
    return DatasetSummary.model_validate_json(path.read_text())
