"""Telemetry wire contracts: round trips, natural keys, and the inconsistencies they refuse."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from common.telemetry import (
    AlertPayload,
    AnalyticsEvent,
    EventKind,
    HeatmapRollup,
    LineCrossingPayload,
    Rollup,
    RollupKind,
    VisitPayload,
)

BASE = {
    "store_id": "store-1",
    "camera_id": "cam-1",
    "target_id": "door",
    "metric": "line_in",
    "bucket_start": 1_700_000_040,  # 28333334 minutes
    "interval_s": 60,
}


def test_counter_rollup_round_trip_and_key() -> None:
    r = Rollup.model_validate(BASE | {"kind": "counter", "count": 12})
    wire = json.loads(r.model_dump_json())
    assert wire["schema_version"] == 1 and wire["bucket_start"] == 1_700_000_040
    assert Rollup.model_validate(wire) == r
    assert r.natural_key == ("store-1", "cam-1", "door", "line_in", 1_700_000_040)
    assert r.mean is None


def test_samples_rollup_with_histogram() -> None:
    r = Rollup.model_validate(
        BASE
        | {
            "metric": "dwell_s",
            "kind": RollupKind.SAMPLES,
            "count": 3,
            "sum": 42.0,
            "min": 2.0,
            "max": 30.0,
            "histogram_edges": [5.0, 10.0],
            "histogram": [1, 1, 1],
        }
    )
    assert r.mean == 14.0
    assert Rollup.model_validate_json(r.model_dump_json()) == r


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"kind": "counter", "count": 1, "bucket_start": 1_700_000_041}, "not aligned"),
        ({"kind": "counter", "count": 1, "sum": 1.0}, "only count"),
        ({"kind": "samples", "count": 0, "sum": 0.0, "min": 0.0, "max": 0.0}, "count >= 1"),
        ({"kind": "samples", "count": 2, "sum": 10.0, "min": 6.0, "max": 9.0}, "mean"),
        (
            {
                "kind": "samples",
                "count": 2,
                "sum": 4.0,
                "min": 1,
                "max": 3,
                "histogram_edges": [2.0],
                "histogram": [1, 0],
            },
            "add up to count",
        ),
        (
            {
                "kind": "samples",
                "count": 1,
                "sum": 1.0,
                "min": 1,
                "max": 1,
                "histogram_edges": [2.0, 1.0],
                "histogram": [1, 0, 0],
            },
            "increase strictly",
        ),
        ({"kind": "counter", "count": 1, "schema_version": 2}, "schema_version"),
        ({"kind": "counter", "count": 1, "metric": "Line In"}, "metric"),
        ({"kind": "counter", "count": -1}, "count"),
    ],
)
def test_rollup_refuses_inconsistent_values(change: dict, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        Rollup.model_validate(BASE | change)


def test_heatmap_rollup_checks_its_grid() -> None:
    ok = {
        "store_id": "s",
        "camera_id": "c",
        "bucket_start": 120,
        "interval_s": 60,
        "grid_w": 3,
        "grid_h": 2,
        "person_seconds": [0.0, 1.5, 0.0, 0.0, 0.0, 2.0],
    }
    hm = HeatmapRollup.model_validate(ok)
    assert HeatmapRollup.model_validate_json(hm.model_dump_json()) == hm
    with pytest.raises(ValidationError, match="grid needs"):
        HeatmapRollup.model_validate(ok | {"person_seconds": [1.0] * 5})
    with pytest.raises(ValidationError, match="finite and >= 0"):
        HeatmapRollup.model_validate(ok | {"person_seconds": [-1.0] + [0.0] * 5})


def event(kind: str, payload: dict, track_id: int | None = 7, at: float = 1_700_000_100.5) -> dict:
    return {
        "kind": kind,
        "store_id": "store-1",
        "camera_id": "cam-1",
        "target_id": "door",
        "occurred_at": at,
        "track_id": track_id,
        "payload": payload,
    }


def test_events_parse_to_the_payload_of_their_kind() -> None:
    crossing = AnalyticsEvent.model_validate(event("line_crossing", {"direction": "in"}))
    assert isinstance(crossing.payload, LineCrossingPayload)
    visit = AnalyticsEvent.model_validate(
        event(
            "visit",
            {"zone_kind": "dwell", "entered_at": 1_700_000_090.5, "dwell_s": 10.0, "engaged": True},
        )
    )
    assert isinstance(visit.payload, VisitPayload)
    alert = AnalyticsEvent.model_validate(
        event(
            "alert_raised",
            {
                "rule_id": "long-queue",
                "metric": "queue_length",
                "op": ">",
                "threshold": 3,
                "clear_threshold": 2,
                "value": 5,
            },
            track_id=None,
        )
    )
    assert isinstance(alert.payload, AlertPayload) and alert.kind is EventKind.ALERT_RAISED
    for e in (crossing, visit, alert):
        assert AnalyticsEvent.model_validate_json(e.model_dump_json()) == e


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (event("visit", {"direction": "in"}), "VisitPayload"),
        (event("line_crossing", {"direction": "in"}, track_id=None), "needs track_id"),
        (
            event(
                "alert_cleared",
                {
                    "rule_id": "r",
                    "metric": "m",
                    "op": "<",
                    "threshold": 1,
                    "clear_threshold": 1,
                    "value": 1,
                },
            ),
            "has no track_id",
        ),
        (
            event(
                "visit",
                {
                    "zone_kind": "dwell",
                    "entered_at": 1_700_000_000.0,
                    "dwell_s": 10.0,
                    "engaged": True,
                },
            ),
            "differs from occurred_at - entered_at",
        ),
        (event("line_crossing", {"direction": "sideways"}), "direction"),
        (event("teleport", {"direction": "in"}), "kind"),
    ],
)
def test_events_refuse_mismatches(data: dict, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        AnalyticsEvent.model_validate(data)


def test_json_schemas_export() -> None:
    for model in (Rollup, HeatmapRollup, AnalyticsEvent):
        schema = model.model_json_schema()
        assert "schema_version" in schema["properties"]
