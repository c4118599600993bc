"""Errors of the export tooling (bundles, YOLO export, quantisation), each actionable."""

from __future__ import annotations


class ExportError(Exception):
    """A model, frame source or option the export tooling cannot use; the message says why."""
