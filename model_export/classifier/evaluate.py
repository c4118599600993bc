"""Top-1 accuracy, per-class accuracy, confusion matrix and look-alike pairs, as JSON or a table."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class ClassScore:
    """Accuracy of one class: ``correct`` of ``total`` images."""

    name: str
    correct: int
    total: int

    @property
    def accuracy(self) -> float:
        """Fraction correct, 0-1 (NaN when the class has no images)."""
        return self.correct / self.total if self.total else float("nan")


@dataclass(frozen=True)
class ConfusedPair:
    """Two classes mixed up: ``a_as_b`` images of ``a`` called ``b`` and ``b_as_a`` the reverse."""

    a: str
    b: str
    a_as_b: int
    b_as_a: int

    @property
    def total(self) -> int:
        """Mistakes between the two classes, both directions."""
        return self.a_as_b + self.b_as_a


@dataclass(frozen=True)
class EvalReport:
    """Scores of one classifier on one split."""

    split: str
    top1: float
    n_images: int
    per_class: list[ClassScore]
    confusion: list[list[int]]
    confused_pairs: list[ConfusedPair]

    def to_json(self, top_pairs: int = 10) -> dict[str, object]:
        """A JSON-ready summary: top1, n, per-class accuracy, the most confused pairs."""
        return {
            "split": self.split,
            "top1": self.top1,
            "n": self.n_images,
            "classes": len(self.per_class),
            "per_class": [
                {**asdict(c), "accuracy": c.accuracy if c.total else None} for c in self.per_class
            ],
            "confused_pairs": [
                {**asdict(p), "total": p.total} for p in self.confused_pairs[:top_pairs]
            ],
        }

    def table(self, top_pairs: int = 10) -> str:
        """Per-class accuracy and the most confused pairs as a plain-text table."""
        width = max(len(c.name) for c in self.per_class)
        lines = [f"{self.split}: top-1 {self.top1:.3f} on {self.n_images} images", ""]
        lines.append(f"{'class':<{width}}  correct/total  accuracy")
        for c in self.per_class:
            lines.append(f"{c.name:<{width}}  {c.correct:>7}/{c.total:<5}  {c.accuracy:8.3f}")
        lines += ["", "most confused pairs (a called b / b called a):"]
        for p in self.confused_pairs[:top_pairs]:
            lines.append(f"  {p.total:3d}  {p.a} <-> {p.b}  ({p.a_as_b} / {p.b_as_a})")
        return "\n".join(lines)


def evaluate(
    split: str, predicted: npt.ArrayLike, truth: npt.ArrayLike, class_names: tuple[str, ...]
) -> EvalReport:
    """Score predicted class indices against true ones (both (N,) ints into ``class_names``)."""
    pred = np.asarray(predicted, np.int64)
    true = np.asarray(truth, np.int64)
    k = len(class_names)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (true, pred), 1)
    per_class = [
        ClassScore(name, int(confusion[i, i]), int(confusion[i].sum()))
        for i, name in enumerate(class_names)
    ]
    pairs = [
        ConfusedPair(class_names[i], class_names[j], int(confusion[i, j]), int(confusion[j, i]))
        for i in range(k)
        for j in range(i + 1, k)
        if confusion[i, j] + confusion[j, i] > 0
    ]
    pairs.sort(key=lambda p: (-p.total, p.a, p.b))
    return EvalReport(
        split=split,
        top1=float((pred == true).mean()) if len(true) else float("nan"),
        n_images=len(true),
        per_class=per_class,
        confusion=confusion.tolist(),
        confused_pairs=pairs,
    )


def evaluate_bundle(dataset: Path, bundle: Path, split: str = "test") -> EvalReport:
    """Score a bundle's ONNX model (ONNX Runtime, as on the edge) on ``dataset/{split}.txt``.

    Raises ClassifierError for a missing or malformed dataset or bundle, an unreadable image,
    or a class the model does not know.
    """
    from model_export.classifier.dataset import load_split
    from model_export.classifier.inference import BundleRunner

    runner = BundleRunner(bundle)
    images = load_split(dataset, split)
    classes = tuple(runner.manifest.classes)
    truth = images.labels(classes)
    return evaluate(split, runner.predict(images.paths), truth, classes)
