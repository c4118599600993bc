"""ONNX export of an ultralytics YOLO detector (weights file or architecture), simplified.

The shell around ultralytics (AGPL, the ``export`` extra, never an edge dependency): it is
imported only when a function here runs. Pretrained weights cannot be downloaded here, so the
source is a ``.pt`` file on disk or an architecture file such as ``yolov8n.yaml`` (random
weights, seeded); a weights name that is not a file is refused rather than fetched.
``YOLO_OFFLINE=1`` is set (unless already set) so ultralytics skips its network checks.

The export is static batch 1, FP32, simplified by onnxslim; the edge's OpenVINO runtime can
still batch it (``Detector`` makes the batch axis dynamic and checks the result).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from common.catalog import ultralytics_manifest
from common.manifest import ModelManifest
from model_export.bundle.errors import ExportError

log = logging.getLogger(__name__)


def import_ultralytics() -> Any:
    """The ultralytics package, imported offline; ``ExportError`` if it is not installed."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    try:
        import ultralytics
    except ImportError as exc:
        raise ExportError(
            f"ultralytics cannot be imported ({exc}): install the export extra, "
            "pip install -e '.[export]'"
        ) from exc
    return ultralytics


def export_yolo(
    source: str | Path,
    imgsz: int,
    out_dir: Path,
    classes: list[str] | None = None,
    name: str | None = None,
    seed: int = 0,
) -> tuple[Path, ModelManifest]:
    """Export ``source`` to ``out_dir/<name>.onnx``; returns the file and its manifest.

    Args:
        source: a ``.pt`` weights file, or an ultralytics architecture (``yolov8n.yaml``, a
            name ultralytics resolves from its package, or a path).
        imgsz: square input size in pixels (a multiple of 32).
        classes: class names in output order; default the model's own (``'0'``, ``'1'``, ...
            for an architecture file). Must match the model's class count.
        name: model name (default the source's stem).
        seed: torch seed for the random weights of an architecture file.

    Raises:
        ExportError: ultralytics is missing, the weights file is absent, the size or the
            class list is wrong, or the export fails.
    """
    if imgsz % 32:
        raise ExportError(f"--imgsz {imgsz} must be a multiple of 32 (the largest stride)")
    text = str(source)
    is_arch = text.endswith((".yaml", ".yml"))
    if not is_arch and not Path(text).is_file():
        raise ExportError(f"weights file {text} not found (nothing is downloaded here)")
    if importlib.util.find_spec("onnxslim") is None:
        # ultralytics would only warn and write an unsimplified graph.
        raise ExportError("onnxslim is not installed: pip install -e '.[export]'")
    ul = import_ultralytics()
    import torch

    torch.manual_seed(seed)
    stem = name or Path(text).stem
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="retail-export-yolo-") as tmp:
        # Export from a checkpoint inside tmp: ultralytics writes the .onnx beside its source
        # (an architecture name resolves to the current folder otherwise).
        checkpoint = Path(tmp) / f"{stem}.pt"
        try:
            if is_arch:
                ul.YOLO(text).save(str(checkpoint))
            else:
                shutil.copyfile(text, checkpoint)
            model = ul.YOLO(str(checkpoint))
            names = [str(n) for n in model.names.values()]
            if classes is not None and len(classes) != len(names):
                raise ExportError(
                    f"{len(classes)} class names given but the model has {len(names)} classes"
                )
            exported = Path(model.export(format="onnx", imgsz=imgsz, simplify=True))
        except ExportError:
            raise
        except Exception as exc:  # ultralytics and torch raise many types
            raise ExportError(f"ultralytics export of {text} failed: {exc}") from exc
        target = out_dir / f"{stem}.onnx"
        shutil.move(exported, target)
    manifest = ultralytics_manifest(
        stem,
        imgsz,
        imgsz,
        classes or names,
        version="1",
        source=f"ultralytics {ul.__version__} export of {Path(text).name} (AGPL-3.0 tooling)",
    )
    log.info("exported %s at %dx%d to %s", text, imgsz, imgsz, target)
    return target, manifest
