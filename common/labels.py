"""Image labels as JSON lines: the contract between a detector that pre-labels and the tooling.

``retail-edge detect`` writes one :class:`ImageLabels` per line (boxes in pixels of the image,
class names, scores); ``retail-export dataset export`` reads them to build a training dataset.
The edge and the export tooling never import each other: this file is all they share.

``ImageLabels.image`` is the image's path relative to the folder that was labelled, with ``/``
separators, so a labels file stays valid when the folder moves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

LABELS_SCHEMA_VERSION: Literal[1] = 1


class LabelsError(ValueError):
    """A labels file is missing or a line is not a valid ``ImageLabels``; says where."""


class LabelBox(BaseModel):
    """One labelled object: a box in pixels of its image, its class name and score."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    xyxy: tuple[float, float, float, float] = Field(
        description="x1, y1, x2, y2 in pixels of the image (x2 >= x1, y2 >= y1)"
    )
    class_name: str = Field(min_length=1)
    score: float = Field(1.0, ge=0.0, le=1.0, description="detector confidence; 1 for a human")

    @model_validator(mode="after")
    def _ordered(self) -> LabelBox:
        x1, y1, x2, y2 = self.xyxy
        if x2 < x1 or y2 < y1:
            raise ValueError(f"box corners out of order: {self.xyxy}")
        return self


class ImageLabels(BaseModel):
    """Every box in one image, and where the labels came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = LABELS_SCHEMA_VERSION
    image: str = Field(min_length=1, description="path relative to the labelled folder, '/'")
    width: int = Field(gt=0, description="image width in pixels")
    height: int = Field(gt=0, description="image height in pixels")
    source: str = Field(description="model (name and version) or person that labelled it")
    boxes: list[LabelBox] = Field(default_factory=list)


def write_labels(path: Path, labels: Iterable[ImageLabels]) -> int:
    """Write labels as JSON lines (replacing ``path``); returns the number of lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w") as fh:
        for item in labels:
            fh.write(item.model_dump_json() + "\n")
            n += 1
    return n


def iter_labels(path: Path) -> Iterator[ImageLabels]:
    """Read a JSON-lines labels file; ``LabelsError`` names the file and line of a bad entry."""
    if not path.is_file():
        raise LabelsError(f"labels file {path} not found")
    with path.open() as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield ImageLabels.model_validate_json(line)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"]) or "line"
                raise LabelsError(f"{path}:{n}: {where}: {err['msg']}") from None


def read_labels(path: Path) -> list[ImageLabels]:
    """All entries of a labels file; an image listed twice is an error."""
    out = list(iter_labels(path))
    seen: set[str] = set()
    for item in out:
        if item.image in seen:
            raise LabelsError(f"{path}: image {item.image!r} is labelled twice")
        seen.add(item.image)
    return out
