"""The export report: one row per precision (FP32, FP16, INT8), as JSON and a markdown table."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


class Precision(StrEnum):
    """Numeric precision of a variant's weights and activations."""

    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


class VariantResult(BaseModel):
    """How one variant did on this machine and on the evaluation frames."""

    model_config = ConfigDict(extra="forbid")

    precision: Precision
    bundle: str = Field(description="bundle folder of this variant")
    size_bytes: int = Field(ge=0, description="model file size")
    latency_ms_median: float = Field(description="one inference, ONNX Runtime CPU, milliseconds")
    latency_ms_p90: float
    score_rel_error: float = Field(
        description="||s - s_fp32|| / ||s_fp32|| of the raw scores (objectness, classes) over "
        "all eval frames"
    )
    ap50_vs_fp32: float | None = Field(
        description="person AP50 against FP32's own boxes (score >= reference_conf); "
        "None when FP32 finds no person"
    )
    ap50_vs_labels: float | None = Field(
        description="person AP50 against ground-truth labels; None without labelled frames"
    )
    persons: int = Field(description="person boxes scoring >= reference_conf on the eval frames")

    def metrics(self) -> dict[str, float]:
        """The numbers that go into the variant's bundle manifest."""
        out = {
            "latency_ms_median": self.latency_ms_median,
            "score_rel_error": self.score_rel_error,
        }
        if self.ap50_vs_fp32 is not None:
            out["ap50_vs_fp32"] = self.ap50_vs_fp32
        if self.ap50_vs_labels is not None:
            out["ap50_vs_labels"] = self.ap50_vs_labels
        return out


class ExportReport(BaseModel):
    """FP32/FP16/INT8 variants of one model, evaluated on the same frames."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="model name and version")
    family: str
    input: str = Field(description="input WxH in pixels")
    created_at: datetime
    machine: str
    onnxruntime: str
    calibration_frames: list[str] = Field(description="frames the INT8 ranges came from")
    eval_frames: int = Field(description="frames scored (labelled and not)")
    labelled_frames: int = Field(description="eval frames with ground truth")
    labelled_persons: int = Field(description="ground-truth person boxes on them")
    reference_conf: float = Field(description="FP32 boxes at or above this score are the reference")
    latency_runs: int
    variants: list[VariantResult]

    def markdown(self) -> str:
        """A markdown table, one row per variant, with the setting above it."""

        def num(v: float | None, digits: int = 3) -> str:
            return "n/a" if v is None else f"{v:.{digits}f}"

        lines = [
            f"Model {self.model} ({self.family}, input {self.input}); ONNX Runtime "
            f"{self.onnxruntime} CPU on {self.machine}. Latency: median and p90 of "
            f"{self.latency_runs} single-frame calls. {self.eval_frames} eval frames "
            f"({self.labelled_frames} labelled, {self.labelled_persons} persons); INT8 "
            f"calibrated on {len(self.calibration_frames)} other frames. AP50 vs FP32: "
            f"FP32's person boxes with score >= {self.reference_conf} taken as truth.",
            "",
            "| precision | size MB | latency ms (median) | p90 ms | score rel. error "
            "| AP50 vs FP32 | AP50 vs labels | persons |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for v in self.variants:
            lines.append(
                f"| {v.precision.value} | {v.size_bytes / 1e6:.2f} | {v.latency_ms_median:.2f} "
                f"| {v.latency_ms_p90:.2f} | {v.score_rel_error:.4f} | {num(v.ap50_vs_fp32)} "
                f"| {num(v.ap50_vs_labels)} | {v.persons} |"
            )
        return "\n".join(lines) + "\n"

    def write(self, folder: Path) -> tuple[Path, Path]:
        """Write ``report.json`` and ``report.md`` into ``folder``; returns both paths."""
        folder.mkdir(parents=True, exist_ok=True)
        json_path, md_path = folder / REPORT_JSON, folder / REPORT_MD
        json_path.write_text(self.model_dump_json(indent=2) + "\n")
        md_path.write_text(self.markdown())
        return json_path, md_path
