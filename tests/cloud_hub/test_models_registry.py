"""The model registry through a real ``retail-hub serve``: uploads verified like an edge
verifies them (refused with the reason otherwise), immutable versions, listing with manifest
and metrics, downloads for devices and admins only, with HTTP Range for resuming."""

from __future__ import annotations

import shutil
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cloud_hub.core.security import Role
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.services.api_keys import create_api_key
from common.bundle import archive_bytes, sign_bundle
from common.signing import generate_key_pair, load_private_key
from tests.cloud_hub.hub_process import CLEAN_EXIT, HubProcess
from tests.edge_agent.twin_bundles import yolox_bundle

API = "/api/v1"
MAX_BYTES = 6 * 1024 * 1024  # the YOLOX-nano bundle is 3.6 MB


@dataclass
class Registry:
    hub: HubProcess
    admin: str
    manager: str
    device: str
    models_dir: Path
    good: Path  # signed YOLOX-nano bundle folder, version 2
    untrusted: Path  # the same, signed by a key the hub does not trust
    private: Path  # the trusted signing key

    def post(self, body: bytes, key: str | None) -> httpx.Response:
        headers = {"Content-Type": "application/x-tar"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.post(f"{self.hub.url}{API}/models", content=body, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("registry")
    private, public = generate_key_pair(root / "keys" / "hq")
    trusted = root / "trusted"
    trusted.mkdir()
    shutil.copy(public, trusted / "hq.pub")
    good, _ = yolox_bundle(assets, root / "good", "2", load_private_key(private))
    untrusted = Path(shutil.copytree(good, root / "untrusted"))
    other, _ = generate_key_pair(root / "keys" / "stranger")
    sign_bundle(untrusted, load_private_key(other))
    url = f"sqlite:///{root / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    with engine.begin() as conn:
        admin, _ = create_api_key(conn, Role.HQ_ADMIN, name="ml-lead", now=time.time())
        manager, _ = create_api_key(conn, Role.STORE_MANAGER, ["s1"], name="mgr", now=time.time())
    engine.dispose()
    hub = HubProcess(root / "hub")
    models_dir = root / "models"
    hub.start(
        url,
        env={
            "RETAIL_HUB_TRUSTED_KEYS_DIR": str(trusted),
            "RETAIL_HUB_MODELS_DIR": str(models_dir),
            "RETAIL_HUB_MODEL_MAX_BYTES": str(MAX_BYTES),
        },
    )
    device = hub.enroll("s1", "box-1")
    yield Registry(hub, admin, manager, device, models_dir, good, untrusted, private)
    assert hub.stop() in CLEAN_EXIT, hub.log()


def test_upload_list_and_immutable_versions(
    registry: Registry, assets: Path, tmp_path: Path
) -> None:
    body = archive_bytes(registry.good)
    first = registry.post(body, registry.admin)
    assert first.status_code == 201, first.text
    got = first.json()
    assert (got["name"], got["version"], got["size"]) == ("yolox-nano", "2", len(body))
    assert got["manifest"]["family"] == "yolox" and got["uploaded_by"] == "ml-lead"
    # Stored content-addressed, byte for byte.
    stored = registry.models_dir / f"{got['sha256']}.tar"
    assert stored.read_bytes() == body
    assert registry.post(body, registry.admin).status_code == 200  # same bytes: a no-op
    listed = httpx.get(
        f"{registry.hub.url}{API}/models",
        headers={"Authorization": f"Bearer {registry.admin}"},
        timeout=30,
    ).json()["items"]
    assert [(m["name"], m["version"], m["sha256"]) for m in listed] == [
        ("yolox-nano", "2", got["sha256"])
    ]
    # The same name and version, signed again later (another created_at): other bytes.
    again, _ = yolox_bundle(assets, tmp_path / "again", "2", load_private_key(registry.private))
    conflict = registry.post(archive_bytes(again), registry.admin)
    assert conflict.status_code == 409 and "new version" in conflict.text


def test_refused_uploads_say_why(registry: Registry, tmp_path: Path) -> None:
    untrusted = registry.post(archive_bytes(registry.untrusted), registry.admin)
    assert untrusted.status_code == 400 and "unknown_key" in untrusted.text
    # One flipped byte inside the model member of the archive.
    tar = tmp_path / "b.tar"
    tar.write_bytes(archive_bytes(registry.good))
    with tarfile.open(tar) as t:
        member = next(m for m in t.getmembers() if m.name.endswith(".onnx"))
        offset = member.offset_data + member.size // 2
    data = bytearray(tar.read_bytes())
    data[offset] ^= 0x40
    tampered = registry.post(bytes(data), registry.admin)
    assert tampered.status_code == 400 and "hash_mismatch" in tampered.text
    assert registry.post(b"not a tar at all", registry.admin).status_code == 400
    too_big = registry.post(b"\0" * (MAX_BYTES + 1), registry.admin)
    assert too_big.status_code == 413
    assert registry.post(archive_bytes(registry.good), registry.manager).status_code == 403
    assert registry.post(archive_bytes(registry.good), None).status_code == 401
    # Nothing refused was kept, and no staging file is left behind.
    kept = sorted(p.name for p in registry.models_dir.glob("*.tar"))
    assert len(kept) <= 1
    assert list((registry.models_dir / ".incoming").iterdir()) == []


def test_download_for_devices_and_admins_with_range(registry: Registry) -> None:
    body = archive_bytes(registry.good)
    assert registry.post(body, registry.admin).status_code in (200, 201)
    url = f"{registry.hub.url}{API}/models/yolox-nano/2/bundle"
    for who in (registry.device, registry.admin):
        full = httpx.get(url, headers={"Authorization": f"Bearer {who}"}, timeout=30)
        assert full.status_code == 200 and full.content == body
    tail = httpx.get(
        url,
        headers={"Authorization": f"Bearer {registry.device}", "Range": "bytes=1000-"},
        timeout=30,
    )
    assert tail.status_code == 206 and tail.content == body[1000:]
    for who in (registry.manager, "rcd_" + "x" * 43, None):
        headers = {} if who is None else {"Authorization": f"Bearer {who}"}
        assert httpx.get(url, headers=headers, timeout=30).status_code == 401
    missing = httpx.get(
        f"{registry.hub.url}{API}/models/yolox-nano/9/bundle",
        headers={"Authorization": f"Bearer {registry.device}"},
        timeout=30,
    )
    assert missing.status_code == 404
