"""Analytics config: the documented YAML loads; every bad field is named in the error."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from edge_agent.analytics import CameraAnalyticsConfig

EXAMPLE = """
lines:
  - id: door
    points: [[0.05, 0.70], [0.95, 0.70]]
    inside: [0.5, 0.30]
    hysteresis: 0.02
zones:
  - id: display
    polygon: [[0.3, 0.2], [0.7, 0.2], [0.7, 0.9], [0.3, 0.9]]
    kind: dwell
    min_dwell_s: 2
    engaged_s: 10
    exit_grace_s: 1.0
  - id: checkout
    polygon: [[0.0, 0.0], [0.2, 0.0], [0.2, 0.5]]
    kind: queue
  - id: shelf-a
    polygon: [[0.8, 0.0], [1.0, 0.0], [1.0, 0.3], [0.8, 0.3]]
    kind: shelf
alerts:
  - id: long-queue
    metric: queue_length
    target: checkout
    op: ">"
    threshold: 3
    for_s: 30
    clear_threshold: 2
    cooldown_s: 300
heatmap: {grid: [32, 18]}
rollup_interval_s: 60
"""


def load(text: str) -> CameraAnalyticsConfig:
    return CameraAnalyticsConfig.model_validate(yaml.safe_load(text))


def test_documented_example_loads_with_its_values() -> None:
    cfg = load(EXAMPLE)
    door = cfg.lines[0]
    assert door.points == ((0.05, 0.70), (0.95, 0.70)) and door.hysteresis == 0.02
    # The inside point (y = 0.3) is above the line (y = 0.7): 0.4 away on the inside.
    assert abs(door.inside_distance) == pytest.approx(0.4)
    assert [z.kind for z in cfg.zones] == ["dwell", "queue", "shelf"]
    assert cfg.zones[0].engaged_s == 10 and cfg.zones[0].exit_grace_s == 1.0
    assert cfg.alerts[0].clear_at == 2 and cfg.alerts[0].cooldown_s == 300
    assert cfg.heatmap.grid == (32, 18) and cfg.rollup_interval_s == 60
    assert cfg.min_hits == 3


def mutate(path: str, value: object) -> dict:
    data = yaml.safe_load(EXAMPLE)
    node = data
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node[k]
    last = keys[-1]
    node[int(last) if last.isdigit() else last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "where", "says"),
    [
        ("zones.0.polygon", [[0.1, 0.1], [0.2, 0.2]], "zones.0.polygon", "at least 3 points"),
        ("zones.0.polygon", [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]], "zones.0.polygon", "no area"),
        ("zones.0.polygon", [[0, 0], [640, 0], [640, 480]], "zones.0.polygon", "normalised"),
        ("lines.0.points", [[0.5, 0.5], [0.5, 0.5]], "lines.0.points", "must differ"),
        ("lines.0.points", [[0.5, 0.5], [1.5, 0.5]], "lines.0.points", "outside the frame"),
        ("lines.0.inside", [0.5, 0.71], "lines.0", "within hysteresis"),
        ("lines.0.hysteresis", -0.1, "lines.0.hysteresis", "greater than or equal"),
        ("lines.0.id", "front door", "lines.0.id", "letters, digits"),
        ("zones.0.kind", "aisle", "zones.0.kind", "dwell"),
        ("zones.0.engaged_s", 1, "zones.0", "below min_dwell_s"),
        ("zones.0.exit_grace_s", -1, "zones.0.exit_grace_s", "greater than or equal"),
        ("alerts.0.op", "=>", "alerts.0.op", "'>'"),
        ("alerts.0.clear_threshold", 5, "alerts.0", "must be <= threshold"),
        ("alerts.0.metric", "Queue Length", "alerts.0.metric", "snake_case"),
        ("heatmap.grid", [0, 18], "heatmap.grid.0", "greater than or equal"),
        ("rollup_interval_s", 0, "rollup_interval_s", "greater than or equal"),
        ("zones.1.id", "door", "", "repeated: ['door']"),
    ],
)
def test_errors_name_the_field(path: str, value: object, where: str, says: str) -> None:
    with pytest.raises(ValidationError) as err:
        CameraAnalyticsConfig.model_validate(mutate(path, value))
    locs = [".".join(str(p) for p in e["loc"]) for e in err.value.errors()]
    assert where in locs, locs
    assert says in str(err.value)


def test_unknown_keys_are_rejected_by_name() -> None:
    data = mutate("zones.0.min_dwel_s", 3)
    with pytest.raises(ValidationError, match="min_dwel_s"):
        CameraAnalyticsConfig.model_validate(data)


def test_json_schema_describes_units() -> None:
    schema = CameraAnalyticsConfig.model_json_schema()
    zone = schema["$defs"]["ZoneConfig"]["properties"]
    assert "seconds" in zone["exit_grace_s"]["description"]
    assert "normalised" in zone["polygon"]["description"]
