"""The installer's path end to end: `retail-hub admin enroll-token`, `retail-edge enroll`,
`retail-edge process --outbox`, `outbox`, `sync` into a real hub process (uvicorn, SQLite, device
auth required), and the hub's tables agreeing with the edge's own report."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cloud_hub.migrate import upgrade_database
from tests.cloud_hub.hub_process import HubProcess
from tests.services import free_port

VIDEO = "videos/one-by-one-person-detection.mp4"
RECORDED_AT = "2026-11-24T09:00:00+00:00"
RECORDED_AT_UNIX = 1795510800  # the same instant


def _edge(
    *args: str | Path, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
    )


def _store_config(tmp_path: Path, assets: Path, hub_url: str) -> Path:
    """The demo store (examples/demo-store.yaml geometry) with its outbox and hub in tmp_path."""
    demo = yaml.safe_load((Path(__file__).parents[2] / "examples/demo-store.yaml").read_text())
    demo["model"] = {"path": str(assets / "models/person/yolox_nano.onnx")}
    demo["cameras"][0]["source"] = str(assets / VIDEO)
    demo["outbox"] = {"path": str(tmp_path / "outbox.sqlite3")}
    demo["sync"] = {
        "transport": "http",
        "hub_url": hub_url,
        "credentials_file": str(tmp_path / "credentials.json"),
    }
    demo.pop("privacy", None)
    path = tmp_path / "store.yaml"
    path.write_text(yaml.safe_dump(demo))
    return path


def _hub(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloud_hub.cli", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _hub_rows(db: Path, sql: str) -> list[Any]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.slow
def test_process_then_sync_lands_exactly_the_report_at_the_hub(
    tmp_path: Path, assets: Path
) -> None:
    db = tmp_path / "hub.db"
    hub = HubProcess(tmp_path / "hub", port=free_port())
    config = _store_config(tmp_path, assets, hub.url)

    report_path = tmp_path / "report.json"
    done = _edge(
        "process", assets / VIDEO, "--config", config, "--outbox", "--recorded-at", RECORDED_AT,
        "--report", report_path, "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    appended = report["records_appended"]
    assert report["lines"]["entry"]["in"] == 6  # the demo's hand-counted walk-ins
    assert appended > 0

    # Nothing reached a hub yet: every record waits in the outbox.
    state = _edge("outbox", "--config", config)
    assert state.returncode == 0, state.stderr
    assert json.loads(state.stdout)["pending_count"] == appended

    # Before enrolling, sync says what to do instead of trying.
    unenrolled = _edge("sync", "--config", config, "--timeout", "3")
    assert unenrolled.returncode == 2 and "retail-edge enroll" in unenrolled.stderr

    # HQ issues a one-time token; the installer enrolls the box with it, once.
    upgrade_database(f"sqlite:///{db}")
    hub.start(f"sqlite:///{db}")
    issued = _hub(
        "admin", "enroll-token", "--store", "demo-store", "--database-url", f"sqlite:///{db}"
    )
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    # The token from a file, never on the command line (`ps` would show it to everyone).
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    twice = _edge("enroll", "--config", config, "--token-file", token_file, "--token", token)
    assert twice.returncode == 2 and "give the enrollment token once" in twice.stderr
    enrolled = _edge("enroll", "--config", config, "--token-file", token_file, timeout=60)
    assert enrolled.returncode == 0, enrolled.stderr
    creds_file = tmp_path / "credentials.json"
    assert creds_file.stat().st_mode & 0o077 == 0  # owner only
    secret = json.loads(creds_file.read_text())["device_secret"]
    assert secret not in enrolled.stdout + enrolled.stderr
    # From the environment: the hub sees the same token, used already.
    env = {"RETAIL_EDGE_ENROLL_TOKEN": token}
    reused = _edge("enroll", "--config", config, "--out", tmp_path / "x.json", env=env)
    assert reused.returncode == 2 and "already used" in reused.stderr
    hub.stop()

    # The hub is down: sync gives up after its timeout with exit 2 and keeps everything.
    down = _edge("sync", "--config", config, "--timeout", "3")
    assert down.returncode == 2, down.stdout + down.stderr
    assert json.loads(_edge("outbox", "--config", config).stdout)["pending_count"] == appended

    hub.start(f"sqlite:///{db}")
    try:
        synced = _edge("sync", "--config", config, "--timeout", "120")
        assert synced.returncode == 0, synced.stderr
        result = json.loads(synced.stdout)
        assert (result["delivered"], result["pending"], result["dead_lettered"]) == (
            appended,
            0,
            0,
        )
        again = json.loads(_edge("sync", "--config", config, "--timeout", "30").stdout)
        assert again["sent"] == 0  # acknowledged records are gone from the outbox

        auth = {"Authorization": f"Bearer {secret}"}
        device = httpx.get(f"{hub.url}/api/v1/devices/box-1/sync", headers=auth, timeout=10).json()
        assert device["max_seq"] == appended
    finally:
        hub.stop()

    # The hub's tables say what the edge's report says.
    (ledger,) = _hub_rows(db, "SELECT count(*) FROM received_records WHERE device_id='box-1'")[0]
    assert ledger == appended
    counts = dict(
        _hub_rows(
            db,
            "SELECT metric, sum(count) FROM rollups WHERE target_id IN ('entry', 'display') "
            "AND metric IN ('line_in', 'line_out', 'visits') GROUP BY metric",
        )
    )
    assert counts.get("line_in", 0) == report["lines"]["entry"]["in"]
    assert counts.get("line_out", 0) == report["lines"]["entry"]["out"]
    assert counts.get("visits", 0) == report["zones"]["display"]["visits"]
    crossings = _hub_rows(
        db, "SELECT count(*), min(occurred_at) FROM events WHERE kind='line_crossing'"
    )[0]
    assert crossings[0] == report["lines"]["entry"]["in"] + report["lines"]["entry"]["out"]
    # Times are on the --recorded-at base: the video is ~90 s long.
    first_bucket, last_bucket = _hub_rows(
        db, "SELECT min(bucket_start), max(bucket_start) FROM rollups"
    )[0]
    assert RECORDED_AT_UNIX <= first_bucket <= last_bucket < RECORDED_AT_UNIX + 180
    assert RECORDED_AT_UNIX <= crossings[1] < RECORDED_AT_UNIX + 180


def test_sync_and_outbox_explain_a_missing_sync_section(tmp_path: Path, assets: Path) -> None:
    config = _store_config(tmp_path, assets, "http://127.0.0.1:9")
    data = yaml.safe_load(config.read_text())
    del data["sync"]
    config.write_text(yaml.safe_dump(data))
    done = _edge("sync", "--config", config, "--timeout", "5", timeout=60)
    assert done.returncode == 2
    assert "sync" in done.stderr and "Traceback" not in done.stderr
    state = _edge("outbox", "--config", config, timeout=60)
    assert state.returncode == 0, state.stderr
    assert json.loads(state.stdout)["pending_count"] == 0
