"""The device twin over HTTP: read the desired state, report model and layout steps, download
bundles with resume (``Range: bytes=N-``) into a staging folder."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from types import TracebackType

import httpx
from pydantic import ValidationError

from common.twin import ConfigReport, DesiredModel, DesiredState, ReportedState
from edge_agent.errors import RetailCVError

log = logging.getLogger(__name__)

_CHUNK = 1 << 16


class TwinError(RetailCVError):
    """The hub could not be asked or answered something unusable; ``reason`` names it."""

    def __init__(self, message: str, reason: str = "hub") -> None:
        super().__init__(message)
        self.reason = reason


class TwinClient:
    """HTTP calls of one device's twin at ``base_url`` with the device's headers."""

    def __init__(
        self, base_url: str, device_id: str, headers: dict[str, str], timeout_s: float = 30.0
    ) -> None:
        self.device_id = device_id
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s
        )

    def desired(self) -> DesiredState:
        """The desired state the hub holds for this device.

        Raises:
            TwinError: the hub is unreachable or answers something other than a DesiredState.
        """
        path = f"/api/v1/devices/{self.device_id}/desired"
        try:
            resp = self._client.get(path)
            resp.raise_for_status()
            return DesiredState.model_validate_json(resp.content)
        except (httpx.HTTPError, ValidationError) as exc:
            raise TwinError(f"desired state from {path}: {exc}") from exc

    def report(self, report: ReportedState) -> None:
        """Send one step to the hub.

        Raises:
            TwinError: it did not arrive.
        """
        self._post(f"/api/v1/devices/{self.device_id}/reported", report.model_dump_json())

    def report_config(self, report: ConfigReport) -> None:
        """Send one step of applying a desired layout to the hub.

        Raises:
            TwinError: it did not arrive.
        """
        self._post(f"/api/v1/devices/{self.device_id}/reported/config", report.model_dump_json())

    def _post(self, path: str, body: str) -> None:
        try:
            resp = self._client.post(
                path, content=body, headers={"Content-Type": "application/json"}
            )
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            raise TwinError(f"report to {path}: {exc}") from exc

    def download(self, model: DesiredModel, staging: Path) -> Path:
        """The bundle in ``staging/{sha256}.tar``, downloaded (or resumed from a ``.part``
        left by an interrupted download) and checked against the desired sha256.

        Raises:
            TwinError: reason ``download`` (the hub or the network failed: the ``.part`` stays
                for the next try) or ``hash_mismatch`` (the bytes are not the desired bundle:
                the file is deleted).
        """
        staging.mkdir(parents=True, exist_ok=True)
        done = staging / f"{model.sha256}.tar"
        if done.is_file():
            return done
        part = staging / f"{model.sha256}.part"
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with self._client.stream("GET", model.download_path, headers=headers) as resp:
                if resp.status_code == 416 or resp.status_code not in (200, 206):
                    part.unlink(missing_ok=True)
                    raise TwinError(
                        f"download {model.download_path}: HTTP {resp.status_code}", "download"
                    )
                mode = "ab" if resp.status_code == 206 else "wb"
                if mode == "ab":
                    log.info("resuming %s at byte %d", model.download_path, have)
                with part.open(mode) as f:
                    for chunk in resp.iter_bytes(_CHUNK):
                        f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
        except httpx.HTTPError as exc:
            raise TwinError(f"download {model.download_path}: {exc}", "download") from exc
        digest = _sha256(part)
        if digest != model.sha256:
            part.unlink()
            raise TwinError(
                f"downloaded bundle sha256 {digest[:12]}… is not the desired {model.sha256[:12]}… "
                "(corrupt or tampered): deleted",
                "hash_mismatch",
            )
        os.replace(part, done)
        return done

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> TwinClient:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
