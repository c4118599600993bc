"""Shared fixtures: where the real models and footage live, and private real services."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import MosquittoProcess, PostgresProcess

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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresProcess]:
    """A private PostgreSQL server for the whole test session (its own port and data dir).

    The data dir is a fresh folder directly under the temp dir, not pytest's tmp_path, whose
    parents are private to root and unreadable to the ``postgres`` user."""
    workdir = Path(tempfile.mkdtemp(prefix="retail-cv-pg-"))
    try:
        with PostgresProcess(workdir) as pg:
            yield pg
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture()
def pg_url(postgres_server: PostgresProcess) -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty database on the private server, dropped afterwards."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = f"host=127.0.0.1 port={postgres_server.port} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture()
def mosquitto(tmp_path: Path) -> Iterator[MosquittoProcess]:
    """A private Mosquitto broker with persistence for one test (stop/restart it freely)."""
    broker = MosquittoProcess(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()
