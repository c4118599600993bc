"""``retail-hub``: help that explains, and user errors as one ``error:`` line with exit code 2."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


def hub(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloud_hub.cli", *args],
        env={**os.environ, **env},
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_names_the_commands_and_the_settings() -> None:
    out = hub("--help")
    assert out.returncode == 0
    for word in ("serve", "migrate", "worker", "DATABASE_URL", "RETAIL_HUB_"):
        assert word in out.stdout
    for name in ("worker", "mqtt-worker"):  # the old name stays as an alias
        worker = hub(name, "--help")
        assert "--name" in worker.stdout and "SIGTERM" in worker.stdout


def test_database_url_option_beats_the_environment(tmp_path: Path) -> None:
    chosen, env_db = tmp_path / "chosen.db", tmp_path / "env.db"
    out = hub(
        "migrate", "--database-url", f"sqlite:///{chosen}", DATABASE_URL=f"sqlite:///{env_db}"
    )
    assert out.returncode == 0, out.stderr
    assert not env_db.exists()
    with sqlite3.connect(chosen) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"received_records", "rollups", "dead_letters"} <= tables
    bad = hub("migrate", "--database-url", "mysql://db/hub")
    assert bad.returncode == 2 and "database_url" in bad.stderr.lower()


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["serve", "--port", "eighty"], {}, "--port"),
        (["launch"], {}, "invalid choice"),
        (["migrate"], {"DATABASE_URL": "mysql://db/hub"}, "DATABASE_URL"),
        (["migrate"], {"DATABASE_URL": "postgresql://u@127.0.0.1:1/x"}, "cannot reach"),
        (["worker", "--name", "bad name!"], {}, "worker_name"),
        (["migrate"], {"RETAIL_HUB_MQTT_PASSWORD": "x"}, "USERNAME"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(
    args: list[str], env: dict[str, str], says: str
) -> None:
    out = hub(*args, **env)
    assert out.returncode == 2
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and says in errors[0], out.stderr
