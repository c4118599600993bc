"""Analytics settings of one camera.

Moved to ``common.store_config.analytics`` (the hub validates the store configuration it rolls
out with the same models); re-exported here for existing imports.
"""

from common.store_config.analytics import (
    MAX_SHELF_ID,
    AlertRule,
    CameraAnalyticsConfig,
    HeatmapConfig,
    LineConfig,
    Point,
    ZoneConfig,
)

__all__ = [
    "MAX_SHELF_ID",
    "AlertRule",
    "CameraAnalyticsConfig",
    "HeatmapConfig",
    "LineConfig",
    "Point",
    "ZoneConfig",
]
