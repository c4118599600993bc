"""Product image datasets in the Grocery Store Dataset layout (official split files).

``DIR/classes.csv`` (with a header) maps a class name (column 1) to its fine class id
(column 2). A split file ``DIR/{train,val,test}.txt`` has one line per image:
``relative/path.jpg, fine class id, coarse class id`` (the coarse id is not used). Paths are
relative to DIR.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from model_export.classifier.errors import ClassifierError


@dataclass(frozen=True, slots=True)
class LabelledImages:
    """The images of one split and the class name of each."""

    split: str
    paths: tuple[Path, ...]
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def labels(self, classes: tuple[str, ...]) -> list[int]:
        """Index of each image's class in ``classes``; ClassifierError names unknown ones."""
        index = {name: i for i, name in enumerate(classes)}
        unknown = sorted({n for n in self.names if n not in index})
        if unknown:
            raise ClassifierError(
                f"{self.split}.txt has classes the model does not know: {unknown} "
                f"(the model has {len(classes)} classes)"
            )
        return [index[n] for n in self.names]


def read_class_names(root: Path) -> dict[int, str]:
    """Fine class id -> class name, from ``root/classes.csv``."""
    path = root / "classes.csv"
    if not path.is_file():
        raise ClassifierError(f"{path} not found: the dataset folder needs classes.csv")
    names: dict[int, str] = {}
    with path.open(newline="") as fh:
        rows = csv.reader(fh)
        next(rows, None)  # header
        for n, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) < 2 or not row[1].strip().isdigit():
                raise ClassifierError(f"{path}:{n}: expected 'class name, class id, ...'")
            names[int(row[1])] = row[0].strip()
    if not names:
        raise ClassifierError(f"{path} lists no classes")
    return names


def read_split(root: Path, split: str, names_by_id: dict[int, str]) -> LabelledImages:
    """The images of ``root/{split}.txt``; every listed image must exist and every id be known."""
    path = root / f"{split}.txt"
    if not path.is_file():
        raise ClassifierError(f"split file {path} not found")
    paths: list[Path] = []
    names: list[str] = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2 or not parts[1].isdigit():
            raise ClassifierError(f"{path}:{n}: expected 'path, class id, ...', got {line!r}")
        class_id = int(parts[1])
        if class_id not in names_by_id:
            raise ClassifierError(f"{path}:{n}: class id {class_id} is not in classes.csv")
        image = root / parts[0]
        if not image.is_file():
            raise ClassifierError(f"{path}:{n}: image {image} does not exist")
        paths.append(image)
        names.append(names_by_id[class_id])
    if not paths:
        raise ClassifierError(f"{path} lists no images")
    return LabelledImages(split, tuple(paths), tuple(names))


def load_split(root: Path, split: str) -> LabelledImages:
    """``read_split`` with the class names of ``root/classes.csv``."""
    return read_split(root, split, read_class_names(root))


def train_classes(root: Path, train: LabelledImages) -> tuple[str, ...]:
    """The model's classes: those in the train split, in ascending class-id order."""
    order = {name: cid for cid, name in read_class_names(root).items()}
    return tuple(sorted(set(train.names), key=lambda name: order[name]))
