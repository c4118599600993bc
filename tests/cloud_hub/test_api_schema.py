"""schemathesis against the HQ read API of a real ``retail-hub serve``: generated requests
(valid and invalid) never get a 5xx, and every response matches the OpenAPI schema (status
code documented, content type, body schema, headers)."""

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
from cloud_hub.services.payloads import ingest_payload
from common.sync import BatchAck, encode_batch
from tests.cloud_hub.batches import T0, batch, counter, heatmap, numbered, samples
from tests.cloud_hub.hub_process import CLEAN_EXIT, HubProcess
from tests.cloud_hub.schema_cases import run_schema_cases

STORE = "s1"


@pytest.fixture(scope="module")
def hub_with_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, str]]:
    """A hub with a little data from store s1 and an HQ admin key."""
    folder: Path = tmp_path_factory.mktemp("hub-schema")
    url = f"sqlite:///{folder / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    records = numbered([counter(5), samples([3.0, 9.0], metric="occupancy"), heatmap([1.0, 2.0])])
    ack = ingest_payload(engine, encode_batch(batch(records)), time.time())
    assert isinstance(ack, BatchAck)
    with engine.begin() as conn:
        key, _ = create_api_key(conn, Role.HQ_ADMIN, now=time.time())
    engine.dispose()
    hub = HubProcess(folder)
    # schemathesis sends far more than a client's share of requests: no rate limit here (it
    # is tested in test_limits.py).
    hub.start(url, env={"RETAIL_HUB_RATE_LIMIT_PER_MINUTE": "0"})
    yield hub, key
    assert hub.stop() in CLEAN_EXIT, hub.log()


def _towards_data(case: Any) -> None:
    """Steer two generated cases in three towards the store that has data, a range around it
    and the first page, so that answers with data get checked too, not only 404s and 422s."""
    q = case.query if case.query is not None else {}
    for where in (q, case.path_parameters or {}):
        if "store_id" in where and len(str(where["store_id"])) % 3:
            where["store_id"] = STORE
    if "start" in q and len(str(q["start"])) % 3:
        q.update({"start": f"{T0 - 86_400}", "end": f"{T0 + 86_400}"})
    if "at" in q and len(str(q["at"])) % 3:
        q["at"] = f"{T0 + 3600}"
    if "offset" in q and len(str(q["offset"])) % 3:
        q["offset"] = 0


@pytest.mark.parametrize(
    ("mode", "examples"), [(GenerationMode.POSITIVE, 150), (GenerationMode.NEGATIVE, 60)]
)
def test_hq_api_matches_its_schema(
    hub_with_key: tuple[HubProcess, str], mode: GenerationMode, examples: int
) -> None:
    hub, key = hub_with_key
    operations, answered = run_schema_cases(
        hub.url, key, ["stores", "analytics", "inventory"], mode, examples, 10, _towards_data
    )  # ingest: own tests
    assert len(operations) == 10, [op.label for op in operations]
    if mode is GenerationMode.POSITIVE:  # every route was tried and answered with data
        assert answered.keys() == {op.label for op in operations}
        ok = {label for label, codes in answered.items() if codes & {200, 201}}
        assert len(ok) >= 8, answered
    assert all(code < 500 for codes in answered.values() for code in codes)
