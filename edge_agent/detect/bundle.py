"""Signed model bundles at the edge: verify before anything is loaded.

A bundle (``common.bundle``) is copied or unpacked into a private temporary folder, its
signature is checked against the trusted public keys and every file against the signed
sha256, and only then is the copy handed to the runtime. The copy is deleted once the model is
loaded (ONNX Runtime and OpenVINO read the files while loading), so the files checked are
exactly the files loaded.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.bundle import ARCHIVE_SUFFIX, BundleError, VerifiedBundle, open_bundle
from common.signing import SigningError, TrustedKeys
from edge_agent.errors import ModelError

log = logging.getLogger(__name__)


class BundleRejected(ModelError):
    """A model bundle failed verification and was not loaded.

    Attributes:
        reason: which check failed (``common.bundle.BundleError.reason``: unsigned,
            unknown_key, bad_signature, hash_mismatch, missing_file, ...), or ``trusted_keys``
            when the trusted keys themselves cannot be read.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def is_bundle(path: Path) -> bool:
    """True for a bundle folder or a bundle archive (``.tar``), not a plain model file."""
    return path.is_dir() or path.suffix.lower() == ARCHIVE_SUFFIX


def load_trusted_keys(trusted_keys: Path | TrustedKeys) -> TrustedKeys:
    """The trusted keys (a folder of ``*.pub`` files, or already loaded)."""
    if isinstance(trusted_keys, TrustedKeys):
        return trusted_keys
    try:
        return TrustedKeys.from_dir(trusted_keys)
    except SigningError as exc:
        raise BundleRejected(f"model.trusted_keys: {exc}", "trusted_keys") from exc


@contextmanager
def verified_bundle(path: Path, trusted_keys: Path | TrustedKeys) -> Iterator[VerifiedBundle]:
    """Verify the bundle at ``path`` into a private copy, valid inside the ``with`` block.

    Raises:
        BundleRejected: unsigned, signed by an untrusted key, bad signature, a file missing,
            added or changed, or an unsafe archive member; nothing was loaded.
    """
    trusted = load_trusted_keys(trusted_keys)
    with tempfile.TemporaryDirectory(prefix="retail-cv-bundle-") as tmp:
        try:
            verified = open_bundle(path, trusted, Path(tmp) / "bundle")
        except BundleError as exc:
            raise BundleRejected(
                f"refused model bundle {path} ({exc.reason}): {exc}", exc.reason
            ) from exc
        m = verified.manifest
        log.info(
            "bundle %s verified: model %s version %s, %d file(s), signed by key %s",
            path,
            m.name,
            m.version,
            len(m.files),
            verified.key_id,
        )
        yield verified
