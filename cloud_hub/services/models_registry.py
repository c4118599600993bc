"""The model registry: signed bundles uploaded by HQ, listed, and downloaded by devices.

An upload is a bundle ``.tar`` (``retail-export pack``). It is streamed to a staging file under
``models_dir`` with its size bounded and its sha256 computed on the way, then verified exactly
as an edge would (``common.bundle.verify_archive``: the signature against the hub's trusted
keys first, then every file's hash), and only then kept as ``{models_dir}/{sha256}.tar`` with a
row in ``model_bundles``. Content addressing makes a re-upload of the same bytes a no-op and
keeps one copy of a bundle whatever it is called; a name and version are immutable: the same
pair with other bytes is refused. Bundles live on disk rather than in the database because they
are large (tens to hundreds of MB): the database stays small and fast to back up, and the
download streams straight from the file with HTTP Range for resumes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import uuid
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, RowMapping

from cloud_hub.models import MODEL_BUNDLES
from common.bundle import BundleError, verify_archive
from common.manifest import ModelManifest
from common.signing import SigningError, TrustedKeys

log = logging.getLogger(__name__)

ARCHIVE_MEDIA_TYPE = "application/x-tar"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_NAME = re.compile(NAME_PATTERN)
_SHA = re.compile(r"^[0-9a-f]{64}$")
INCOMING = ".incoming"


class RegistryError(ValueError):
    """An upload the registry refuses; the message says why."""


class BundleRefused(RegistryError):
    """The bundle failed verification; ``reason`` is the ``BundleError`` reason (or
    ``no_trusted_keys`` when the hub has none configured)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class VersionConflict(RegistryError):
    """The name and version exist already with other bytes (versions are immutable)."""


class TooLarge(RegistryError):
    """The upload is larger than ``model_max_bytes``."""


class ModelOut(BaseModel):
    """A bundle in the registry. Times: UNIX s UTC."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    sha256: str = Field(description="sha256 of the bundle .tar (what a device downloads)")
    size: int = Field(description="bytes of the bundle .tar")
    key_id: str = Field(description="the trusted key that signed it")
    manifest: ModelManifest
    metrics: dict[str, float] = Field(description="the signed manifest's metrics")
    uploaded_by: str
    uploaded_at: float
    download_path: str


class ModelList(BaseModel):
    """Every bundle, by name then upload time."""

    model_config = ConfigDict(extra="forbid")

    items: list[ModelOut]


def download_path(name: str, version: str) -> str:
    """The API path of a bundle's download."""
    return f"/api/v1/models/{name}/{version}/bundle"


def bundle_file(models_dir: Path, sha256: str) -> Path:
    """Where the bundle with this sha256 is kept."""
    if not _SHA.match(sha256):
        raise ValueError(f"not a sha256: {sha256!r}")
    return models_dir / f"{sha256}.tar"


class StagedUpload:
    """An upload being written under ``models_dir/.incoming``: size-bounded, hashed as it
    arrives; ``discard()`` removes it unless ``register`` kept it."""

    def __init__(self, models_dir: Path, max_bytes: int) -> None:
        folder = models_dir / INCOMING
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{uuid.uuid4().hex}.part"
        self.max_bytes = max_bytes
        self.size = 0
        self._hash = hashlib.sha256()
        self._file = self.path.open("xb")

    def write(self, chunk: bytes) -> None:
        """Append a chunk; TooLarge past ``max_bytes``."""
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise TooLarge(
                f"bundle larger than {self.max_bytes} bytes (RETAIL_HUB_MODEL_MAX_BYTES)"
            )
        self._hash.update(chunk)
        self._file.write(chunk)

    def close(self) -> str:
        """Flush to disk; the sha256 hex of everything written."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self._hash.hexdigest()

    def discard(self) -> None:
        """Remove the staging file (if still there)."""
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


def load_trusted(folder: Path | None) -> TrustedKeys:
    """The hub's trusted signing keys; BundleRefused when none are configured or readable."""
    if folder is None:
        raise BundleRefused(
            "the hub has no trusted keys: set RETAIL_HUB_TRUSTED_KEYS_DIR to a folder of *.pub",
            "no_trusted_keys",
        )
    try:
        return TrustedKeys.from_dir(folder)
    except SigningError as exc:
        raise BundleRefused(f"RETAIL_HUB_TRUSTED_KEYS_DIR: {exc}", "no_trusted_keys") from exc


