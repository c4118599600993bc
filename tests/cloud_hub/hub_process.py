"""A real hub API process (``retail-hub serve``, uvicorn) on a free loopback port, for tests.

Reusable for fault injection: start it on any database URL, stop or kill it, start it again on
the same port, and read its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.services import free_port, wait_for_port

# uvicorn re-raises SIGTERM once its graceful shutdown is done, so a clean stop exits -15.
CLEAN_EXIT = frozenset({0, -signal.SIGTERM})


class HubProcess:
    """``python -m cloud_hub.cli serve`` as a subprocess; logs to ``workdir/hub-<port>.log``."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.log_path = workdir / f"hub-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.database_url = ""
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8123``."""
        return f"http://127.0.0.1:{self.port}"

    def start(
        self,
        database_url: str,
        env: dict[str, str] | None = None,
        healthy: bool = True,
        timeout_s: float = 60.0,
        device_auth: str = "required",
        args: Sequence[str] = (),
    ) -> None:
        """Start serving ``database_url`` and wait until ``/api/v1/health`` answers (200 when
        ``healthy``, any status otherwise). Raises with the log if the process exits first.

        ``device_auth`` "open" lets batches in without a device secret: for tests about
        something else (delivery under faults, schema), named where used; device auth itself
        is tested in tests/cloud_hub/test_device_auth.py. ``args``: more ``serve`` options
        (``--workers 2``)."""
        self.database_url = database_url
        full_env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "RETAIL_HUB_DEVICE_AUTH": device_auth,
            **(env or {}),
        }
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cloud_hub.cli", "serve", "--port", str(self.port), *args],
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited with {self.proc.returncode}:\n{self.log()}")
            status = self._health_status()
            if status is not None and (status == 200 or not healthy):
                return
            time.sleep(0.1)
        raise TimeoutError(f"hub on port {self.port} not up within {timeout_s} s:\n{self.log()}")

    def enroll(self, store_id: str, device_id: str) -> str:
        """Enroll a device the way a store box does: a one-time token issued in the hub's
        database (as `retail-hub admin enroll-token` does), traded at ``POST
        /api/v1/devices/enroll``. Returns the device secret."""
        from cloud_hub.db import create_hub_engine
        from cloud_hub.services.enrollment import create_enrollment_token

        engine = create_hub_engine(self.database_url, pool_size=1)
        try:
            with engine.begin() as conn:
                issued = create_enrollment_token(conn, store_id, created_by="test", now=time.time())
        finally:
            engine.dispose()
        resp = httpx.post(
            f"{self.url}/api/v1/devices/enroll",
            json={"token": issued.token, "device_id": device_id},
            timeout=30,
        )
        assert resp.status_code == 201, resp.text
        secret = resp.json()["device_secret"]
        assert isinstance(secret, str)
        return secret

    def _health_status(self) -> int | None:
        try:
            return httpx.get(f"{self.url}/api/v1/health", timeout=2.0).status_code
        except httpx.TransportError:
            return None

    def stop(self, kill: bool = False) -> int | None:
        """SIGTERM (or SIGKILL with ``kill``), wait for the exit; the exit code (a clean stop
        is one of ``CLEAN_EXIT``)."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.proc = None
        wait_for_port(self.port, up=False)
        return code

    def log(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> HubProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
