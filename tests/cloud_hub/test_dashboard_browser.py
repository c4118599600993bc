"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against a real hub
process on SQLite, seeded through the real ingest path: three stores in three time zones with
their rollups and heatmaps (``store_seed``), edge alerts, a gated heatmap image and shelf slots.

Every page must load without console errors and draw the numbers the API gives; a store
manager's key sees only its stores; an alert acknowledged in the page is acknowledged in the
API. Screenshots of every page land in the test's tmp dir (and in ``docs/screenshots/`` with
``RETAIL_CV_UPDATE_SCREENSHOTS=1``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import cv2
import httpx
import numpy as np
import numpy.typing as npt
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, sync_playwright
from pydantic import BaseModel
from sqlalchemy import Engine

from cloud_hub.core.security import Role
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.services.api_keys import create_api_key
from cloud_hub.services.payloads import ingest_payload
from cloud_hub.services.rollouts import record_report, set_desired
from cloud_hub.services.stores import StoreUpdate, put_store
from cloud_hub.services.twins import record_reported_config, set_desired_config
from common.sync import MAX_BATCH_RECORDS, BatchAck, RecordKind, SyncRecord, encode_batch
from common.telemetry import AlertPayload, AnalyticsEvent, ShelfStatus, SlotReport, Snapshot
from common.twin import ConfigReport, ConfigStep, ReportedState, TwinStep
from tests.cloud_hub.batches import batch, record
from tests.cloud_hub.hub_process import HubProcess
from tests.cloud_hub.store_seed import GRID, STORE_ZONES, store_heatmaps, store_rollups
from tests.conftest import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
BROWSER_ZONE = "America/Sao_Paulo"  # none of the stores' zones: times must follow the store's
WAIT_MS = 30_000

# What the pages are asked to show: the seeded window around the EU autumn change (Paris has a
# 25-hour day on 25 October), and a ranking of this week (from Monday 26 October) up to a
# Saturday noon against the week before.
RANGE = "store=paris&from=2026-10-24&to=2026-10-26"
START = datetime(2026, 10, 24, tzinfo=ZoneInfo("Europe/Paris"))
END = datetime(2026, 10, 27, tzinfo=ZoneInfo("Europe/Paris"))
RANKING_AT = "2026-10-31T12:00:00Z"

ALERT_AT = 1_793_000_000.0  # 2026-10-26 07:33 UTC
HEAT_IMAGE_AT = 1_792_990_000.0
SHELF_AT = 1_793_001_000.0

Purpose = Literal["alert_snapshot", "heatmap"]


def _store_frame(assets: Path) -> npt.NDArray[np.uint8]:
    """The first frame of the real store footage (no one in view yet), 384 x 216."""
    cap = cv2.VideoCapture(str(assets / "videos" / "one-by-one-person-detection.mp4"))
    try:
        ok, frame = cap.read()
    finally:
        cap.release()
    assert ok, "could not read the store footage"
    return np.asarray(cv2.resize(frame, (384, 216), interpolation=cv2.INTER_AREA), np.uint8)


def _snapshot(
    store: str,
    camera: str,
    taken_at: float,
    image: npt.NDArray[np.uint8],
    purpose: Purpose,
    rule: str | None = None,
) -> Snapshot:
    """A gated image as the edge sends it: a PNG heatmap or a JPEG alert snapshot (the
    footage's first frame has no one in view: nothing to blur)."""
    media: Literal["image/png", "image/jpeg"] = (
        "image/png" if purpose == "heatmap" else "image/jpeg"
    )
    ok, encoded = cv2.imencode(".png" if purpose == "heatmap" else ".jpg", image)
    assert ok
    data = encoded.tobytes()
    h, w = image.shape[:2]
    return Snapshot(
        store_id=store, camera_id=camera, taken_at=taken_at, media_type=media, width=w,
        height=h, faces_blurred=0, heads_blurred=0, sha256=hashlib.sha256(data).hexdigest(),
        data_b64=base64.b64encode(data).decode(), purpose=purpose, alert_rule=rule,
    )  # fmt: skip


