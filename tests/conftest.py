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


@pytest.fixture(scope="session")
def ultralytics_images() -> Path:
    """Folder of ultralytics' sample images (bus.jpg, zidane.jpg) inside its installed wheel.

    The package is located without importing it (importing needs torch); `.ci/run` installs the
    wheel with --no-deps for these two files.
    """
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("ultralytics wheel not installed: pip install --no-deps ultralytics")
    folder = Path(next(iter(spec.submodule_search_locations))) / "assets"
    if not (folder / "bus.jpg").is_file():
        pytest.fail(f"bus.jpg not found in {folder}")
    return folder
