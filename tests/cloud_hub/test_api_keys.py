"""API keys: printed once by ``retail-hub admin create-key``, kept only as a hash, revocable,
scoped by role; the store/role rules refuse what does not go together."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cloud_hub.core.security import Role
from cloud_hub.db import create_hub_engine
from cloud_hub.services.api_keys import (
    ApiKeyError,
    caller_for_key,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)

KEY = re.compile(r"^rcv_[A-Za-z0-9_-]{43}$")


def admin(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloud_hub.cli", "admin", *args, "--database-url", url],
        env={**os.environ, "DATABASE_URL": "sqlite:///nowhere.db"},
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_create_key_prints_the_key_once_and_the_hub_keeps_only_its_hash(sqlite_url: str) -> None:
    made = admin(
        "create-key",
        "--role",
        "store_manager",
        "--store",
        "paris",
        "--store",
        "nyc",
        "--name",
        "Claire (Paris, NYC)",
        url=sqlite_url,
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert KEY.match(key) and made.stdout == key + "\n"
    assert "shown only now" in made.stderr and key not in made.stderr
    db_file = Path(sqlite_url.removeprefix("sqlite:///"))
    stored = b"".join(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))
    assert key.encode() not in stored
    assert hashlib.sha256(key.encode()).hexdigest().encode() in stored

    listed = admin("list-keys", url=sqlite_url)
    assert listed.returncode == 0 and key not in listed.stdout
    header, row = listed.stdout.splitlines()
    assert header.split("\t")[:4] == ["ID", "ROLE", "STORES", "PREFIX"]
    key_id, role, stores, prefix, _, revoked, name = row.split("\t")
    assert (role, stores, revoked, name) == (
        "store_manager",
        "nyc,paris",
        "-",
        "Claire (Paris, NYC)",
    )
    assert key.startswith(prefix) and len(prefix) < 12

    engine = create_hub_engine(sqlite_url)
    with engine.connect() as conn:
        caller = caller_for_key(conn, key)
    assert caller is not None and caller.store_ids == {"paris", "nyc"}
    gone = admin("revoke-key", key_id, url=sqlite_url)
    assert gone.returncode == 0 and "revoked" in gone.stdout
    with engine.connect() as conn:
        assert caller_for_key(conn, key) is None
        assert list_api_keys(conn)[0].revoked_at is not None
    engine.dispose()

    refused = admin("revoke-key", "99", url=sqlite_url)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error: ")]
    assert refused.returncode == 2 and len(errors) == 1 and "no API key" in errors[0]


def test_admin_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    out = admin("list-keys", url=f"sqlite:///{tmp_path / 'empty.db'}")
    assert out.returncode == 2 and "retail-hub migrate" in out.stderr


REFUSED = [
    (Role.HQ_ADMIN, ["paris"], False, "every store"),
    (Role.HQ_ADMIN, [], True, "every store"),
    (Role.STORE_MANAGER, [], False, "at least one --store"),
    (Role.STORE_MANAGER, ["paris"], True, "no --all-stores"),
    (Role.INTEGRATOR, [], False, "--all-stores"),
    (Role.INTEGRATOR, ["paris"], True, "either"),
    (Role.STORE_MANAGER, ["bad id!"], False, "not a valid id"),
]


def test_roles_and_stores_must_go_together(sqlite_url: str) -> None:
    engine = create_hub_engine(sqlite_url)
    for role, stores, all_stores, says in REFUSED:
        with engine.begin() as conn, pytest.raises(ApiKeyError, match=re.escape(says)):
            create_api_key(conn, role, stores, all_stores=all_stores, now=0.0)
    with engine.connect() as conn:
        assert list_api_keys(conn) == []
    engine.dispose()


def test_scopes_by_role_and_revocation_on_both_backends(hub_db: Engine) -> None:
    with hub_db.begin() as conn:
        keys = {
            "admin": create_api_key(conn, Role.HQ_ADMIN, now=1.0),
            "manager": create_api_key(conn, Role.STORE_MANAGER, ["s2", "s1", "s1"], now=1.0),
            "bi": create_api_key(conn, Role.INTEGRATOR, all_stores=True, now=1.0),
            "pos": create_api_key(conn, Role.INTEGRATOR, ["s3"], now=1.0),
        }
        assert len({k for k, _ in keys.values()}) == 4  # random, never repeated
        callers = {name: caller_for_key(conn, key) for name, (key, _) in keys.items()}
        assert callers["admin"] is not None and callers["admin"].store_ids is None
        assert callers["manager"] is not None and callers["manager"].store_ids == {"s1", "s2"}
        assert callers["bi"] is not None and callers["bi"].store_ids is None
        assert callers["pos"] is not None and callers["pos"].sees("s3")
        assert not callers["pos"].sees("s1")
        assert keys["manager"][1].stores == ["s1", "s2"]
        revoked = revoke_api_key(conn, keys["pos"][1].id, now=5.0)
        again = revoke_api_key(conn, keys["pos"][1].id, now=9.0)
        assert revoked.revoked_at == again.revoked_at == 5.0  # the first revocation stands
        assert caller_for_key(conn, keys["pos"][0]) is None
        assert caller_for_key(conn, keys["admin"][0] + "x") is None
