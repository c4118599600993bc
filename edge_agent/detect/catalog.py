"""Manifests for well-known public models. Moved to ``common.catalog`` (``retail-export import``
uses them too); re-exported for existing imports."""

from common.catalog import COCO80, KNOWN_MODELS

__all__ = ["COCO80", "KNOWN_MODELS"]
