"""schemathesis against the alerts and webhooks routes of a real ``retail-hub serve``: generated
requests (valid and invalid) never get a 5xx, and every response matches the OpenAPI schema."""

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
from cloud_hub.services.webhooks import WebhookCreate, create_webhook
from common.sync import BatchAck, encode_batch
from tests.cloud_hub.batches import T0, batch, numbered
from tests.cloud_hub.hub_process import CLEAN_EXIT, HubProcess
from tests.cloud_hub.schema_cases import run_schema_cases
from tests.cloud_hub.test_alerts import alert_event

STORE = "s1"
HUB_KEY = "schema-webhook-key-" + "q" * 24


@pytest.fixture(scope="module")
def hub_with_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, str]]:
    """A hub with alerts of store s1, a webhook with a delivery, and an HQ admin key; jobs off
    (generated webhook URLs are never called)."""
    folder: Path = tmp_path_factory.mktemp("hub-alerts-schema")
    url = f"sqlite:///{folder / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    with engine.begin() as conn:
        key, _ = create_api_key(conn, Role.HQ_ADMIN, now=time.time())
        create_webhook(conn, WebhookCreate(url="http://127.0.0.1:9/x"), HUB_KEY, "t", 1.0)
    records = numbered(
        [alert_event("alert_raised", T0 + 1.0), alert_event("alert_raised", T0 + 2.0, rule="r2")]
    )
    assert isinstance(ingest_payload(engine, encode_batch(batch(records)), time.time()), BatchAck)
    engine.dispose()
    hub = HubProcess(folder)
    hub.start(
        url,
        env={
            "RETAIL_HUB_RUN_JOBS": "false",
            "RETAIL_HUB_WEBHOOK_KEY": HUB_KEY,
            "RETAIL_HUB_RATE_LIMIT_PER_MINUTE": "0",  # schemathesis outruns any client's share
        },
    )
    yield hub, key
    assert hub.stop() in CLEAN_EXIT, hub.log()


def _towards_data(case: Any) -> None:
    """Steer two generated cases in three towards the data that exists (store s1, alert and
    webhook 1), so answers with data get checked too, not only 404s and 422s."""
    q = case.query if case.query is not None else {}
    for where in (q, case.path_parameters or {}):
        if "store_id" in where and len(str(where["store_id"])) % 3:
            where["store_id"] = STORE
        for name in ("alert_id", "webhook_id"):
            if name in where and len(str(where[name])) % 3:
                where[name] = 1
    if "offset" in q and len(str(q["offset"])) % 3:
        q["offset"] = 0


@pytest.mark.parametrize(
    ("mode", "examples"), [(GenerationMode.POSITIVE, 150), (GenerationMode.NEGATIVE, 60)]
)
def test_alerts_and_webhooks_match_their_schema(
    hub_with_key: tuple[HubProcess, str], mode: GenerationMode, examples: int
) -> None:
    hub, key = hub_with_key
    operations, answered = run_schema_cases(
        hub.url, key, ["alerts", "webhooks"], mode, examples, 8, _towards_data
    )
    assert len(operations) == 12, [op.label for op in operations]
    if mode is GenerationMode.POSITIVE:
        assert answered.keys() == {op.label for op in operations}
        ok = {label for label, codes in answered.items() if codes & {200, 201, 204}}
        assert len(ok) >= 10, answered
    assert all(code < 500 for codes in answered.values() for code in codes)
