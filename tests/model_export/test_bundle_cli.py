"""``retail-export keys|import|sign|verify|pack`` on the real models in the shared assets."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from common.bundle import MANIFEST_FILE, SIGNATURE_FILE, verify_bundle
from common.catalog import KNOWN_MODELS
from common.signing import TrustedKeys
from model_export.cli import main

YOLOX = "models/person/yolox_nano.onnx"
RETAIL_SSD = "models/person/person-detection-retail-0013.xml"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object], str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else {}, err


@pytest.fixture()
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    code, out, _ = run(["keys", "generate", "--out", str(tmp_path / "keys")], capsys)
    assert code == 0
    assert stat.S_IMODE(Path(str(out["private_key"])).stat().st_mode) == 0o600
    assert len(str(out["key_id"])) == 16
    return tmp_path / "keys"


def test_import_sign_verify_yolox(
    assets: Path, keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "yolox"
    code, out, _ = run(
        ["import", str(assets / YOLOX), "--family", "yolox", "--out", str(bundle)], capsys
    )
    assert code == 0 and out["signed"] is False
    # The manifest starts from the catalogue entry for this exact file.
    known = next(m for m in KNOWN_MODELS.values() if m.name == "yolox-nano")
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    assert manifest["input"] == json.loads(known.input.model_dump_json())
    assert manifest["classes"][0] == "person" and len(manifest["classes"]) == 80
    assert manifest["files"] == {"yolox_nano.onnx": known.sha256}

    code, _, err = run(["verify", str(bundle), "--trusted-keys", str(keys)], capsys)
    assert code == 2 and "(unsigned)" in err

    code, out, _ = run(["sign", str(bundle), "--key", str(keys / "signing.key")], capsys)
    assert code == 0
    code, out, _ = run(["verify", str(bundle), "--trusted-keys", str(keys)], capsys)
    assert code == 0 and out["verified"] is True and out["name"] == "yolox-nano"

    code, out, _ = run(["pack", str(bundle), "--out", str(tmp_path / "y.tar")], capsys)
    assert code == 0
    code, out, _ = run(["verify", str(tmp_path / "y.tar"), "--trusted-keys", str(keys)], capsys)
    assert code == 0 and out["version"] == known.version


def test_verify_reports_what_failed(
    assets: Path, keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "yolox"
    key = str(keys / "signing.key")
    args = ["import", str(assets / YOLOX), "--family", "yolox", "--out", str(bundle)]
    assert run([*args, "--key", key], capsys)[0] == 0
    model = bundle / "yolox_nano.onnx"
    model.write_bytes(model.read_bytes()[:-1] + b"\0")
    code, _, err = run(["verify", str(bundle), "--trusted-keys", str(keys)], capsys)
    assert code == 2 and "(hash_mismatch)" in err and "yolox_nano.onnx" in err

    other = tmp_path / "other"
    assert run(["keys", "generate", "--out", str(other)], capsys)[0] == 0
    code, _, err = run(["verify", str(bundle), "--trusted-keys", str(other)], capsys)
    assert code == 2 and "(unknown_key)" in err


def test_import_openvino_ir_takes_its_weights_file(
    assets: Path, keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "ssd"
    code, out, _ = run(
        [
            "import",
            str(assets / RETAIL_SSD),
            "--family",
            "ssd",
            "--out",
            str(bundle),
            "--key",
            str(keys / "signing.key"),
            "--archive",
            str(tmp_path / "ssd.tar"),
        ],
        capsys,
    )
    assert code == 0 and out["input"] == "544x320" and out["classes"] == 1
    verified = verify_bundle(bundle, TrustedKeys.from_dir(keys))
    assert set(verified.manifest.files) == {
        "person-detection-retail-0013.xml",
        "person-detection-retail-0013.bin",
    }
    assert verified.manifest.label_offset == 1
    assert (tmp_path / "ssd.tar").is_file()


def test_import_of_an_unknown_model_needs_classes_and_checks_the_input_size(
    assets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "my-detector.onnx"
    shutil.copy(assets / "models/reid/osnet_x0_25_msmt17.onnx", model)
    out = str(tmp_path / "b")
    code, _, err = run(["import", str(model), "--family", "yolov8", "--out", out], capsys)
    assert code == 2 and "--classes" in err
    classes = tmp_path / "classes.txt"
    classes.write_text("person\n\nbag\n")
    base = ["import", str(model), "--family", "yolov8", "--out", out, "--classes", str(classes)]
    code, _, err = run([*base, "--input", "640x640"], capsys)
    assert code == 2 and "takes 128x256" in err
    code, result, _ = run([*base, "--name", "mine", "--version", "7"], capsys)
    assert code == 0 and result["input"] == "128x256" and result["classes"] == 2
    manifest = json.loads((tmp_path / "b" / MANIFEST_FILE).read_text())
    # yolov8 family defaults: RGB, /255, centred letterbox.
    assert manifest["input"]["color"] == "rgb" and manifest["input"]["letterbox"] == "center"
    assert (manifest["name"], manifest["version"]) == ("mine", "7")
    assert not (tmp_path / "b" / SIGNATURE_FILE).exists()


def test_import_refuses_the_wrong_family_for_a_known_model(
    assets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        ["import", str(assets / YOLOX), "--family", "ssd", "--out", str(tmp_path / "b")], capsys
    )
    assert code == 2 and "yolox-nano" in err and "--family" in err


def test_sign_refuses_a_private_key_others_can_read(
    assets: Path, keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "b"
    code, _, _ = run(
        ["import", str(assets / YOLOX), "--family", "yolox", "--out", str(bundle)], capsys
    )
    assert code == 0
    (keys / "signing.key").chmod(0o644)
    code, _, err = run(["sign", str(bundle), "--key", str(keys / "signing.key")], capsys)
    assert code == 2 and "chmod 600" in err
    assert not (bundle / SIGNATURE_FILE).exists()
