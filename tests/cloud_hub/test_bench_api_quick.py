"""The hub API benchmark (benchmarks/bench_api.py) end to end in its quick size, on a private
PostgreSQL and a real ``retail-hub serve``: every route's sampled answers equal what the
service's own SQL returns when run directly (correctness, not speed)."""

from __future__ import annotations

import sys
from typing import Any

from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import bench_api


def test_quick_run_checks_every_route_against_direct_sql() -> None:
    """10 stores x 7 days, a short timing phase per route; answers cross-checked first."""
    rep = bench_api.run(n_stores=10, days=7, clients=4, duration_s=1.0, n_samples=4)

    assert rep.loaded is not None
    # at least the counters and the always-sampled series, every store-minute
    assert rep.loaded.rollups >= 10 * 7 * 1440 * 10
    assert rep.loaded.heatmaps == 10 * 7 * 24 * 2
    # loaded below the hourly sums' revision, then filled by migrating (as production does)
    assert rep.fill is not None and rep.fill.minute_rows == rep.loaded.rollups
    assert 0 < rep.fill.hourly_rows < rep.fill.minute_rows
    assert rep.probe is not None and rep.probe.batches == 10 * 10  # 10 minutes x 10 stores
    assert len(rep.probe.hourly_ms) == rep.probe.batches  # the hourly upsert ran in each
    assert [r.name for r in rep.routes] == [name for name, _, _ in bench_api.ROUTES]
    for r in rep.routes:
        assert r.checked >= 1, r.name  # check_answers raises on any difference
        assert r.rows_per_call > 0, r.name
        assert r.api.errors == 0 and r.api.latencies and r.sql.latencies, r.name
    assert "| ranking week vs last |" in bench_api.report_text(rep)


def test_answer_check_sees_a_changed_number() -> None:
    """The comparison is not vacuous: one count off, or one bucket missing, is a difference."""
    path, ts = "/analytics/footfall", 1_780_000_000  # 2026-05-28T20:26:40Z
    rows = [
        [("store",)],
        [
            (ts, "entrance", "door", "line_in", 7, None, None, None),
            (ts, "entrance", "door", "line_out", 5, None, None, None),
        ],
    ]
    line = {"camera_id": "entrance", "line_id": "door", "footfall_in": 7, "footfall_out": 5}
    body: dict[str, Any] = {"items": [{"start": "2026-05-28T20:26:40+00:00", "lines": [line]}]}
    sql = bench_api.sql_facts(path, rows)

    def differ() -> list[str]:
        return bench_api.facts_differ(
            path, bench_api.api_facts(path, {"bucket": "hour"}, body), sql
        )

    assert differ() == []
    line["footfall_in"] = 8
    assert differ()
    body["items"] = []
    assert differ()
