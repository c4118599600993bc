"""schemathesis against the fleet routes of a real ``retail-hub serve`` (health, devices and
enrollment, snapshots, models, rollouts, video jobs): generated requests, valid and invalid,
never get a 5xx, and every response matches the OpenAPI schema. These routes hold no data here,
so the answers are mostly 401/404/409/415/422: what is checked is that each is documented."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from schemathesis.generation.modes import GenerationMode

from cloud_hub.core.security import Role
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.services.api_keys import create_api_key
from tests.cloud_hub.hub_process import CLEAN_EXIT, HubProcess
from tests.cloud_hub.schema_cases import run_schema_cases

TAGS = ["health", "devices", "snapshots", "models", "rollouts", "video"]


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
    yield hub, key
    assert hub.stop() in CLEAN_EXIT, hub.log()


def _as_is(case: Any) -> None:
    """No data to steer towards."""


@pytest.mark.parametrize(
    ("mode", "examples"), [(GenerationMode.POSITIVE, 120), (GenerationMode.NEGATIVE, 60)]
)
def test_fleet_routes_match_their_schema(
    hub_with_key: tuple[HubProcess, str], mode: GenerationMode, examples: int
) -> None:
    hub, key = hub_with_key
    operations, answered = run_schema_cases(hub.url, key, TAGS, mode, examples, 4, _as_is)
    assert len(operations) == 26, [op.label for op in operations]
    if mode is GenerationMode.POSITIVE:  # every route was tried
        assert answered.keys() == {op.label for op in operations}
    assert all(code < 500 for codes in answered.values() for code in codes), answered
