"""Errors of the dataset tooling, each with a message an operator can act on."""

from __future__ import annotations


class DatasetError(Exception):
    """A video, image, labels file or dataset folder the tooling cannot use; says why."""
