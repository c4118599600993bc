"""The edge side of rollouts: the detector slot (a model that fails after the switch is
swapped back without dropping a frame), and the reconciler against a real hub process:
a tampered bundle in the staging folder never loads, an interrupted download resumes."""

from __future__ import annotations

import logging
import shutil
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import numpy.typing as npt
import pytest

from cloud_hub.core.security import Role
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.services.api_keys import create_api_key
from common.bundle import archive_bytes
from common.signing import generate_key_pair, load_private_key
from edge_agent.agent import EdgeAgent
from edge_agent.config import parse_config
from edge_agent.detect.detector import Detector
from edge_agent.detect.slot import DetectorSlot
from edge_agent.process import open_detector
from edge_agent.twin.client import TwinClient
from edge_agent.twin.config import TwinConfig
from edge_agent.twin.reconciler import Reconciler
from tests.cloud_hub.hub_process import HubProcess
from tests.edge_agent.twin_bundles import bundle_of, yolox_bundle, yolox_variant

VIDEO = "videos/store-aisle-detection.gif"


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("twin")
    private, public = generate_key_pair(root / "hq")
    trusted = root / "trusted"
    trusted.mkdir()
    shutil.copy(public, trusted / "hq.pub")
    key = load_private_key(private)
    v1, base = yolox_bundle(assets, root / "v1", "1", key)
    v2, _ = yolox_bundle(assets, root / "v2", "2", key)
    crash = bundle_of(yolox_variant(assets, "crash", root / "c.onnx"), base, "c", key, root / "c")
    return {"trusted": trusted, "1": v1, "2": v2, "crash": crash}


def _frames(assets: Path, n: int = 4) -> list[npt.NDArray[np.uint8]]:
    cap = cv2.VideoCapture(str(assets / VIDEO))
    out = [cap.read()[1] for _ in range(n)]
    cap.release()
    return out


def _config(assets: Path, signed: dict[str, Path], tmp_path: Path) -> dict[str, object]:
    return {
        "store_id": "s1",
        "device_id": "s1-box",
        "model": {"path": str(signed["1"]), "trusted_keys": str(signed["trusted"])},
        "cameras": [{"id": "aisle", "source": str(assets / VIDEO), "fps": 10}],
        "twin": {"staging_dir": str(tmp_path / "staging"), "smoke_frames": 2},
    }


def test_a_model_failing_after_the_switch_is_swapped_back_without_dropping_frames(
    assets: Path, signed: dict[str, Path], tmp_path: Path
) -> None:
    cfg = parse_config(_config(assets, signed, tmp_path), tmp_path)
    seen: list[int] = []
    agent = EdgeAgent(cfg, open_detector(cfg), on_tracks=lambda f, t: seen.append(f.index))
    good = agent.detector
    crash_cfg = cfg.model_copy(
        update={"model": cfg.model.model_copy(update={"path": signed["crash"]})}
    )
    crashing = open_detector(crash_cfg)
    with agent:
        while agent.step(wait_s=2.0) == 0:
            pass
        agent.slot.swap(crashing)
        analysed = 0
        while analysed == 0:
            analysed = agent.step(wait_s=2.0)
    assert agent.detector is good  # back on the model it replaced
    failure = agent.slot.take_failure()
    assert failure is not None and failure.label.version == "c"
    assert "Gather" in failure.error
    assert agent.slot.take_failure() is None  # reported once
    # The frame of the failed step was analysed by the previous model: none dropped.
    assert len(seen) == agent.stats().frames and seen == sorted(seen)


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, signed: dict[str, Path]
) -> Iterator[tuple[HubProcess, str, str]]:
    root = tmp_path_factory.mktemp("twin-hub")
    url = f"sqlite:///{root / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    with engine.begin() as conn:
        admin, _ = create_api_key(conn, Role.HQ_ADMIN, name="ml", now=time.time())
    engine.dispose()
    hub = HubProcess(root / "hub")
    hub.start(
        url,
        env={
            "RETAIL_HUB_TRUSTED_KEYS_DIR": str(signed["trusted"]),
            "RETAIL_HUB_MODELS_DIR": str(root / "models"),
        },
    )
    secret = hub.enroll("s1", "s1-box")
    auth = {"Authorization": f"Bearer {admin}"}
    up = httpx.post(
        hub.url + "/api/v1/models", content=archive_bytes(signed["2"]), headers=auth, timeout=60
    )
    assert up.status_code == 201, up.text
    yield hub, admin, secret
    hub.stop()


