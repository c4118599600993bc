"""The analytics routes' one-hop reads (``cloud_hub/api/reads.py``) and ``serve --workers N``,
through real ``retail-hub serve`` processes on SQLite.

A key the process has already seen valid skips the lookup in the dependency, so its revocation
must still be seen by the read itself; never-seen keys keep the 401-before-422 order. With
``--workers 2`` both processes answer and ``/metrics`` adds up what both counted.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from cloud_hub.core.security import Role
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.services.api_keys import create_api_key, revoke_api_key
from cloud_hub.services.stores import StoreUpdate, put_store
from tests.cloud_hub.hub_process import CLEAN_EXIT, HubProcess
from tests.services import wait_for

DAY = {"store_id": "s1", "start": "2026-06-01T00:00:00+02:00", "end": "2026-06-02T00:00:00+02:00"}
RANKING = {"metric": "footfall_in", "period": "week", "at": "2026-06-03T12:00:00Z"}


@pytest.fixture()
def db_url(tmp_path: Path) -> str:
    """A migrated SQLite hub with one store in Paris."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    with engine.begin() as conn:
        put_store(conn, "s1", StoreUpdate(name="S1", timezone="Europe/Paris"), time.time())
    engine.dispose()
    return url


def _key(url: str) -> tuple[str, int]:
    engine = create_hub_engine(url)
    try:
        with engine.begin() as conn:
            key, info = create_api_key(conn, Role.HQ_ADMIN, name="reads", now=time.time())
    finally:
        engine.dispose()
    return key, info.id


@pytest.fixture()
def hub(tmp_path: Path, db_url: str) -> Iterator[HubProcess]:
    """One ``retail-hub serve`` process (rate limit and jobs off)."""
    h = HubProcess(tmp_path / "hub")
    h.start(db_url, env={"RETAIL_HUB_RATE_LIMIT_PER_MINUTE": "0", "RETAIL_HUB_RUN_JOBS": "false"})
    yield h
    h.stop()


def test_a_key_revoked_after_use_is_refused_by_its_next_read(hub: HubProcess) -> None:
    """The process has served the key (so it skips the lookup in the dependency); revoked by
    another process, the key's next series and ranking reads get the same 401 as an unknown
    key, and keep getting it."""
    key, key_id = _key(hub.database_url)
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=hub.url + "/api/v1", headers=auth, timeout=30) as client:
        for _ in range(2):
            assert client.get("/analytics/footfall", params=DAY).status_code == 200
            assert client.get("/analytics/ranking", params=RANKING).status_code == 200
        engine = create_hub_engine(hub.database_url)
        with engine.begin() as conn:
            revoke_api_key(conn, key_id, now=time.time())
        engine.dispose()
        for path, params in [("/analytics/footfall", DAY), ("/analytics/ranking", RANKING)] * 2:
            refused = client.get(path, params=params)
            assert refused.status_code == 401, (path, refused.text)
            assert refused.json() == {"detail": "unknown or revoked API key"}
            assert refused.headers["www-authenticate"] == "Bearer"


def test_unseen_keys_get_401_before_422_and_known_keys_422(hub: HubProcess) -> None:
    """Bad parameters: a key the process never saw is checked first (401), as before; a valid
    key gets the 422 naming the parameter."""
    bad = {**DAY, "bucket": "fortnight"}
    with httpx.Client(base_url=hub.url + "/api/v1", timeout=30) as client:
        unknown = {"Authorization": "Bearer rcv_" + "x" * 43}
        assert client.get("/analytics/footfall", params=bad, headers=unknown).status_code == 401
        key, _ = _key(hub.database_url)
        known = {"Authorization": f"Bearer {key}"}
        for _ in range(2):  # unseen, then known to the process
            got = client.get("/analytics/footfall", params=bad, headers=known)
            assert got.status_code == 422
            assert got.json()["detail"][0]["loc"] == ["query", "bucket"]


def _workers(parent: int) -> list[int]:
    """Worker processes of ``serve --workers``: the parent's children that serve."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == parent and b"spawn_main" in cmd:
            out.append(int(d.name))
    return out


def _health_count(client: httpx.Client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("retail_hub_http_request_duration_seconds_count") and (
            'route="/api/v1/health"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_serve_workers_share_the_port_and_add_up_metrics(tmp_path: Path, db_url: str) -> None:
    """``--workers 2``: two processes answer on one port, /metrics counts the requests both
    answered, and SIGTERM stops all of them cleanly (the metrics folder goes with them)."""
    with HubProcess(tmp_path / "hub") as hub:  # stopped (SIGTERM) if an assert fails first
        _serve_two_workers(hub, db_url)


def _serve_two_workers(hub: HubProcess, db_url: str) -> None:
    hub.start(db_url, env={"RETAIL_HUB_RUN_JOBS": "false"}, args=["--workers", "2"])
    assert hub.proc is not None
    parent = hub.proc.pid
    wait_for(lambda: len(_workers(parent)) == 2, 60, "two worker processes")
    workers = _workers(parent)
    env = (Path(f"/proc/{workers[0]}/environ").read_bytes()).split(b"\0")
    metrics_dir = Path(
        next(v for v in env if v.startswith(b"PROMETHEUS_MULTIPROC_DIR="))
        .split(b"=", 1)[1]
        .decode()
    )
    sent = 0
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        before = _health_count(client)  # the start-up health checks

        def one(_: int) -> int:
            with httpx.Client(base_url=hub.url, timeout=30) as own:  # a connection each
                return own.get("/api/v1/health").status_code

        def both_answered() -> bool:
            nonlocal sent
            with ThreadPoolExecutor(8) as pool:
                codes = list(pool.map(one, range(16)))
            assert codes == [200] * 16
            sent += 16
            served = {p.name for p in metrics_dir.glob("histogram_*.db")}
            return all(f"histogram_{pid}.db" in served for pid in workers)

        wait_for(both_answered, 60, "requests answered by both workers")
        assert _health_count(client) - before == sent
    hub.proc.send_signal(signal.SIGTERM)
    assert hub.proc.wait(timeout=60) in CLEAN_EXIT
    hub.proc = None
    assert not any(os.path.exists(f"/proc/{pid}") for pid in workers)
    assert not metrics_dir.exists()
