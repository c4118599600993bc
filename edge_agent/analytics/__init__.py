"""Store analytics from tracks: footfall lines, zones and dwell, queues, heatmaps, alerts, rollups.

Pure logic over numpy arrays; time is always passed in (media seconds), never read from a clock.
``CameraAnalytics`` is the per-camera facade; the pieces are usable on their own.
"""

from edge_agent.analytics.alerts import AlertEngine, AlertEvent
from edge_agent.analytics.camera import AnalyticsOutput, CameraAnalytics
from edge_agent.analytics.config import (
    AlertRule,
    CameraAnalyticsConfig,
    HeatmapConfig,
    LineConfig,
    ZoneConfig,
)
from edge_agent.analytics.heatmap import HeatmapAccumulator
from edge_agent.analytics.lines import LineCounter, LineCrossing
from edge_agent.analytics.queues import QueueWaitEstimator
from edge_agent.analytics.rollups import RollupBook, bucket_start
from edge_agent.analytics.summary import AnalyticsSummary
from edge_agent.analytics.zones import DwellTracker, Visit, ZoneTracker

__all__ = [
    "AlertEngine",
    "AlertEvent",
    "AlertRule",
    "AnalyticsOutput",
    "AnalyticsSummary",
    "CameraAnalytics",
    "CameraAnalyticsConfig",
    "DwellTracker",
    "HeatmapAccumulator",
    "HeatmapConfig",
    "LineConfig",
    "LineCounter",
    "LineCrossing",
    "QueueWaitEstimator",
    "RollupBook",
    "Visit",
    "ZoneConfig",
    "ZoneTracker",
    "bucket_start",
]