def _rollout(hub: HubProcess, admin: str) -> int:
    body = {"model_name": "yolox-nano", "model_version": "2", "targets": {"store_ids": ["s1"]}}
    resp = httpx.post(
        hub.url + "/api/v1/rollouts",
        json=body,
        headers={"Authorization": f"Bearer {admin}"},
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def _reconciler(
    assets: Path, signed: dict[str, Path], tmp_path: Path, hub: HubProcess, secret: str
) -> tuple[Reconciler, DetectorSlot]:
    cfg = parse_config(_config(assets, signed, tmp_path), tmp_path)
    assert cfg.twin is not None
    slot = DetectorSlot(open_detector(cfg))
    frames = _frames(assets)
    client = TwinClient(hub.url, "s1-box", {"Authorization": f"Bearer {secret}"})

    def opener(path: Path) -> Detector:
        model = cfg.model.model_copy(update={"path": path})
        return open_detector(cfg.model_copy(update={"model": model}))

    twin: TwinConfig = cfg.twin
    return Reconciler(cfg, twin, slot, lambda: frames, client, opener), slot


def test_tampered_staged_bundle_never_loads_and_a_download_resumes(
    assets: Path,
    signed: dict[str, Path],
    tmp_path: Path,
    hub: tuple[HubProcess, str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, admin, secret = hub
    body = archive_bytes(signed["2"])
    rid = _rollout(server, admin)
    reconciler, slot = _reconciler(assets, signed, tmp_path, server, secret)
    desired = reconciler.client.desired()
    assert desired.model is not None and desired.rollout_id == rid
    # Someone swaps one byte of the model inside the already-downloaded bundle.
    staged = tmp_path / "staging" / f"{desired.model.sha256}.tar"
    staged.parent.mkdir(parents=True)
    staged.write_bytes(body)
    with tarfile.open(staged) as t:
        member = next(m for m in t.getmembers() if m.name.endswith(".onnx"))
        offset = member.offset_data + member.size // 2
    data = bytearray(body)
    data[offset] ^= 0x01
    staged.write_bytes(bytes(data))
    running = slot.current
    reconciler.reconcile_once()
    assert slot.current is running  # never loaded
    assert not staged.exists()  # and thrown away
    auth = {"Authorization": f"Bearer {admin}"}
    detail = httpx.get(f"{server.url}/api/v1/rollouts/{rid}", headers=auth, timeout=30).json()
    assert detail["state"] == "rolled_back" and "hash_mismatch" in detail["reason"]

    # A new rollout of the same model; this box had downloaded half of it before a reboot.
    rid = _rollout(server, admin)
    (tmp_path / "staging" / f"{desired.model.sha256}.part").write_bytes(body[: len(body) // 2])
    fresh, slot = _reconciler(assets, signed, tmp_path, server, secret)
    with caplog.at_level(logging.INFO, logger="edge_agent.twin.client"):
        fresh.reconcile_once()
    assert any("resuming" in r.message for r in caplog.records)
    assert staged.read_bytes() == body
    assert slot.label.version == "2"
    detail = httpx.get(f"{server.url}/api/v1/rollouts/{rid}", headers=auth, timeout=30).json()
    assert detail["state"] == "completed", detail
    (device,) = detail["devices"]
    assert device["step"] == "switched" and device["running_version"] == "2"


def test_the_twin_needs_a_hub_credentials_and_trusted_keys(
    assets: Path, signed: dict[str, Path], tmp_path: Path
) -> None:
    from edge_agent.errors import ConfigError
    from edge_agent.settings import EdgeSecrets
    from edge_agent.twin.session import open_reconciler

    raw = _config(assets, signed, tmp_path)
    cfg = parse_config(raw, tmp_path)
    agent = EdgeAgent(cfg, open_detector(cfg))
    with pytest.raises(ConfigError, match="no hub URL"):
        open_reconciler(cfg, agent, EdgeSecrets())
    raw["twin"] = {**raw["twin"], "hub_url": "http://127.0.0.1:9"}  # type: ignore[dict-item]
    cfg = parse_config(raw, tmp_path)
    with pytest.raises(ConfigError, match="retail-edge enroll"):
        open_reconciler(cfg, agent, EdgeSecrets(hub_token=None))
    secrets = EdgeSecrets(hub_token="rcd_x")  # type: ignore[arg-type]
    reconciler = open_reconciler(cfg, agent, secrets)
    assert reconciler is not None and reconciler.slot is agent.slot
    reconciler.client.close()
    raw["model"] = {"path": str(assets / "models/person/yolox_nano.onnx")}
    plain = parse_config(raw, tmp_path)
    with pytest.raises(ConfigError, match="trusted_keys"):
        open_reconciler(plain, EdgeAgent(plain, open_detector(plain)), secrets)
    raw["twin"] = {"enabled": False}
    assert open_reconciler(parse_config(raw, tmp_path), agent, secrets) is None