def _out(row: RowMapping) -> ModelOut:
    manifest = ModelManifest.model_validate(row["manifest"])
    return ModelOut(
        name=row["name"],
        version=row["version"],
        sha256=row["sha256"],
        size=row["size"],
        key_id=row["key_id"],
        manifest=manifest,
        metrics=manifest.metrics,
        uploaded_by=row["uploaded_by"],
        uploaded_at=row["uploaded_at"],
        download_path=download_path(row["name"], row["version"]),
    )


def register_bundle(
    conn: Connection,
    models_dir: Path,
    staged: Path,
    sha256: str,
    size: int,
    trusted: TrustedKeys,
    *,
    uploaded_by: str,
    now: float,
) -> tuple[ModelOut, bool]:
    """Verify the staged upload and keep it; (the bundle, True if new). The staging file is
    moved into place (or left for the caller to discard when refused or already there).

    Raises:
        BundleRefused: it fails verification (the reason says which check).
        VersionConflict: the name and version exist with other bytes.
    """
    try:
        manifest, key_id = verify_archive(staged, trusted)
    except BundleError as exc:
        raise BundleRefused(f"refused ({exc.reason}): {exc}", exc.reason) from exc
    for what, value in (("name", manifest.name), ("version", manifest.version)):
        if not _NAME.match(value):
            raise BundleRefused(
                f"manifest {what} {value!r}: letters, digits, '.', '_', '-' only (it is part "
                "of the download URL)",
                "invalid_manifest",
            )
    c = MODEL_BUNDLES.c
    existing = (
        conn.execute(
            select(MODEL_BUNDLES).where(c.name == manifest.name, c.version == manifest.version)
        )
        .mappings()
        .first()
    )
    if existing is not None:
        if existing["sha256"] != sha256:
            raise VersionConflict(
                f"model {manifest.name} version {manifest.version} exists with other bytes "
                f"(sha256 {existing['sha256'][:12]}…): give the new bundle a new version"
            )
        return _out(existing), False
    target = bundle_file(models_dir, sha256)
    if not target.exists():
        os.replace(staged, target)
    row = {
        "name": manifest.name,
        "version": manifest.version,
        "sha256": sha256,
        "size": size,
        "key_id": key_id,
        "manifest": manifest.model_dump(mode="json"),
        "uploaded_by": uploaded_by,
        "uploaded_at": now,
    }
    conn.execute(insert(MODEL_BUNDLES).values(**row))
    log.info(
        "model %s version %s registered (%d bytes, sha256 %s…, key %s) by %s",
        manifest.name, manifest.version, size, sha256[:12], key_id, uploaded_by,
    )  # fmt: skip
    return _out(row), True  # type: ignore[arg-type]


def list_models(conn: Connection, name: str | None = None) -> ModelList:
    """Every bundle (or every version of ``name``), by name then upload time."""
    c = MODEL_BUNDLES.c
    q = select(MODEL_BUNDLES).order_by(c.name, c.uploaded_at, c.version)
    if name is not None:
        q = q.where(c.name == name)
    return ModelList(items=[_out(r) for r in conn.execute(q).mappings().all()])


def get_model(conn: Connection, name: str, version: str) -> ModelOut | None:
    """One bundle, or None."""
    c = MODEL_BUNDLES.c
    row = (
        conn.execute(select(MODEL_BUNDLES).where(c.name == name, c.version == version))
        .mappings()
        .first()
    )
    return None if row is None else _out(row)
