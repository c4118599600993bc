"""Errors of the product-classifier tooling, each with a message an operator can act on."""

from __future__ import annotations


class ClassifierError(Exception):
    """A dataset, image or model the classifier tooling cannot use; the message says why."""
