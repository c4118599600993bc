"""The config part of the twin in one process: a real hub (``retail-hub serve``), a real agent
running its loop on real footage, and the ``LayoutFollower`` the reconciler runs each round.

A layout rolled out at the hub is validated, tried and kept (the hub's rollout completes); one
the box cannot run is refused with the reason (the hub rolls back by itself); the kept layout
is what the next start runs; a layout changed on the way is refused; a failed one is not
tried again while the hub asks for it; a desired config of null brings the file's back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud_hub.core.security import Role
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.services.api_keys import create_api_key
from common.store_config.layout import CameraLayout, StoreLayout
from common.twin import DesiredConfig, DesiredState
from edge_agent.agent import EdgeAgent
from edge_agent.config import StoreConfig, parse_config
from edge_agent.process import open_detector
from edge_agent.reconfigure import Reconfiguration
from edge_agent.twin.client import TwinClient
from edge_agent.twin.layout_follower import LayoutFollower, layout_at_start
from edge_agent.twin.layout_state import AppliedLayout, LayoutState, LayoutStateFile, LayoutTrial
from tests.cloud_hub.hub_process import HubProcess

VIDEO = "videos/one-by-one-person-detection.mp4"
API = "/api/v1"
LINE = {"id": "door-line", "points": [[0.0, 0.6], [1.0, 0.6]], "inside": [0.5, 0.9]}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, str, str]]:
    root = tmp_path_factory.mktemp("layout-hub")
    url = f"sqlite:///{root / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    with engine.begin() as conn:
        admin, _ = create_api_key(conn, Role.HQ_ADMIN, name="ops", now=time.time())
    engine.dispose()
    server = HubProcess(root / "hub")
    server.start(url, env={"RETAIL_HUB_ROLLOUT_GATE_INTERVAL_S": "1"})
    secret = server.enroll("s1", "s1-box")
    yield server, admin, secret
    server.stop()


class CountingAgent:
    """The real agent, with the reconfigurations asked of it counted (named wrapper, no fake)."""

    def __init__(self, agent: EdgeAgent) -> None:
        self.agent = agent
        self.requests = 0

    @property
    def detector(self) -> Any:
        return self.agent.detector

    def request_reconfigure(self, config: StoreConfig, trial_s: float = 0.0) -> Reconfiguration:
        self.requests += 1
        return self.agent.request_reconfigure(config, trial_s)


class Box:
    """A store box in this process: its file config, its agent looping on a thread."""

    def __init__(self, assets: Path, tmp_path: Path, hub: HubProcess, secret: str) -> None:
        raw = {
            "store_id": "s1",
            "device_id": "s1-box",
            "model": {"path": str(assets / "models/person/yolox_nano.onnx")},
            "cameras": [{"id": "door", "source": str(assets / VIDEO), "fps": 5}],
            "twin": {"staging_dir": "twin", "config_trial_s": 1.5},
        }
        self.base = tmp_path
        self.file_config = parse_config(raw, tmp_path)
        start = layout_at_start(self.file_config, tmp_path)
        self.agent = EdgeAgent(start.config, open_detector(start.config))
        self.counting = CountingAgent(self.agent)
        self.client = TwinClient(hub.url, "s1-box", {"Authorization": f"Bearer {secret}"})
        self.follower = LayoutFollower(start, self.counting, self.client, trial_s=1.5)
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="agent-loop")
        self._thread.start()

    def _loop(self) -> None:
        with self.agent:
            self.agent.run()

    def follow(self, desired: DesiredState | None = None) -> None:
        self.follower.follow(desired or self.client.desired(), self.stopping)

    def close(self) -> None:
        self.agent.request_stop()
        self._thread.join(60)
        self.client.close()


@pytest.fixture()
def box(assets: Path, tmp_path: Path, hub: tuple[HubProcess, str, str]) -> Iterator[Box]:
    server, _, secret = hub
    made = Box(assets, tmp_path, server, secret)
    yield made
    made.close()


def _api(hub: tuple[HubProcess, str, str], method: str, path: str, **kw: Any) -> Any:
    server, admin, _ = hub
    resp = httpx.request(
        method, server.url + API + path, headers={"Authorization": f"Bearer {admin}"},
        timeout=30, **kw,
    )  # fmt: skip
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


def _wait(what: str, check: Callable[[], Any], timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _roll_out(hub: tuple[HubProcess, str, str], layout: StoreLayout) -> tuple[int, int]:
    body = {"layout": layout.model_dump(mode="json"), "note": None}
    version = int(_api(hub, "POST", "/stores/s1/configs", json=body)["version"])
    rollout = _api(hub, "POST", "/config-rollouts", json={"store_id": "s1", "version": version})
    return version, int(rollout["id"])


def _finished(hub: tuple[HubProcess, str, str], rollout_id: int) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        r = _api(hub, "GET", f"/config-rollouts/{rollout_id}")
        return None if r["state"] == "running" else r

    return _wait(f"config rollout {rollout_id} to finish", check)  # type: ignore[no-any-return]


def test_a_rollout_is_tried_kept_and_run_again_after_a_restart(
    box: Box, hub: tuple[HubProcess, str, str], assets: Path
) -> None:
    good = StoreLayout(cameras=[CameraLayout(id="door", fps=5, lines=[LINE])])
    version, rid = _roll_out(hub, good)
    box.follow()
    assert box.follower.running_version == version
    assert [line.id for line in box.agent.config.camera("door").lines] == ["door-line"]
    assert box.agent.config.camera("door").source == str(assets / VIDEO)  # the file's
    done = _finished(hub, rid)
    assert done["state"] == "completed", done
    (device,) = done["devices"]
    assert device["step"] == "applied" and device["running_version"] == version

    # The hub does not know which files a box has: the box refuses it, the hub rolls back.
    missing = StoreLayout(cameras=[CameraLayout(id="door", source="clips/gone.mp4")])
    _, rid = _roll_out(hub, missing)
    box.follow()
    done = _finished(hub, rid)
    assert done["state"] == "rolled_back", done
    assert "no file" in done["reason"] and "clips/gone.mp4" in done["reason"]
    assert box.follower.running_version == version  # never switched
    assert box.counting.requests == 1
    box.follow()  # the hub's rollback: the version the box runs, nothing to do
    assert box.counting.requests == 1 and box.follower.state.failed is None

    # What a restart runs: the kept layout, merged with the file.
    again = layout_at_start(box.file_config, box.base)
    assert again.state.current is not None and again.state.current.version == version
    assert again.config == box.agent.config


def _desired(revision: int, config: DesiredConfig | None) -> DesiredState:
    return DesiredState(device_id="s1-box", store_id="s1", config=config, revision=revision)


def _config(version: int, layout: StoreLayout, sha256: str | None = None) -> DesiredConfig:
    return DesiredConfig(version=version, sha256=sha256 or layout.sha256(), layout=layout)


def test_pushed_layouts_changed_failed_and_back_to_the_file(box: Box, tmp_path: Path) -> None:
    # Desired states as the MQTT push brings them (reports reach the hub or are logged lost).
    file_config = box.agent.config
    lines = StoreLayout(cameras=[CameraLayout(id="door", fps=5, lines=[LINE])])
    box.follow(_desired(1, _config(41, lines, sha256="0" * 64)))
    assert box.counting.requests == 0 and box.agent.config is file_config
    assert box.follower.state.failed is not None
    assert "changed on the way" in box.follower.state.failed.reason

    dead = StoreLayout(cameras=[CameraLayout(id="door", source="rtsp://127.0.0.1:9/live")])
    box.follow(_desired(2, _config(42, dead)))
    assert box.counting.requests == 1 and box.agent.config is file_config  # rolled back
    failed = box.follower.state.failed
    assert failed is not None and failed.version == 42
    assert "no enabled camera streamed within the 1.5 s trial" in failed.reason
    box.follow(_desired(3, _config(42, dead)))  # asked again: not tried again
    assert box.counting.requests == 1

    box.follow(_desired(4, _config(43, lines)))
    assert box.counting.requests == 2 and box.follower.running_version == 43
    assert [line.id for line in box.agent.config.camera("door").lines] == ["door-line"]
    box.follow(_desired(5, None))  # no layout at the hub: the file's runs again
    assert box.counting.requests == 3 and box.follower.running_version is None
    assert box.agent.config.model_dump() == file_config.model_dump()
    state = LayoutStateFile(tmp_path / "twin").load()
    assert state.current is None and state.previous is not None and state.previous.version == 43


def test_a_trial_cut_short_by_a_crash_is_reported_failed_and_not_tried_again(
    assets: Path, tmp_path: Path, hub: tuple[HubProcess, str, str]
) -> None:
    lines = StoreLayout(cameras=[CameraLayout(id="door", fps=5, lines=[LINE])])
    target = AppliedLayout(version=7, sha256=lines.sha256(), rollout_id=None, layout=lines)
    trial = LayoutTrial(target=target, rollout_id=None, started_at=time.time())
    LayoutStateFile(tmp_path / "twin").store(LayoutState(trial=trial))  # as the crash left it
    server, _, secret = hub
    box = Box(assets, tmp_path, server, secret)
    try:
        assert box.agent.config.camera("door").lines == []  # the previous layout: the file's
        box.follow(_desired(1, _config(7, lines)))
        assert box.counting.requests == 0 and box.follower.running_version is None
        failed = box.follower.state.failed
        assert failed is not None and failed.version == 7
        assert "stopped (crash or restart) during the trial of layout version 7" in failed.reason
    finally:
        box.close()
