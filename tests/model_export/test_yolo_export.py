"""``retail-export yolo export`` and ``quantize``: FP32/FP16/INT8 bundles scored on real frames.

yolov8n.yaml is exported with random weights (nothing can be downloaded here): its export,
variants and bundles are checked end to end, but its detections mean nothing. The accuracy
of the variants is checked on the real YOLOX-nano against real frames.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from common.bundle import verify_bundle
from common.detection.nms import box_iou
from common.detection.preprocess import preprocess_into
from common.manifest import DecoderFamily
from common.signing import TrustedKeys, generate_key_pair, load_private_key
from edge_agent.detect.detector import Detector, DetectorSettings
from model_export.bundle.importer import ImportOptions, import_model
from model_export.cli import main
from model_export.quantize.evaluate import PersonBoxes, average_precision, score_error
from model_export.quantize.report import ExportReport
from model_export.quantize.tracking import log_export_run, mlflow_available
from model_export.quantize.variants import float_tail

YOLOX = "models/person/yolox_nano.onnx"
FEW_FRAMES = [
    "--videos",
    "videos/one-by-one-person-detection.mp4",
    "videos/store-aisle-detection.gif",
    "--calib-frames",
    "8",
    "--eval-frames",
    "6",
    "--latency-runs",
    "3",
]


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrustedKeys]:
    root = tmp_path_factory.mktemp("keys")
    private, _ = generate_key_pair(root)
    return private, TrustedKeys.from_dir(root)


def _ops(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in onnx.load(str(path)).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def _variant(out: Path, precision: str, trusted: TrustedKeys) -> tuple[Path, dict[str, float]]:
    verified = verify_bundle(out / precision, trusted)
    return verified.model_path, verified.manifest.metrics


def test_yolov8n_architecture_export_end_to_end(
    assets: Path,
    tmp_path: Path,
    signer: tuple[Path, TrustedKeys],
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "yolov8n"
    argv = ["yolo", "export", "--arch", "yolov8n.yaml", "--imgsz", "160", "--out", str(out)]
    classes = ["--classes", str(assets / "models/person/coco.names")]
    code = main([*argv, *classes, "--key", str(signer[0]), *FEW_FRAMES])
    stdout = capsys.readouterr().out
    assert code == 0
    # stdout carries the table and the report path only (ultralytics' console went to stderr).
    assert json.loads(stdout.strip().splitlines()[-1]) == {"report": str(out / "report.json")}
    assert "| int8 |" in stdout and "Ultralytics" not in stdout

    trusted = signer[1]
    fp32, fp32_metrics = _variant(out, "fp32", trusted)
    fp16, _ = _variant(out, "fp16", trusted)
    int8, int8_metrics = _variant(out, "int8", trusted)
    # Simplified ultralytics export: static 1x3x160x160 in, [1, 84, 525] out, its metadata.
    model = onnx.load(str(fp32))
    assert {p.key for p in model.metadata_props} >= {"names", "imgsz"}
    assert [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim] == [1, 84, 525]
    # FP16 weights behind float32 inputs and outputs; INT8 QDQ with a float decoding tail.
    half = onnx.load(str(fp16))
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in half.graph.initializer)
    assert half.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert half.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    ops = _ops(int8)
    assert ops["QuantizeLinear"] > 50 and ops["DequantizeLinear"] > 50
    assert int8.stat().st_size < fp32.stat().st_size / 3
    assert fp16.stat().st_size < fp32.stat().st_size * 0.6

    report = ExportReport.model_validate_json((out / "report.json").read_text())
    rows = {v.precision.value: v for v in report.variants}
    assert set(rows) == {"fp32", "fp16", "int8"}
    assert report.labelled_frames == 12 and report.eval_frames == 18
    assert len(report.calibration_frames) == 8
    assert rows["fp32"].score_rel_error == 0.0
    assert 0 < rows["fp16"].score_rel_error < 0.01
    assert 0 < rows["int8"].score_rel_error < 0.05
    assert all(v.latency_ms_median > 0 for v in rows.values())
    # Random weights find no person: agreement is undefined, and the report says so.
    assert rows["fp32"].ap50_vs_fp32 is None and rows["fp32"].persons == 0
    assert int8_metrics["latency_ms_median"] == rows["int8"].latency_ms_median
    assert "ap50_vs_fp32" not in fp32_metrics
    assert "| n/a |" in (out / "report.md").read_text()

    # Every variant loads at the edge from its signed bundle, and the edge's runtime gives the
    # same scores as the evaluation did.
    frame = cv2.imread(str(assets / "images/astronaut.png"))
    outputs = {}
    for precision in ("fp32", "fp16", "int8"):
        det = Detector.open(out / precision, trusted_keys=signer[0].parent)
        tensor = np.empty((1, 3, 160, 160), np.float32)
        preprocess_into(frame, det.manifest.input, tensor[0])
        outputs[precision] = det.backend.infer(tensor)[0]
        assert len(det.detect([frame])) == 1
    for precision in ("fp16", "int8"):
        err = score_error(det.manifest, [outputs[precision]], [outputs["fp32"]])
        assert 0 < err < 0.05


def test_export_refuses_a_weights_file_that_is_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["yolo", "export", "--weights", str(tmp_path / "best.pt"), "--out", str(tmp_path)])
    assert code == 2
    assert "not found (nothing is downloaded here)" in capsys.readouterr().err


def test_yolox_fp16_and_int8_agree_with_fp32_on_real_frames(
    assets: Path,
    ultralytics_images: Path,
    tmp_path: Path,
    signer: tuple[Path, TrustedKeys],
    capsys: pytest.CaptureFixture[str],
) -> None:
    bundle = tmp_path / "yolox"
    import_model(
        assets / YOLOX,
        bundle,
        ImportOptions(family=DecoderFamily.YOLOX),
        load_private_key(signer[0]),
    )
    out = tmp_path / "variants"
    trusted_dir = signer[0].parent
    argv = ["quantize", str(bundle), "--trusted-keys", str(trusted_dir), "--out", str(out)]
    code = main([*argv, "--key", str(signer[0]), *FEW_FRAMES])
    capsys.readouterr()
    assert code == 0
    report = ExportReport.model_validate_json((out / "report.json").read_text())
    rows = {v.precision.value: v for v in report.variants}
    # MOT17-mini: 12 labelled 1080p frames; YOLOX-nano finds few of the small distant people.
    assert report.labelled_frames == 12 and report.labelled_persons > 300
    assert rows["fp32"].ap50_vs_fp32 == 1.0
    assert 0.35 < (rows["fp32"].ap50_vs_labels or 0) < 0.6
    assert rows["fp32"].persons > 50
    assert (rows["fp16"].ap50_vs_fp32 or 0) > 0.97
    assert abs((rows["fp16"].ap50_vs_labels or 0) - (rows["fp32"].ap50_vs_labels or 0)) < 0.02
    # INT8 (post-training, min-max) loses accuracy on this nano model, but stays close.
    assert 0.6 < (rows["int8"].ap50_vs_fp32 or 0) < 1.0
    assert 0.15 < (rows["int8"].ap50_vs_labels or 0) <= (rows["fp32"].ap50_vs_labels or 0)

    # The INT8 bundle at the edge still finds the bus.jpg people where FP32 does.
    img = cv2.imread(str(ultralytics_images / "bus.jpg"))
    settings = DetectorSettings(confidence=0.25)
    ref = Detector.open(out / "fp32", trusted_keys=trusted_dir, settings=settings)
    q = Detector.open(out / "int8", trusted_keys=trusted_dir, settings=settings)
    a, b = ref.detect([img])[0], q.detect([img])[0]
    assert len(a) == 4 and len(b) >= 3
    assert (box_iou(a.xyxy[:3], b.xyxy).max(axis=1) > 0.8).all()
    assert q.manifest.version.endswith("-int8")
    assert q.manifest.metrics["ap50_vs_fp32"] == rows["int8"].ap50_vs_fp32


def _boxes(*rows: tuple[float, float, float, float, float]) -> PersonBoxes:
    arr = np.asarray(rows, np.float32).reshape(-1, 5)
    return PersonBoxes(arr[:, :4], arr[:, 4])


def test_average_precision_by_hand() -> None:
    truth = [np.asarray([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)]
    perfect = _boxes((0, 0, 10, 10, 0.9), (20, 20, 30, 30, 0.8))
    assert average_precision([perfect], truth) == 1.0
    assert average_precision([_boxes()], truth) == 0.0
    assert average_precision([perfect], [np.zeros((0, 4), np.float32)]) is None
    # A false positive ranked first: precision 1/2 at recall 1/2, then 2/3 at recall 1; the
    # envelope takes the best precision at any higher recall, 2/3, for both halves.
    fp_first = _boxes((50, 50, 60, 60, 0.95), (0, 0, 10, 10, 0.9), (20, 20, 30, 30, 0.8))
    assert average_precision([fp_first], truth) == pytest.approx(2 / 3)
    # A false positive ranked between the two: 1 at recall 1/2, 2/3 at recall 1.
    fp_middle = _boxes((0, 0, 10, 10, 0.9), (50, 50, 60, 60, 0.85), (20, 20, 30, 30, 0.8))
    assert average_precision([fp_middle], truth) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # A duplicate of a matched box is a false positive; below IoU 0.5 is a miss.
    dup = _boxes((0, 0, 10, 10, 0.9), (0, 0, 10, 10, 0.85))
    assert average_precision([dup], truth) == pytest.approx(0.5)
    shifted = _boxes((6, 0, 16, 10, 0.9))
    assert average_precision([shifted], truth) == 0.0


def test_float_tail_keeps_the_decoding_in_float(assets: Path) -> None:
    tail = set(float_tail(onnx.load(str(assets / YOLOX))))
    # YOLOX: the per-level sigmoids and concatenations, the final reshape/concat/transpose.
    assert {"Concat_422", "Transpose_423", "Sigmoid_329", "Concat_331"} <= tail
    assert not any(name.startswith("Conv") for name in tail)


def test_mlflow_is_an_optional_seam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # mlflow is not installed here: the run is not tracked, nothing is written.
    assert not mlflow_available()
    monkeypatch.chdir(tmp_path)
    report = ExportReport.model_validate_json(
        json.dumps(
            {
                "model": "m 1",
                "family": "yolox",
                "input": "416x416",
                "created_at": "2026-01-01T00:00:00Z",
                "machine": "x",
                "onnxruntime": "1",
                "calibration_frames": [],
                "eval_frames": 1,
                "labelled_frames": 0,
                "labelled_persons": 0,
                "reference_conf": 0.25,
                "latency_runs": 1,
                "variants": [],
            }
        )
    )
    assert log_export_run(report, [], "run") is False
    assert list(tmp_path.iterdir()) == []
