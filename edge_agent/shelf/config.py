"""Shelf monitoring settings of one shelf zone.

Moved to ``common.store_config.shelf`` (the hub validates the store configuration it rolls out
with the same models); re-exported here for existing imports.
"""

from common.store_config.shelf import ID_PATTERN, OcclusionConfig, ShelfConfig, SlotConfig

__all__ = ["ID_PATTERN", "OcclusionConfig", "ShelfConfig", "SlotConfig"]
