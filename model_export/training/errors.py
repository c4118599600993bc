"""Errors of the detector training tooling, each with a message an operator can act on."""

from __future__ import annotations


class TrainingError(Exception):
    """A dataset, model or setting the trainer cannot use, or a missing extra; says why."""
