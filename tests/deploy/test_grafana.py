"""The example Grafana dashboard only queries metrics the hub and the edge really export."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_every_dashboard_query_names_an_exported_metric() -> None:
    dash = json.loads((ROOT / "deploy/grafana/retail-cv-dashboard.json").read_text())
    sources = (ROOT / "cloud_hub/core/metrics.py").read_text() + (
        ROOT / "edge_agent/metrics.py"
    ).read_text()
    exported = set(re.findall(r'"(retail_(?:hub|edge)_[a-z_]+)"', sources))
    assert len(exported) >= 10
    queried: set[str] = set()
    for panel in dash["panels"]:
        for target in panel["targets"]:
            queried |= set(re.findall(r"retail_(?:hub|edge)_[a-z_]+", target["expr"]))
    assert queried
    for name in queried:
        base = re.sub(r"_(total|bucket|count|sum)$", "", name)
        assert name in exported or base in exported, name
