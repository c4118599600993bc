"""Tracker settings.

Moved to ``common.store_config.tracker`` (the hub validates the store configuration it rolls
out with the same models); re-exported here for existing imports.
"""

from common.store_config.tracker import TrackerConfig

__all__ = ["TrackerConfig"]
