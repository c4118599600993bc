"""Store layouts for the config version and config rollout tests: a valid one to vary, as JSON."""

from __future__ import annotations

from typing import Any


def layout_json(queue_alert: float = 4.0, camera: str = "entrance") -> dict[str, Any]:
    """A valid layout: one camera (source left to the box) with a door line, a queue zone and
    an alert on the queue; ``queue_alert`` varies it (so versions differ)."""
    return {
        "timezone": "Europe/Paris",
        "cameras": [
            {
                "id": camera,
                "fps": 4.0,
                "lines": [{"id": "door", "points": [[0.1, 0.6], [0.9, 0.6]], "inside": [0.5, 0.9]}],
                "zones": [
                    {
                        "id": "till",
                        "kind": "queue",
                        "polygon": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5], [0.1, 0.5]],
                    }
                ],
                "alerts": [
                    {
                        "id": "long-queue",
                        "metric": "queue_length",
                        "target": "till",
                        "op": ">=",
                        "threshold": queue_alert,
                    }
                ],
            }
        ],
    }
