"""Model rollouts end to end: a real hub process, three real edge agent processes
(``retail-edge run`` on the store-aisle footage) and real signed bundles of the YOLOX-nano.

A good model goes canary → everyone; each bad one is stopped at the canary and rolled back by
itself, with the reason in the audit trail: a bundle corrupted in the hub's store, one signed
by a key the edges do not trust, a garbage ONNX, a model that crashes on inference, one far
slower, one that detects nothing. An edge that is down during a rollout converges when it
comes back.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cloud_hub.core.security import Role
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.services.api_keys import create_api_key
from common.bundle import archive_bytes, sign_bundle
from common.signing import generate_key_pair, load_private_key
from edge_agent.sync.enroll import DeviceCredentials, write_credentials
from tests.cloud_hub.hub_process import HubProcess
from tests.edge_agent.twin_bundles import bundle_of, yolox_bundle, yolox_variant

VIDEO = "videos/store-aisle-detection.gif"  # 2-3 shoppers in view all along
STORES = ("s1", "s2", "s3")
API = "/api/v1"


@dataclass
class Edge:
    """One store box: its config and its ``retail-edge run`` process."""

    store: str
    config: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edge_agent.cli", "-v", "run", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Fleet:
    hub: HubProcess
    admin: str
    edges: dict[str, Edge]
    models_dir: Path
    uploaded: dict[str, dict[str, Any]] = field(default_factory=dict)

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.admin}"}
        return httpx.request(method, self.hub.url + API + path, headers=headers, timeout=60, **kw)

    def rollout(self, version: str, stores: list[str], canary: str, timeout_s: float = 240) -> int:
        body = {
            "model_name": "yolox-nano",
            "model_version": version,
            "targets": {"store_ids": stores},
            "waves": {"canary_stores": [canary]},
            "gates": {
                "max_latency_ratio": 2.0,
                "min_detection_ratio": 0.5,
                "wave_timeout_s": timeout_s,
            },
        }
        resp = self.api("POST", "/rollouts", json=body)
        assert resp.status_code == 201, resp.text
        return int(resp.json()["id"])

    def get(self, rollout_id: int) -> dict[str, Any]:
        resp = self.api("GET", f"/rollouts/{rollout_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def wait(self, what: str, check: Callable[[], Any], timeout_s: float = 240) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            for e in self.edges.values():
                if e.proc is not None and e.proc.poll() is not None:
                    pytest.fail(f"edge {e.store} exited {e.proc.returncode}:\n{e.text()[-4000:]}")
            time.sleep(0.5)
        logs = "\n".join(f"--- {s}\n{e.text()[-3000:]}" for s, e in self.edges.items())
        pytest.fail(f"timed out waiting for {what}\n{logs}\n--- hub\n{self.hub.log()[-3000:]}")

    def wait_state(self, rollout_id: int, state: str) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            r = self.get(rollout_id)
            assert r["state"] in ("running", state), (r["reason"], r["devices"])
            return r if r["state"] == state else None

        return self.wait(f"rollout {rollout_id} {state}", check)  # type: ignore[no-any-return]

    def runs(self, rollout_id: int, device: str, version: str) -> bool:
        devices = {d["device_id"]: d for d in self.get(rollout_id)["devices"]}
        return devices[device]["running_version"] == version


def _make_bundles(assets: Path, root: Path) -> tuple[Path, Path, dict[str, Path]]:
    """(edge trusted keys, hub trusted keys, version → bundle folder)."""
    private, public = generate_key_pair(root / "keys" / "hq")
    stranger_key, stranger_pub = generate_key_pair(root / "keys" / "stranger")
    edge_keys, hub_keys = root / "edge-keys", root / "hub-keys"
    for folder, pubs in ((edge_keys, [public]), (hub_keys, [public, stranger_pub])):
        folder.mkdir()
        for i, p in enumerate(pubs):
            shutil.copy(p, folder / f"key{i}.pub")
    key = load_private_key(private)
    v1, base = yolox_bundle(assets, root / "b" / "1", "1", key)
    bundles = {"2": yolox_bundle(assets, root / "b" / "2", "2", key)[0]}
    bundles["3-corrupt"] = yolox_bundle(assets, root / "b" / "3", "3-corrupt", key)[0]
    untrusted = yolox_bundle(assets, root / "b" / "4", "4-untrusted", key)[0]
    sign_bundle(untrusted, load_private_key(stranger_key))
    bundles["4-untrusted"] = untrusted
    garbage = root / "garbage.onnx"
    garbage.write_bytes(os.urandom(200_000))
    bundles["5-garbage"] = bundle_of(garbage, base, "5-garbage", key, root / "b" / "5")
    for version, kind in (("6-crash", "crash"), ("7-slow", "slow"), ("8-zeros", "zeros")):
        onnx_file = yolox_variant(assets, kind, root / f"{kind}.onnx")  # type: ignore[arg-type]
        bundles[version] = bundle_of(onnx_file, base, version, key, root / "b" / version)
    bundles["9"] = yolox_bundle(assets, root / "b" / "9", "9", key)[0]
    return edge_keys, hub_keys, {"1": v1, **bundles}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("rollout")
    edge_keys, hub_keys, bundles = _make_bundles(assets, root)
    url = f"sqlite:///{root / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    with engine.begin() as conn:
        admin, _ = create_api_key(conn, Role.HQ_ADMIN, name="ml-lead", now=time.time())
    engine.dispose()
    hub = HubProcess(root / "hub")
    models_dir = root / "models"
    hub.start(
        url,
        env={
            "RETAIL_HUB_TRUSTED_KEYS_DIR": str(hub_keys),
            "RETAIL_HUB_MODELS_DIR": str(models_dir),
            "RETAIL_HUB_ROLLOUT_GATE_INTERVAL_S": "1",
        },
    )
    edges: dict[str, Edge] = {}
    fleet = Fleet(hub, admin, edges, models_dir)
    try:
        for version, folder in bundles.items():
            if version != "1":  # the edges' own config model, not in the registry
                resp = fleet.api("POST", "/models", content=archive_bytes(folder))
                assert resp.status_code == 201, resp.text
                fleet.uploaded[version] = resp.json()
        # Corrupt the stored copy of one bundle after its (successful) upload.
        stored = models_dir / f"{fleet.uploaded['3-corrupt']['sha256']}.tar"
        data = bytearray(stored.read_bytes())
        data[len(data) // 2] ^= 0x01
        stored.write_bytes(bytes(data))
        for store in STORES:
            device = f"{store}-box"
            secret = hub.enroll(store, device)
            folder = root / store
            folder.mkdir()
            creds = DeviceCredentials(
                hub_url=hub.url, store_id=store, device_id=device,
                device_secret=secret, enrolled_at=time.time(),  # type: ignore[arg-type]
            )  # fmt: skip
            write_credentials(creds, folder / "credentials.json")
            config = {
                "store_id": store,
                "device_id": device,
                "model": {"path": str(bundles["1"]), "trusted_keys": str(edge_keys)},
                "cameras": [{"id": "aisle", "source": str(assets / VIDEO), "fps": 3}],
                "outbox": {"path": str(folder / "outbox.sqlite3")},
                "sync": {
                    "transport": "http",
                    "hub_url": hub.url,
                    "credentials_file": str(folder / "credentials.json"),
                },
                "twin": {"poll_interval_s": 0.5, "smoke_frames": 3},
            }
            path = folder / "store.yaml"
            path.write_text(yaml.safe_dump(config))
            edges[store] = Edge(store, path, folder / "edge.log")
            edges[store].start()
        yield fleet
    finally:
        for e in edges.values():
            e.stop()
        hub.stop()


def test_good_model_rolls_out_canary_then_all(fleet: Fleet) -> None:
    rid = fleet.rollout("2", list(STORES), canary="s1")
    done = fleet.wait_state(rid, "completed")
    assert done["waves"] == [["s1"], ["s2", "s3"]]
    for d in done["devices"]:
        assert d["step"] == "switched" and d["running_version"] == "2", d
        # Same model: the smoke test saw the same boxes at a comparable speed.
        assert d["detections_after"] == pytest.approx(d["detections_before"], abs=0.01)
        assert d["detections_before"] > 0.5
    actions = [(e["actor"], e["action"]) for e in done["events"]]
    assert actions[0] == ("ml-lead", "created")
    assert actions[-1] == ("hub", "completed")
    # The canary's wave passed before the second wave started.
    passed = [i for i, a in enumerate(actions) if a[1] == "wave_passed"]
    started = [i for i, a in enumerate(actions) if a[1] == "wave_started"]
    assert started[0] < passed[0] < started[1] < passed[1]


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        ("3-corrupt", "hash_mismatch"),
        ("4-untrusted", "unknown_key"),
        ("5-garbage", "load:"),
        ("6-crash", "smoke: "),
        ("7-slow", "max_latency_ratio"),
        ("8-zeros", "min_detection_ratio"),
    ],
)
def test_bad_model_rolls_back_by_itself(fleet: Fleet, version: str, reason: str) -> None:
    rid = fleet.rollout(version, ["s1", "s2"], canary="s1")
    done = fleet.wait_state(rid, "rolled_back")
    assert reason in done["reason"], done["reason"]
    assert "s1-box" in done["reason"]
    devices = {d["device_id"]: d for d in done["devices"]}
    assert devices["s2-box"]["step"] == "pending"  # the second wave never started
    hub_events = [e["action"] for e in done["events"] if e["actor"] == "hub"]
    assert hub_events == ["wave_started", "rolled_back"]
    # The canary runs the model it ran before, and never ran a bundle that failed checks.
    fleet.wait("s1 back on version 2", lambda: fleet.runs(rid, "s1-box", "2"))
    if version in ("3-corrupt", "4-untrusted", "5-garbage"):
        assert devices["s1-box"]["running_version"] != version
        assert f"to yolox-nano {version}" not in fleet.edges["s1"].text()


def test_a_rolled_back_model_is_measured_again_when_rolled_out_again(fleet: Fleet) -> None:
    # Regression: the canary still holds the slow model it switched back from; switching to
    # it again must report a fresh smoke test, not a bare "switched" that passes the gate.
    rid = fleet.rollout("7-slow", ["s1", "s2"], canary="s1")
    done = fleet.wait_state(rid, "rolled_back")
    assert "max_latency_ratio" in done["reason"]
    fleet.wait("s1 back on version 2", lambda: fleet.runs(rid, "s1-box", "2"))


def test_offline_edge_converges_when_it_returns(fleet: Fleet) -> None:
    s3 = fleet.edges["s3"]
    s3.stop()
    rid = fleet.rollout("9", list(STORES), canary="s1", timeout_s=600)
    fleet.wait("wave 2 under way", lambda: fleet.get(rid)["current_wave"] == 1)
    fleet.wait("s2 on version 9", lambda: fleet.runs(rid, "s2-box", "9"))
    assert fleet.get(rid)["state"] == "running"  # waiting for s3
    s3.start()  # back from the outage, on its config's model (version 1)
    done = fleet.wait_state(rid, "completed")
    assert {d["device_id"]: d["running_version"] for d in done["devices"]} == {
        "s1-box": "9",
        "s2-box": "9",
        "s3-box": "9",
    }
