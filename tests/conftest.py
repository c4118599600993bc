"""Shared fixtures: where the real models and footage live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def assets_dir() -> Path:
    """The shared assets folder: $RETAIL_CV_ASSETS, else ../shared/assets beside the repo."""
    env = os.environ.get("RETAIL_CV_ASSETS")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "assets"


@pytest.fixture(scope="session")
def assets() -> Path:
    """Path to the shared real models and footage; fails loudly if absent (never skips)."""
    path = assets_dir()
    if not (path / "models").is_dir():
        pytest.fail(f"shared assets not found at {path}; set RETAIL_CV_ASSETS")
    return path
