"""The edge loads detectors from signed bundles, and refuses unsigned or tampered ones."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from common.bundle import SIGNATURE_FILE, pack_bundle
from common.manifest import DecoderFamily
from common.signing import generate_key_pair, load_private_key
from edge_agent.config import load_config
from edge_agent.detect.bundle import BundleRejected
from edge_agent.detect.detector import Detector, DetectorSettings
from edge_agent.errors import ModelError
from edge_agent.process import open_detector
from model_export.bundle.importer import ImportOptions, import_model

YOLOX = "models/person/yolox_nano.onnx"
RETAIL_SSD = "models/person/person-detection-retail-0013.xml"
SETTINGS = DetectorSettings(confidence=0.25)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(private key file, trusted keys folder holding its public key)."""
    root = tmp_path_factory.mktemp("keys")
    private, public = generate_key_pair(root / "signer")
    trusted = root / "trusted"
    trusted.mkdir()
    shutil.copy(public, trusted / "signer.pub")
    return private, trusted


@pytest.fixture(scope="module")
def yolox_bundle(
    assets: Path, keys: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("yolox") / "bundle"
    import_model(
        assets / YOLOX, out, ImportOptions(family=DecoderFamily.YOLOX), load_private_key(keys[0])
    )
    return out


@pytest.fixture()
def bundle_copy(yolox_bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(yolox_bundle, tmp_path / "bundle"))


def test_yolox_bundle_detects_bus_people_like_the_plain_model(
    assets: Path, ultralytics_images: Path, yolox_bundle: Path, keys: tuple[Path, Path]
) -> None:
    img = cv2.imread(str(ultralytics_images / "bus.jpg"))
    plain = Detector.open(assets / YOLOX, settings=SETTINGS).detect([img])[0]
    signed = Detector.open(yolox_bundle, settings=SETTINGS, trusted_keys=keys[1])
    got = signed.detect([img])[0]
    # shared/assets/README.md: the 4 people on bus.jpg at 0.85, 0.81, 0.69, 0.26.
    assert np.allclose(np.sort(got.confidence)[::-1], [0.85, 0.81, 0.69, 0.26], atol=0.01)
    assert np.array_equal(got.xyxy, plain.xyxy)
    assert np.array_equal(got.confidence, plain.confidence)
    assert signed.manifest.files == {"yolox_nano.onnx": signed.manifest.sha256}


def test_archive_bundle_loads_too(
    ultralytics_images: Path, yolox_bundle: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    archive = pack_bundle(yolox_bundle, tmp_path / "yolox.tar")
    img = cv2.imread(str(ultralytics_images / "bus.jpg"))
    dets = Detector.open(archive, settings=SETTINGS, trusted_keys=keys[1]).detect([img])[0]
    assert len(dets) == 4


def test_tampered_model_never_loads(bundle_copy: Path, keys: tuple[Path, Path]) -> None:
    model = bundle_copy / "yolox_nano.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one weight: the graph would still load and run
    model.write_bytes(bytes(data))
    with pytest.raises(BundleRejected, match="hash_mismatch") as err:
        Detector.open(bundle_copy, trusted_keys=keys[1])
    assert err.value.reason == "hash_mismatch"
    assert "yolox_nano.onnx" in str(err.value)


def test_unsigned_bundle_never_loads(bundle_copy: Path, keys: tuple[Path, Path]) -> None:
    (bundle_copy / SIGNATURE_FILE).unlink()
    with pytest.raises(BundleRejected, match="not signed") as err:
        Detector.open(bundle_copy, trusted_keys=keys[1])
    assert err.value.reason == "unsigned"


def test_bundle_signed_by_an_untrusted_key_never_loads(
    bundle_copy: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, _ = generate_key_pair(tmp_path / "attacker")
    from common.bundle import sign_bundle

    sign_bundle(bundle_copy, load_private_key(private))
    with pytest.raises(BundleRejected) as err:
        Detector.open(bundle_copy, trusted_keys=keys[1])
    assert err.value.reason == "unknown_key"


def test_swapped_model_file_never_loads(
    assets: Path, bundle_copy: Path, keys: tuple[Path, Path]
) -> None:
    # A different, perfectly valid model under the bundle's file name.
    shutil.copy(assets / "models/reid/osnet_x0_25_msmt17.onnx", bundle_copy / "yolox_nano.onnx")
    with pytest.raises(BundleRejected) as err:
        Detector.open(bundle_copy, trusted_keys=keys[1])
    assert err.value.reason == "hash_mismatch"


def test_bundle_needs_trusted_keys_and_trusted_keys_need_a_bundle(
    assets: Path, yolox_bundle: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    with pytest.raises(ModelError, match=r"set model\.trusted_keys"):
        Detector.open(yolox_bundle)
    with pytest.raises(ModelError, match="only signed bundles load"):
        Detector.open(assets / YOLOX, trusted_keys=keys[1])
    with pytest.raises(ModelError, match="model bundle not found"):
        Detector.open(tmp_path / "missing-bundle", trusted_keys=keys[1])
    with pytest.raises(BundleRejected, match="no trusted keys") as err:
        (tmp_path / "empty").mkdir()
        Detector.open(yolox_bundle, trusted_keys=tmp_path / "empty")
    assert err.value.reason == "trusted_keys"


def test_model_inside_a_bundle_loaded_as_plain_file_warns(
    yolox_bundle: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="edge_agent.detect.detector"):
        det = Detector.open(yolox_bundle / "yolox_nano.onnx")
    assert det.manifest.name == "yolox-nano"
    assert "signature is not checked" in caplog.text


def test_openvino_bundle_loads_with_its_weights_file(
    assets: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "ssd"
    import_model(
        assets / RETAIL_SSD, out, ImportOptions(family=DecoderFamily.SSD), load_private_key(keys[0])
    )
    det = Detector.open(out, trusted_keys=keys[1])
    assert det.manifest.name == "person-detection-retail-0013"
    assert det.backend.name.startswith("openvino")
    (out / "person-detection-retail-0013.bin").write_bytes(b"\0" * 16)
    with pytest.raises(BundleRejected) as err:
        Detector.open(out, trusted_keys=keys[1])
    assert err.value.reason == "hash_mismatch"


def test_store_config_with_a_bundle(
    assets: Path,
    ultralytics_images: Path,
    yolox_bundle: Path,
    keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    shutil.copytree(yolox_bundle, tmp_path / "models" / "people")
    shutil.copytree(keys[1], tmp_path / "keys")
    config = tmp_path / "store.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "store_id": "s1",
                "device_id": "d1",
                "model": {"path": "models/people", "trusted_keys": "keys"},
                "cameras": [{"id": "c1", "source": str(assets / "videos/classroom.gif")}],
            }
        )
    )
    cfg = load_config(config)
    assert cfg.model.trusted_keys == (tmp_path / "keys").resolve()
    det = open_detector(cfg)
    img = cv2.imread(str(ultralytics_images / "bus.jpg"))
    assert (det.detect([img])[0].confidence >= 0.25).sum() == 4
    (tmp_path / "models" / "people" / "yolox_nano.onnx").write_bytes(b"tampered")
    with pytest.raises(BundleRejected):
        open_detector(cfg)
