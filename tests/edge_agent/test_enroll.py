"""The edge's credentials file: written owner-only and whole, and refused for another device.

The enrollment round trip against a real hub is in tests/integration/test_cli_sync.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.errors import ConfigError
from edge_agent.sync.enroll import DeviceCredentials, load_credentials, write_credentials


def _creds() -> DeviceCredentials:
    return DeviceCredentials.model_validate(
        {
            "hub_url": "http://hub",
            "store_id": "s1",
            "device_id": "box-1",
            "device_secret": "rcd_secret",
            "enrolled_at": 1.0,
        }
    )


def test_credentials_are_written_owner_only_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "credentials.json"
    write_credentials(_creds(), path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]  # no temp left
    back = load_credentials(path, "s1", "box-1")
    assert back.http_headers() == {"Authorization": "Bearer rcd_secret"}
    assert "rcd_secret" not in repr(back)


def test_credentials_of_another_device_or_none_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    with pytest.raises(ConfigError, match="retail-edge enroll"):
        load_credentials(path, "s1", "box-1")
    write_credentials(_creds(), path)
    with pytest.raises(ConfigError, match="box-2"):
        load_credentials(path, "s1", "box-2")
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable"):
        load_credentials(path, "s1", "box-1")