def _extras(store: str, assets: Path) -> list[tuple[RecordKind, BaseModel]]:
    """What else the store's edge sends besides rollups: a heatmap image over the empty store,
    an edge alert with its snapshot, and a shelf's slot states (Paris and New York)."""
    if store == "pune":
        return []
    frame = _store_frame(assets)
    w, h = GRID
    cells = np.asarray(store_heatmaps(store)[-1].person_seconds, np.float32).reshape(h, w)
    heat = cv2.resize(cells / max(float(cells.max()), 1.0) * 255, (384, 216)).astype(np.uint8)
    coloured = cv2.applyColorMap(heat, cv2.COLORMAP_JET)
    overlay = np.asarray(cv2.addWeighted(frame, 0.55, coloured, 0.45, 0), np.uint8)
    rule = "queue-long" if store == "paris" else "crowding"
    alert = AnalyticsEvent(
        kind="alert_raised", store_id=store, camera_id="side", target_id="checkout",
        occurred_at=ALERT_AT,
        payload=AlertPayload(rule_id=rule, metric="queue_length", op=">", threshold=5.0,
                             clear_threshold=3.0, value=7.0),
    )  # fmt: skip
    slots = [
        SlotReport(slot_id="s1", state="stocked", product="milk-1l", since=SHELF_AT - 600),
        SlotReport(slot_id="s2", state="empty", product="yogurt", since=SHELF_AT - 300,
                   empty_since=SHELF_AT - 300),
        SlotReport(slot_id="s3", state="stocked", product="butter", since=SHELF_AT - 900),
        SlotReport(slot_id="s4", state="unknown", product="cream"),
    ]  # fmt: skip
    shelf = ShelfStatus(
        store_id=store, camera_id="shelf-cam", shelf_id="dairy", observed_at=SHELF_AT,
        status="unknown", stock_level=None, low_stock_below=0.5, slots=slots,
    )  # fmt: skip
    heat_image = _snapshot(store, "entrance", HEAT_IMAGE_AT, overlay, "heatmap")
    alert_image = _snapshot(store, "side", ALERT_AT + 0.5, frame, "alert_snapshot", rule)
    return [
        (RecordKind.SNAPSHOT, heat_image),
        (RecordKind.EVENT, alert),
        (RecordKind.SNAPSHOT, alert_image),
        (RecordKind.SHELF_STATUS, shelf),
    ]


def _seed(engine: Engine, assets: Path) -> None:
    """Every store's rollups, heatmaps and extras through ``ingest_payload``, one device per
    store, received now (so the devices were last seen now); then HQ sets the time zones."""
    now = time.time()
    for store, tz in STORE_ZONES.items():
        bodies: list[tuple[RecordKind, BaseModel]] = [
            *((RecordKind.ROLLUP, r) for r in store_rollups(store)),
            *((RecordKind.HEATMAP, m) for m in store_heatmaps(store)),
            *_extras(store, assets),
        ]
        records: list[SyncRecord] = [
            record(seq, body.model_dump(mode="json"), kind.value)
            for seq, (kind, body) in enumerate(bodies, start=1)
        ]
        for i in range(0, len(records), MAX_BATCH_RECORDS):
            b = batch(records[i : i + MAX_BATCH_RECORDS], device_id=f"{store}-box", store_id=store)
            ack = ingest_payload(engine, encode_batch(b), now)
            assert isinstance(ack, BatchAck) and not ack.dead_lettered, ack
        with engine.begin() as conn:
            change = StoreUpdate(name=store.title(), timezone=tz, group="pilot")
            put_store(conn, store, change, now)
    # Model versions on the fleet page: each box reports the model it runs; the first one is
    # also asked for another (a rollout under way), which the page shows beside it.
    stores = sorted(STORE_ZONES)
    with engine.begin() as conn:
        for i, store in enumerate(stores):
            running = ReportedState(
                model_name=None, model_version=None, step=TwinStep.SWITCHED,
                running_name="yolox-nano", running_version=f"1.{i}",
            )  # fmt: skip
            record_report(conn, f"{store}-box", store, running, now)
        set_desired(conn, f"{stores[0]}-box", stores[0], "yolox-nano", "2.0", None, now)
        # The last box runs layout version 2 of its store and is asked for version 3.
        applied = ConfigReport(version=2, step=ConfigStep.APPLIED, running_version=2)
        record_reported_config(conn, f"{stores[-1]}-box", stores[-1], applied, now)
        set_desired_config(conn, f"{stores[-1]}-box", stores[-1], 3, None, now)


