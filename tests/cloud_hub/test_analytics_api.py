"""The analytics API over three stores in three time zones, on SQLite and on PostgreSQL.

Data goes in through the real ingest path (``tests/cloud_hub/store_seed.py``); expected numbers
are summed here from what was seeded, grouped by ``zoneinfo``'s local date, hour or week.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from cloud_hub.core.config import HubSettings
from cloud_hub.core.security import Role
from cloud_hub.db import create_hub_engine
from cloud_hub.main import create_app
from cloud_hub.migrate import upgrade_database
from cloud_hub.services.api_keys import create_api_key
from common.telemetry import Rollup
from tests.cloud_hub.store_seed import (
    STORE_ZONES,
    expect,
    local,
    local_day,
    local_hour,
    local_week,
    seed,
    store_heatmaps,
    zone,
)
from tests.services import PostgresProcess

API = "/api/v1"


@dataclass
class Hub:
    """A seeded hub: an in-process client, an HQ admin's headers, what was seeded."""

    client: TestClient
    headers: dict[str, str]
    seeded: dict[str, list[Rollup]]

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        r = self.client.get(API + path, params=params, headers=self.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert isinstance(body, dict)
        return body


def _start_hub(url: str) -> Iterator[Hub]:
    upgrade_database(url)
    engine = create_hub_engine(url)
    seeded = seed(engine)
    with engine.begin() as conn:
        key, _ = create_api_key(conn, Role.HQ_ADMIN, now=0.0)
    engine.dispose()
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(HubSettings(database_url=url))) as client:
        for store, tz in STORE_ZONES.items():  # stores arrive as UTC; HQ sets their zones
            body = {"name": store.title(), "timezone": tz, "group": "pilot"}
            r = client.put(f"{API}/stores/{store}", json=body, headers=headers)
            assert r.status_code == 200, r.text
        yield Hub(client, headers, seeded)


@pytest.fixture(scope="module")
def sqlite_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """The seeded hub on a SQLite file."""
    folder: Path = tmp_path_factory.mktemp("analytics")
    yield from _start_hub(f"sqlite:///{folder / 'hub.db'}")


