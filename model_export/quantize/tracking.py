"""Optional MLflow tracking of export runs: used when ``mlflow`` is installed, skipped otherwise.

MLflow is not a dependency: where it is installed (the original design's tracking server,
``MLFLOW_TRACKING_URI``), each export report becomes a run with one metric per variant and
the report files as artifacts. Where it is not, nothing is written and the log says so.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

from model_export.quantize.report import ExportReport

log = logging.getLogger(__name__)


def mlflow_available() -> bool:
    """True when the ``mlflow`` package can be imported."""
    return importlib.util.find_spec("mlflow") is not None


def log_export_run(report: ExportReport, artifacts: Sequence[Path], run_name: str) -> bool:
    """Log ``report`` as an MLflow run when MLflow is installed; returns whether it was logged."""
    if not mlflow_available():
        log.info("mlflow is not installed: export run %s not tracked", run_name)
        return False
    import mlflow

    with mlflow.start_run(run_name=run_name):
        mlflow.log_params(
            {
                "model": report.model,
                "family": report.family,
                "input": report.input,
                "calibration_frames": len(report.calibration_frames),
                "eval_frames": report.eval_frames,
                "reference_conf": report.reference_conf,
            }
        )
        for variant in report.variants:
            for name, value in variant.metrics().items():
                mlflow.log_metric(f"{variant.precision.value}.{name}", value)
        for path in artifacts:
            mlflow.log_artifact(str(path))
    log.info("export run %s logged to MLflow", run_name)
    return True