@dataclass
class Hub:
    """The running hub and the keys the tests use."""

    process: HubProcess
    admin_key: str
    manager_key: str
    manager_name: str

    @property
    def url(self) -> str:
        """Base URL of the hub."""
        return self.process.url

    def api(self, path: str, key: str | None = None, **params: Any) -> httpx.Response:
        """GET ``/api/v1{path}`` with ``key`` (default: the HQ admin's)."""
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        return httpx.get(f"{self.url}/api/v1{path}", params=params, headers=headers, timeout=30)

    def get(self, path: str, key: str | None = None, **params: Any) -> Any:
        """The JSON of a 200 answer."""
        r = self.api(path, key, **params)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> Iterator[Hub]:
    """A hub process on a seeded SQLite file, its periodic jobs off (no alert appears or
    resolves on its own while the tests look)."""
    folder = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{folder / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    try:
        _seed(engine, assets)
        with engine.begin() as conn:
            admin, _ = create_api_key(conn, Role.HQ_ADMIN, name="HQ ops", now=time.time())
            name = "Paris and Pune manager"
            manager, _ = create_api_key(
                conn, Role.STORE_MANAGER, ["paris", "pune"], name=name, now=time.time()
            )
    finally:
        engine.dispose()
    with HubProcess(folder) as process:
        process.start(url, env={"RETAIL_HUB_RUN_JOBS": "false"})
        yield Hub(process, admin, manager, name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless (``apt-get install -y chromium``; never ``playwright
    install``)."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found: apt-get install -y chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield b
        b.close()


class Tab:
    """A browser tab on the dashboard, in its own context (its own sessionStorage), that
    records console errors and uncaught page errors."""

    def __init__(self, browser: Browser, hub: Hub) -> None:
        self.context = browser.new_context(viewport=VIEWPORT, timezone_id=BROWSER_ZONE)
        self.page: Page = self.context.new_page()
        self.hub = hub
        self.errors: list[tuple[str, str]] = []  # (text, url of the source)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append((f"page error: {e}", "")))
        self.page.goto(f"{hub.url}/dashboard/")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append((message.text, message.location.get("url", "")))

    def sign_in(self, key: str) -> str:
        """Type the key into the form; the view's state after it settles."""
        self.page.fill("#api-key", key)
        self.page.click("#login-form button[type=submit]")
        return self.settled()

    def settled(self) -> str:
        """Wait until the view is ready, failed or asks for a key; which one."""
        self.page.wait_for_function(
            "() => ['ready', 'error', 'login']"
            ".includes(document.getElementById('view').dataset.state)",
            timeout=WAIT_MS,
        )
        return str(self.page.get_attribute("#view", "data-state"))

    def show(self, route: str) -> None:
        """Go to ``#/route`` and wait for the page to be drawn (failing with what it shows)."""
        self.page.evaluate(
            "h => { document.getElementById('view').dataset.state = 'stale'; location.hash = h; }",
            f"#/{route}",
        )
        state = self.settled()
        assert state == "ready", f"{route}: {state}: {self.page.inner_text('#view')}"

    def values(self, selector: str, attribute: str = "data-value") -> list[str]:
        """``attribute`` of every element matching ``selector``, in document order."""
        got = self.page.eval_on_selector_all(
            selector, "(els, a) => els.map(e => e.getAttribute(a))", attribute
        )
        return [str(v) for v in got]

    def screenshot(self, name: str, folder: Path) -> None:
        """Save ``name.png`` in ``folder``; also in docs/screenshots/ when
        ``RETAIL_CV_UPDATE_SCREENSHOTS=1`` (so a test run leaves the checkout clean)."""
        path = folder / f"{name}.png"
        self.page.screenshot(path=str(path))
        if os.environ.get("RETAIL_CV_UPDATE_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, SCREENSHOTS / path.name)

    def close(self) -> None:
        """Close the tab's context."""
        self.context.close()


@pytest.fixture()
def tab(browser: Browser, hub: Hub) -> Iterator[Tab]:
    """A fresh tab on the dashboard, not signed in."""
    t = Tab(browser, hub)
    yield t
    t.close()


def _floats(values: list[str]) -> list[float]:
    return [float(v) for v in values]


def test_every_page_draws_the_api_numbers(tab: Tab, hub: Hub, tmp_path: Path) -> None:
    assert tab.sign_in(hub.admin_key) == "ready"

    # Overview: stores in the API's rank order, in the chart and in the table.
    tab.show(f"overview?metric=footfall_in&period=week&at={RANKING_AT}")
    ranking = hub.get("/analytics/ranking", metric="footfall_in", period="week", at=RANKING_AT)
    order = [r["store_id"] for r in ranking["items"]]
    assert sorted(order) == sorted(STORE_ZONES)
    assert tab.values("table.ranking tbody tr", "data-store") == order
    assert tab.values("svg.ranking-chart g.bar-row", "data-store") == order
    assert _floats(tab.values("svg.ranking-chart g.bar-row", "data-current")) == [
        r["current"] for r in ranking["items"]
    ]
    tab.screenshot("overview", tmp_path)

    # Footfall: one point per bucket (73 hours: Paris has a 25-hour day), the API's counts.
    q = {"store_id": "paris", "start": START.isoformat(), "end": END.isoformat()}
    footfall = hub.get("/analytics/footfall", **q, bucket="hour", limit=10_000)["items"]
    assert len(footfall) == 73
    tab.show(f"footfall?{RANGE}&bucket=hour")
    assert _floats(tab.values("svg.line-chart g[data-series=in] circle.point")) == [
        b["footfall_in"] for b in footfall
    ]
    assert _floats(tab.values("svg.line-chart g[data-series=out] circle.point")) == [
        b["footfall_out"] for b in footfall
    ]
    total_in = sum(b["footfall_in"] for b in footfall)
    assert tab.page.inner_text(".tile[data-key=in] strong").replace(",", "") == str(total_in)
    tab.screenshot("footfall", tmp_path)

    # Dwell and queues, per day: visits summed over zones, one point per local day.
    visits = hub.get("/analytics/visits", **q, bucket="day")["items"]
    tab.show(f"dwell?{RANGE}&bucket=day")
    assert len(visits) == 3
    assert _floats(tab.values("svg.line-chart g[data-series=visits] circle.point")) == [
        sum(z["visits"] for z in b["zones"]) for b in visits
    ]
    queues = hub.get("/analytics/queues", **q, bucket="day")["items"]
    means = [b["queues"][0]["mean_queue_length"] for b in queues]
    assert _floats(tab.values("g[data-series='side/checkout'] circle.point"))[:3] == means
    tab.screenshot("dwell", tmp_path)

    # Heatmap: the grid's cells carry the API's person-seconds; the gated image is shown.
    heat = hub.get("/analytics/heatmap", **q)["items"]
    assert [h["camera_id"] for h in heat] == ["entrance"]
    tab.show(f"heatmap?{RANGE}")
    cells = _floats(tab.values("svg.heat-grid[data-camera=entrance] g.cell"))
    assert cells == pytest.approx(heat[0]["person_seconds"])
    tab.page.wait_for_function(
        "() => { const i = document.querySelector('figure.snapshot img');"
        " return i && i.complete && i.naturalWidth === 384; }",
        timeout=WAIT_MS,
    )
    tab.screenshot("heatmap", tmp_path)

    # Inventory: every slot of the key's stores with its state.
    slots = hub.get("/inventory/status")["items"]
    assert len(slots) == 8
    tab.show("inventory")
    assert tab.values("table.inventory tbody tr", "data-state") == [s["state"] for s in slots]
    assert tab.page.inner_text(".tile[data-key=empty] strong") == "2"
    tab.screenshot("inventory", tmp_path)

    # Alerts: the API's list, newest first, raise times in each store's zone.
    listed = hub.get("/alerts")["items"]
    assert len(listed) == 2
    tab.show("alerts")
    assert tab.values("table.alerts tbody tr", "data-alert") == [str(a["id"]) for a in listed]
    paris_time = datetime.fromtimestamp(ALERT_AT, ZoneInfo("Europe/Paris"))
    ny_time = datetime.fromtimestamp(ALERT_AT, ZoneInfo("America/New_York"))
    text = tab.page.inner_text("table.alerts")
    assert paris_time.strftime("%Y-%m-%d %H:%M") in text
    assert ny_time.strftime("%Y-%m-%d %H:%M") in text
    tab.screenshot("alerts", tmp_path)

    # Fleet: the devices list where the hub has the route, else a clear "not available".
    devices = hub.api("/devices")
    tab.show("fleet")
    if devices.status_code == 200:
        want = [d["device_id"] for d in devices.json()["items"]]
        assert sorted(want) == sorted(f"{s}-box" for s in STORE_ZONES)
        assert tab.values("table.fleet tbody tr", "data-device") == want
        models = [f"{d['model_name']} {d['model_version']}" for d in devices.json()["items"]]
        assert tab.values("table.fleet td.model", "data-model") == models
        # Each box's own report (the seed's stores in order: 1.0, 1.1, ...).
        assert models == [f"yolox-nano 1.{i}" for i in range(len(STORE_ZONES))]
        arrows = tab.page.inner_text("table.fleet tbody").count("→ yolox-nano 2.0 (switched)")
        assert arrows == 1  # only the box the hub asks for another model
        layouts = [str(d["config_version"] or "") for d in devices.json()["items"]]
        assert layouts == [""] * (len(STORE_ZONES) - 1) + ["2"]
        assert tab.values("table.fleet td.layout", "data-layout") == layouts
        assert tab.page.inner_text("table.fleet tbody").count("→ v3 (applied)") == 1
    else:
        assert devices.status_code in (404, 405), devices.text
        assert "not available" in tab.page.inner_text(".not-available")
    tab.screenshot("fleet", tmp_path)

    # No console errors but the devices route's own 404 on a hub that lacks it.
    unexpected = [
        (text, url)
        for text, url in tab.errors
        if not (devices.status_code != 200 and re.search(r"/api/v1/devices(\?|$)", url))
    ]
    assert unexpected == []


def test_a_store_manager_sees_only_its_stores(tab: Tab, hub: Hub) -> None:
    assert tab.sign_in(hub.manager_key) == "ready"
    tab.show(f"footfall?{RANGE}")
    assert tab.values("select[name=store] option", "value") == ["paris", "pune"]

    tab.show(f"overview?at={RANKING_AT}")
    assert sorted(tab.values("table.ranking tbody tr", "data-store")) == ["paris", "pune"]

    tab.show("alerts")
    stores = tab.page.eval_on_selector_all(
        "table.alerts tbody tr td:nth-child(2)", "els => els.map(e => e.firstChild.textContent)"
    )
    assert stores == ["paris"]

    # A link naming another store shows the key's own store, never the other's data.
    tab.show("footfall?store=nyc&from=2026-10-24&to=2026-10-26")
    assert "not one of this key's stores" in tab.page.inner_text("#view")
    assert tab.page.eval_on_selector("select[name=store]", "s => s.value") == "paris"
    assert tab.errors == []


def test_an_alert_acknowledged_in_the_page_is_acknowledged_in_the_api(tab: Tab, hub: Hub) -> None:
    alert = hub.get("/alerts", store_id="paris", state="open")["items"][0]
    assert tab.sign_in(hub.manager_key) == "ready"
    tab.show("alerts?store=paris&state=open")
    tab.page.click(f"button.ack[data-alert='{alert['id']}']")
    tab.page.wait_for_selector(f"tr[data-alert='{alert['id']}'][data-state=acknowledged]")
    assert f"acknowledged by {hub.manager_name}" in tab.page.inner_text("table.alerts")

    after = hub.get(f"/alerts/{alert['id']}")
    assert after["state"] == "acknowledged"
    assert after["acknowledged_by"] == hub.manager_name
    assert tab.errors == []


def test_api_errors_are_shown_and_a_refused_key_is_asked_again(tab: Tab, hub: Hub) -> None:
    assert tab.sign_in("rcv_" + "x" * 43) == "login"
    assert "unknown or revoked API key" in tab.page.inner_text("#login-error")
    assert tab.page.evaluate("() => sessionStorage.length") == 0

    assert tab.sign_in(hub.admin_key) == "ready"
    assert hub.admin_key not in tab.page.url
    # a month of minute buckets is more than the API serves: its message reaches the user
    tab.page.evaluate(
        "() => { document.getElementById('view').dataset.state = 'stale';"
        " location.hash = '#/footfall?store=paris&from=2026-10-01&to=2026-10-31&bucket=minute'; }"
    )
    assert tab.settled() == "error"
    assert "more than 10000" in tab.page.inner_text("#view")


def test_files_are_served_with_their_types_and_a_strict_policy(hub: Hub) -> None:
    r = httpx.get(f"{hub.url}/dashboard", follow_redirects=False)
    assert r.status_code == 308 and r.headers["location"] == "dashboard/"
    page = httpx.get(f"{hub.url}/dashboard/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), "inline script in index.html"
    assert not re.search(r"\bstyle=", page.text), "inline style in index.html"
    for name, kind in [("app.js", "text/javascript"), ("app.css", "text/css")]:
        f = httpx.get(f"{hub.url}/dashboard/{name}")
        assert f.status_code == 200 and f.headers["content-type"].startswith(kind)
        etag = {"If-None-Match": f.headers["etag"]}
        assert httpx.get(f"{hub.url}/dashboard/{name}", headers=etag).status_code == 304
    for name in ["router.py", "__init__.py", "..%2Frouter.py", "missing.js"]:
        assert httpx.get(f"{hub.url}/dashboard/{name}").status_code == 404
    assert "/dashboard" not in str(httpx.get(f"{hub.url}/openapi.json").json()["paths"])
