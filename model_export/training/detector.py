"""Fine-tune a YOLO detector with ultralytics on a YOLO dataset, and score it (mAP).

The shell around ultralytics (AGPL, an ``export`` extra, never an edge dependency): it is
imported only when a function here runs. Pretrained weights cannot be downloaded on the
machines this runs on, so training starts from an architecture file (``yolov8n.yaml``:
random weights) or from a ``.pt`` file that is already on disk; a weights name that is not a
file is refused rather than fetched. ``YOLO_OFFLINE=1`` is set (unless already set) so
ultralytics skips its network checks.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model_export.training.errors import TrainingError
from model_export.training.report import ClassMetrics, DetectorReport

log = logging.getLogger(__name__)

#: Architecture trained from scratch when no model is given.
DEFAULT_MODEL = "yolov8n.yaml"


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """Training budget and hardware.

    Attributes:
        epochs: passes over the train split.
        imgsz: training and evaluation image size in pixels (multiple of 32).
        batch: images per optimisation step.
        device: ``"cpu"``, ``"0"`` (first GPU), ...
        seed: random seed (ultralytics runs deterministically with it).
        workers: data-loading processes (0 loads in the training process).
    """

    epochs: int = 50
    imgsz: int = 640
    batch: int = 16
    device: str = "cpu"
    seed: int = 0
    workers: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch < 1 or self.workers < 0:
            raise TrainingError(
                f"epochs and batch must be >= 1 and workers >= 0, got epochs={self.epochs}, "
                f"batch={self.batch}, workers={self.workers}"
            )
        if self.imgsz < 32 or self.imgsz % 32:
            raise TrainingError(f"imgsz must be a multiple of 32 (>= 32), got {self.imgsz}")


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What ``train_detector`` produced.

    Attributes:
        run_dir: the training run's folder (ultralytics' results.csv, args.yaml, weights/).
        weights: the best weights (``weights/best.pt``, chosen on val fitness).
        report: ``weights`` scored on the val split (also in ``run_dir/report.json``).
    """

    run_dir: Path
    weights: Path
    report: DetectorReport


def import_ultralytics() -> Any:
    """The ultralytics package, imported offline; ``TrainingError`` if it is not installed."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    try:
        import ultralytics
    except ImportError as exc:
        raise TrainingError(
            f"ultralytics cannot be imported ({exc}): install the export extra, "
            "pip install -e '.[export]'"
        ) from None
    return ultralytics


def resolve_data(data: Path) -> Path:
    """The ``data.yaml`` of a dataset, given the dataset folder or the file itself."""
    path = data / "data.yaml" if data.is_dir() else data
    if not path.is_file():
        raise TrainingError(
            f"{path} not found: give a dataset folder written by `retail-export dataset export` "
            "or its data.yaml"
        )
    return path


def _check_model(model: str) -> None:
    path = Path(model)
    if path.is_file():
        return
    if path.suffix in (".yaml", ".yml") and len(path.parts) == 1:
        return  # an architecture that ships inside ultralytics (yolov8n.yaml, yolo11n.yaml)
    raise TrainingError(
        f"model {model} not found: weights cannot be downloaded here; start from an "
        "architecture such as yolov8n.yaml (random weights) or give a .pt file on disk"
    )


def evaluate_detector(
    weights: Path,
    data: Path,
    split: str = "val",
    imgsz: int = 640,
    batch: int = 16,
    device: str = "cpu",
) -> DetectorReport:
    """Score ``weights`` on one split of a dataset (ultralytics val): mAP50, mAP50-95, P, R.

    Raises ``TrainingError`` when the weights are missing or the split has no labelled box
    (mAP would be undefined, and ultralytics would report 0).
    """
    if not weights.is_file():
        raise TrainingError(f"weights {weights} not found")
    data_yaml = resolve_data(data)
    yolo = import_ultralytics().YOLO(str(weights))
    seen: list[int] = []
    yolo.add_callback("on_val_end", lambda validator: seen.append(int(validator.seen)))
    with tempfile.TemporaryDirectory(prefix="retail-export-val-") as tmp:
        metrics = yolo.val(
            data=str(data_yaml),
            split=split,
            imgsz=imgsz,
            batch=batch,
            device=device,
            workers=0,
            plots=False,
            save_json=False,
            verbose=False,
            project=tmp,
            name="val",
        )
    names = [str(metrics.names[i]) for i in sorted(metrics.names)]
    boxes_per_class = np.asarray(metrics.nt_per_class, dtype=np.int64).reshape(-1)
    instances = int(boxes_per_class.sum())
    if instances == 0:
        raise TrainingError(
            f"the {split} split of {data_yaml} has no labelled boxes: mAP is undefined"
        )
    box = metrics.box
    ap50 = dict(zip(metrics.ap_class_index.tolist(), np.asarray(box.ap50).tolist(), strict=True))
    ap = dict(zip(metrics.ap_class_index.tolist(), np.asarray(box.ap).tolist(), strict=True))
    per_class = {
        name: ClassMetrics(
            instances=int(boxes_per_class[i]),
            map50=float(ap50.get(i, 0.0)),
            map50_95=float(ap.get(i, 0.0)),
        )
        for i, name in enumerate(names)
        if boxes_per_class[i] > 0
    }
    return DetectorReport(
        weights=str(weights.resolve()),
        data=str(data_yaml.resolve()),
        split=split,
        imgsz=imgsz,
        images=seen[-1] if seen else 0,
        instances=instances,
        classes=names,
        map50=float(box.map50),
        map50_95=float(box.map),
        precision=float(box.mp),
        recall=float(box.mr),
        per_class=per_class,
    )


def train_detector(
    data: Path,
    out_dir: Path,
    model: str = DEFAULT_MODEL,
    settings: TrainSettings | None = None,
) -> TrainResult:
    """Train ``model`` on a YOLO dataset into ``out_dir``, then score the best weights on val.

    ``model`` is an architecture (``yolov8n.yaml``: random weights, classes from the dataset)
    or a ``.pt`` file to fine-tune. Writes ``out_dir/weights/{best,last}.pt``, ultralytics'
    ``results.csv`` and ``args.yaml``, and ``out_dir/report.json`` (the val report).
    """
    s = settings or TrainSettings()
    data_yaml = resolve_data(data)
    _check_model(model)
    out_dir = out_dir.resolve()
    yolo = import_ultralytics().YOLO(model)
    log.info("training %s on %s for %d epochs at %d px", model, data_yaml, s.epochs, s.imgsz)
    try:
        yolo.train(
            data=str(data_yaml),
            epochs=s.epochs,
            imgsz=s.imgsz,
            batch=s.batch,
            device=s.device,
            workers=s.workers,
            seed=s.seed,
            deterministic=True,
            project=str(out_dir.parent),
            name=out_dir.name,
            exist_ok=True,
            plots=False,
            verbose=False,
        )
    except (RuntimeError, FileNotFoundError) as exc:  # ultralytics' dataset and model errors
        raise TrainingError(f"training on {data_yaml} failed: {exc}") from exc
    weights = out_dir / "weights" / "best.pt"
    if not weights.is_file():
        raise TrainingError(f"training finished without writing {weights}")
    report = evaluate_detector(
        weights, data_yaml, "val", imgsz=s.imgsz, batch=s.batch, device=s.device
    )
    (out_dir / "report.json").write_text(report.model_dump_json(indent=2) + "\n")
    return TrainResult(out_dir, weights, report)
