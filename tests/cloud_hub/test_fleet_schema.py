"""schemathesis against the fleet routes of a real ``retail-hub serve`` (health, devices and
enrollment, snapshots, models, rollouts, store layouts and config rollouts, video jobs):
generated requests, valid and invalid, never get a 5xx, and every response matches the OpenAPI
schema. These routes hold little data here, so the answers are mostly 401/404/409/415/422: what
is checked is that each is documented. The layout routes are steered towards one store that has
a layout version and an enrolled device, so their 200s and 201s are checked too."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from schemathesis.generation.modes import GenerationMode

from cloud_hub.core.security import Role
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.services.api_keys import create_api_key
from tests.cloud_hub.hub_process import CLEAN_EXIT, HubProcess
from tests.cloud_hub.schema_cases import run_schema_cases
from tests.cloud_hub.store_layouts import layout_json

TAGS = ["health", "devices", "snapshots", "models", "rollouts", "configs", "video"]
STORE = "s1"  # has layout version 1 and an enrolled device


@pytest.fixture(scope="module")
def hub_with_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, str]]:
    folder: Path = tmp_path_factory.mktemp("hub-fleet-schema")
    url = f"sqlite:///{folder / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    with engine.begin() as conn:
        key, _ = create_api_key(conn, Role.HQ_ADMIN, now=time.time())
    engine.dispose()
    (folder / "keys").mkdir()
    hub = HubProcess(folder)
    hub.start(
        url,
        env={
            "RETAIL_HUB_RATE_LIMIT_PER_MINUTE": "0",  # schemathesis outruns any client's share
            "RETAIL_HUB_RUN_JOBS": "false",
            "RETAIL_HUB_TRUSTED_KEYS_DIR": str(folder / "keys"),
            "RETAIL_HUB_MODELS_DIR": str(folder / "models"),
            "RETAIL_HUB_VIDEO_DATA_DIR": str(folder / "video"),
        },
    )
    hub.enroll(STORE, "s1-box")
    created = httpx.post(
        f"{hub.url}/api/v1/stores/{STORE}/configs",
        json={"layout": layout_json()},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    yield hub, key
    assert hub.stop() in CLEAN_EXIT, hub.log()


def _towards_layouts(case: Any) -> None:
    """Steer two generated cases in three of the layout routes towards the store with a layout
    version and a device (and its version 1, and config rollout 1), and one body in three
    towards a valid layout; the others as they come."""
    if case.operation.tags != ["configs"]:
        return
    path = case.path_parameters or {}
    body = case.body if isinstance(case.body, dict) else {}
    for where in (path, body):
        if "store_id" in where and len(str(where["store_id"])) % 3:
            where["store_id"] = STORE
        for name in ("version", "rollout_id"):
            if name in where and len(str(where[name])) % 3:
                where[name] = 1
    if "layout" in body and len(str(body)) % 3 == 0:  # generated layouts seldom pass
        body["layout"] = layout_json()


@pytest.mark.parametrize(
    ("mode", "examples"), [(GenerationMode.POSITIVE, 120), (GenerationMode.NEGATIVE, 60)]
)
def test_fleet_routes_match_their_schema(
    hub_with_key: tuple[HubProcess, str], mode: GenerationMode, examples: int
) -> None:
    hub, key = hub_with_key
    operations, answered = run_schema_cases(hub.url, key, TAGS, mode, examples, 4, _towards_layouts)
    assert len(operations) == 34, [op.label for op in operations]
    if mode is GenerationMode.POSITIVE:  # every route was tried
        assert answered.keys() == {op.label for op in operations}
    assert all(code < 500 for codes in answered.values() for code in codes), answered