@pytest.fixture(scope="module")
def pg_hub(postgres_server: PostgresProcess) -> Iterator[Hub]:
    """The seeded hub on a fresh PostgreSQL database."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = f"host=127.0.0.1 port={postgres_server.port} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield from _start_hub(postgres_server.url.rsplit("/", 1)[0] + "/" + name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def hub(request: pytest.FixtureRequest) -> Hub:
    """The seeded hub, once per backend."""
    name = "sqlite_hub" if request.param == "sqlite" else "pg_hub"
    found = request.getfixturevalue(name)
    assert isinstance(found, Hub)
    return found


def _whole_range(store: str) -> dict[str, str]:
    z = zone(store)
    return {
        "start": datetime(2026, 3, 1, tzinfo=z).isoformat(),
        "end": datetime(2026, 11, 10, tzinfo=z).isoformat(),
    }


def _in_range(rollups: list[Rollup], start: datetime, end: datetime) -> list[Rollup]:
    lo, hi = start.timestamp(), end.timestamp()
    return [r for r in rollups if lo <= r.bucket_start < hi]


def _ts(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


@pytest.mark.parametrize("store", list(STORE_ZONES))
def test_footfall_per_local_day_is_the_sum_of_that_days_counters(hub: Hub, store: str) -> None:
    page = hub.get(
        "/analytics/footfall", store_id=store, bucket="day", limit=1000, **_whole_range(store)
    )
    ins = expect(hub.seeded[store], local_day(store), "line_in")
    outs = expect(hub.seeded[store], local_day(store), "line_out")
    assert page["timezone"] == STORE_ZONES[store] and page["next_offset"] is None
    assert page["total"] == len(page["items"]) == (date(2026, 11, 10) - date(2026, 3, 1)).days
    seen = 0
    for item in page["items"]:
        day = datetime.fromisoformat(item["start"]).date()
        assert datetime.fromisoformat(item["start"]).time().hour == 0  # local midnight
        want_in = ins[day].count if day in ins else 0
        want_out = outs[day].count if day in outs else 0
        assert (item["footfall_in"], item["footfall_out"]) == (want_in, want_out), day
        assert item["footfall_in"] == sum(x["footfall_in"] for x in item["lines"])
        seen += want_in
    assert seen == sum(r.count for r in hub.seeded[store] if r.metric == "line_in")
    lengths = {
        datetime.fromisoformat(i["start"]).date(): (_ts(i["end"]) - _ts(i["start"])) // 3600
        for i in page["items"]
    }
    short, long = {
        "paris": (date(2026, 3, 29), date(2026, 10, 25)),
        "nyc": (date(2026, 3, 8), date(2026, 11, 1)),
        "pune": (None, None),
    }[store]
    assert {d for d, h in lengths.items() if h == 23} == ({short} if short else set())
    assert {d for d, h in lengths.items() if h == 25} == ({long} if long else set())


@pytest.mark.parametrize(
    ("store", "first"),
    [("paris", date(2026, 10, 24)), ("nyc", date(2026, 10, 31)), ("pune", date(2026, 10, 24))],
)
def test_footfall_per_local_hour_across_the_autumn_change(
    hub: Hub, store: str, first: date
) -> None:
    z = zone(store)
    start = datetime(first.year, first.month, first.day, tzinfo=z)
    end = start + timedelta(days=3)
    page = hub.get(
        "/analytics/footfall",
        store_id=store,
        bucket="hour",
        limit=1000,
        start=start.isoformat(),
        end=end.isoformat(),
    )
    change = 1 if store != "pune" else 0  # the autumn day has one hour more
    assert page["total"] == 72 + change
    want = expect(_in_range(hub.seeded[store], start, end), local_hour(store), "line_in")
    got = {_ts(i["start"]): i["footfall_in"] for i in page["items"] if i["footfall_in"]}
    assert got == {k: v.count for k, v in want.items() if v.count}
    if store == "pune":  # UTC+5:30: local hours start at half past the UTC hour
        assert all(_ts(i["start"]) % 3600 == 1800 for i in page["items"])


@pytest.mark.parametrize("store", list(STORE_ZONES))
def test_footfall_per_local_week_starts_on_monday(hub: Hub, store: str) -> None:
    page = hub.get("/analytics/footfall", store_id=store, bucket="week", **_whole_range(store))
    want = expect(hub.seeded[store], local_week(store), "line_in")
    got = {}
    for item in page["items"]:
        start = datetime.fromisoformat(item["start"])
        assert start.weekday() == 0 and start.hour == 0
        if item["footfall_in"]:
            got[start.date()] = item["footfall_in"]
    assert got == {k: v.count for k, v in want.items() if v.count}


def test_camera_and_line_filters_pick_one_line(hub: Hub) -> None:
    store = "nyc"
    rng = _whole_range(store)
    door = hub.get("/analytics/footfall", store_id=store, bucket="week", line_id="door", **rng)
    side = hub.get("/analytics/footfall", store_id=store, bucket="week", camera_id="side", **rng)
    both = hub.get("/analytics/footfall", store_id=store, bucket="week", **rng)
    for d, s, b in zip(door["items"], side["items"], both["items"], strict=True):
        assert {x["line_id"] for x in d["lines"]} <= {"door"}
        assert {x["camera_id"] for x in s["lines"]} <= {"side"}
        assert d["footfall_in"] + s["footfall_in"] == b["footfall_in"]
    want = sum(
        r.count for r in hub.seeded[store] if r.metric == "line_in" and r.target_id == "door"
    )
    assert sum(i["footfall_in"] for i in door["items"]) == want


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("store", ["paris", "nyc"])
def test_visits_queues_and_occupancy_per_local_day(hub: Hub, store: str) -> None:
    rng = {**_whole_range(store), "bucket": "day", "limit": 1000}
    seeded = hub.seeded[store]
    day = local_day(store)
    visits = hub.get("/analytics/visits", store_id=store, **rng)["items"]
    queues = hub.get("/analytics/queues", store_id=store, **rng)["items"]
    occupancy = hub.get("/analytics/occupancy", store_id=store, **rng)["items"]
    n_visits, dwell, engaged = (expect(seeded, day, m) for m in ("visits", "dwell_s", "engaged"))
    length, served, wait = (
        expect(seeded, day, m) for m in ("queue_length", "served", "queue_wait_s")
    )
    occ, people = expect(seeded, day, "occupancy"), expect(seeded, day, "people")
    checked = 0
    for v, q, o in zip(visits, queues, occupancy, strict=True):
        d = datetime.fromisoformat(v["start"]).date()
        if d not in dwell:
            assert v["zones"] == q["queues"] == o["targets"] == []
            continue
        (zone_row,) = v["zones"]
        assert (zone_row["camera_id"], zone_row["zone_id"]) == ("entrance", "display")
        assert zone_row["visits"] == n_visits[d].count and zone_row["engaged"] == engaged[d].count
        assert zone_row["dwell_samples"] == dwell[d].count
        assert _close(zone_row["mean_dwell_s"], dwell[d].mean)
        assert _close(zone_row["max_dwell_s"], dwell[d].max)
        (queue,) = q["queues"]
        assert _close(queue["mean_queue_length"], length[d].mean)
        assert _close(queue["max_queue_length"], length[d].max)
        assert queue["served"] == served[d].count and _close(queue["mean_wait_s"], wait[d].mean)
        by_metric = {t["metric"]: t for t in o["targets"]}
        assert _close(by_metric["occupancy"]["mean"], occ[d].mean)
        assert by_metric["occupancy"]["samples"] == occ[d].count
        assert _close(by_metric["people"]["max"], people[d].max)
        assert by_metric["people"]["target_id"] == "side"
        checked += 1
    assert checked >= 12  # four windows of three days, at least


def test_heatmap_sums_person_seconds_over_the_range(hub: Hub) -> None:
    z = zone("pune")
    start, end = datetime(2026, 10, 31, 6, tzinfo=z), datetime(2026, 11, 2, 18, tzinfo=z)
    page = hub.get(
        "/analytics/heatmap", store_id="pune", start=start.isoformat(), end=end.isoformat()
    )
    inside = [
        h for h in store_heatmaps("pune") if start.timestamp() <= h.bucket_start < end.timestamp()
    ]
    (item,) = page["items"]
    assert (item["camera_id"], item["grid_w"], item["grid_h"]) == ("entrance", 4, 3)
    assert item["buckets"] == len(inside) > 0
    want = [sum(cells) for cells in zip(*(h.person_seconds for h in inside), strict=True)]
    assert all(_close(a, b) for a, b in zip(item["person_seconds"], want, strict=True))
    none = hub.get(
        "/analytics/heatmap",
        store_id="pune",
        camera_id="side",
        start=start.isoformat(),
        end=end.isoformat(),
    )
    assert none["items"] == [] and none["total"] == 0


def test_ranking_compares_this_week_so_far_with_last_week_in_local_time(hub: Hub) -> None:
    at = datetime(2026, 11, 3, 12, tzinfo=UTC)
    page = hub.get("/analytics/ranking", metric="footfall_in", period="week", at=at.isoformat())
    want = {}
    for store in STORE_ZONES:
        now = at.astimezone(zone(store))
        monday = now.date() - timedelta(days=now.weekday())
        wall = now.replace(tzinfo=None)
        current = previous = 0
        for r in hub.seeded[store]:
            if r.metric != "line_in":
                continue
            t = local(r.bucket_start, store).replace(tzinfo=None)
            if monday <= t.date() and t < wall:
                current += r.count
            elif monday - timedelta(days=7) <= t.date() and t < wall - timedelta(days=7):
                previous += r.count
        want[store] = (float(current), float(previous), (current - previous) / previous * 100)
    got = {i["store_id"]: (i["current"], i["previous"], i["change_pct"]) for i in page["items"]}
    assert got.keys() == want.keys()
    for store, (cur, prev, pct) in want.items():
        assert got[store][:2] == (cur, prev) and _close(got[store][2], pct)
    assert [i["rank"] for i in page["items"]] == [1, 2, 3]
    currents = [i["current"] for i in page["items"]]
    assert currents == sorted(currents, reverse=True)
    paris = next(i for i in page["items"] if i["store_id"] == "paris")
    assert paris["current_start"] == "2026-11-02T00:00:00+01:00"
    assert paris["previous_end"] == "2026-10-27T13:00:00+01:00"
    means = hub.get("/analytics/ranking", metric="mean_dwell_s", period="day", at=at.isoformat())
    assert {i["store_id"] for i in means["items"]} == set(STORE_ZONES)


def test_pages_of_buckets_join_up_to_the_whole_series(hub: Hub) -> None:
    z = zone("paris")
    rng = {
        "store_id": "paris",
        "bucket": "hour",
        "start": datetime(2026, 10, 24, 20, tzinfo=z).isoformat(),
        "end": datetime(2026, 10, 26, 3, tzinfo=z).isoformat(),
    }
    whole = hub.get("/analytics/visits", limit=1000, **rng)
    pages, offset = [], 0
    while offset is not None:
        page = hub.get("/analytics/visits", limit=7, offset=offset, **rng)
        assert page["total"] == whole["total"] == 32  # 31 hours of wall clock + the repeated one
        pages.extend(page["items"])
        offset = page["next_offset"]
    assert pages == whole["items"]
    assert hub.get("/analytics/visits", limit=7, offset=999, **rng)["items"] == []


def test_minute_buckets_are_the_stored_rollups(hub: Hub) -> None:
    z = zone("nyc")
    start, end = datetime(2026, 11, 1, 1, tzinfo=z), datetime(2026, 11, 1, 3, tzinfo=z)
    page = hub.get(
        "/analytics/footfall",
        store_id="nyc",
        bucket="minute",
        limit=1000,
        line_id="door",
        start=start.isoformat(),
        end=end.isoformat(),
    )
    assert page["total"] == 180  # 01:00-03:00 on the autumn change: three hours
    want = {
        r.bucket_start: r.count
        for r in _in_range(hub.seeded["nyc"], start, end)
        if r.metric == "line_in" and r.target_id == "door" and r.count
    }
    got = {_ts(i["start"]): i["footfall_in"] for i in page["items"] if i["footfall_in"]}
    assert got == want


@pytest.mark.parametrize(
    ("path", "params", "field", "says"),
    [
        (
            "footfall",
            {"start": "2026-10-24T00:00:00", "end": "2026-10-25T00:00:00Z"},
            "start",
            "UTC offset",
        ),
        (
            "visits",
            {"start": "2026-10-25T00:00:00Z", "end": "2026-10-24T00:00:00Z"},
            "end",
            "after",
        ),
        (
            "queues",
            {"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z", "bucket": "hour"},
            "bucket",
            "coarser bucket",
        ),
        (
            "occupancy",
            {"start": "2026-01-01T00:00:00Z", "end": "2026-01-08T00:00:00Z", "bucket": "fortnight"},
            "bucket",
            "minute",
        ),
        (
            "heatmap",
            {"start": "2026-01-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"},
            "end",
            "31 days",
        ),
        ("footfall", {"start": "yesterday", "end": "2026-01-08T00:00:00Z"}, "start", ""),
    ],
)
def test_bad_ranges_are_422_naming_the_parameter(
    sqlite_hub: Hub, path: str, params: dict[str, str], field: str, says: str
) -> None:
    r = sqlite_hub.client.get(
        f"{API}/analytics/{path}",
        params={"store_id": "paris", **params},
        headers=sqlite_hub.headers,
    )
    assert r.status_code == 422, r.text
    (err,) = r.json()["detail"]
    assert err["loc"] == ["query", field] and says in err["msg"], err


def _same(a: Any, b: Any) -> bool:
    """Equal, floats within 1e-9 relative: the databases add a bucket's samples in the order
    their plans read them, so a sum can differ in its last bits (rounding both to N digits
    still splits a value that straddles a rounding boundary: 60.63640624999999 and
    60.636406250000014)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def test_sqlite_and_postgresql_give_the_same_answers(sqlite_hub: Hub, pg_hub: Hub) -> None:
    asked = []
    for store in STORE_ZONES:
        z = zone(store)
        autumn = {
            "start": datetime(2026, 10, 23, tzinfo=z).isoformat(),
            "end": datetime(2026, 11, 4, tzinfo=z).isoformat(),
        }
        for bucket, rng in (
            ("hour", autumn),
            ("day", _whole_range(store)),
            ("week", _whole_range(store)),
        ):
            for route in ("footfall", "visits", "queues", "occupancy"):
                asked.append(
                    (
                        f"/analytics/{route}",
                        {"store_id": store, "bucket": bucket, "limit": 1000, **rng},
                    )
                )
    at = "2026-11-01T07:30:00+01:00"
    for period in ("day", "week", "month"):
        asked.append(("/analytics/ranking", {"metric": "mean_wait_s", "period": period, "at": at}))
    for path, params in asked:
        a, b = sqlite_hub.get(path, **params), pg_hub.get(path, **params)
        assert _same(a, b), (path, params)
