"""Signed model bundles: the contract between model export, the hub and the edge.

A bundle is a flat folder::

    BUNDLE/
      model.onnx       the model file(s): one ONNX file, or an OpenVINO .xml and its .bin
      manifest.json    ModelManifest: how to run it, sha256 of every file, metrics, created_at
      manifest.sig     Signature (common.signing) over the exact bytes of manifest.json

or the same files as members of one uncompressed tar archive (``.tar``) for upload and
download. Verification checks the signature against trusted public keys first, then parses
the manifest (only signed bytes are ever parsed), then the sha256 of every file; a folder or
archive with a file the manifest does not list is refused too. Every failure is a
:class:`BundleError` whose ``reason`` says which check failed.

File names are flat and plain (letters, digits, ``._-``, not starting with a dot), so an
archive member can never name a path outside the folder it is unpacked into.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from common.manifest import ModelManifest
from common.signing import (
    BadSignature,
    Signature,
    TrustedKeys,
    UnknownKey,
    sign,
)

MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
ARCHIVE_SUFFIX = ".tar"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CHUNK = 1 << 20


class BundleError(ValueError):
    """A model bundle failed a check; ``reason`` names the check, the message says where."""

    reason = "invalid"


class UnsignedBundle(BundleError):
    """``manifest.sig`` is missing."""

    reason = "unsigned"


class UnknownKeyError(BundleError):
    """Signed by a key that is not trusted."""

    reason = "unknown_key"


class BadSignatureError(BundleError):
    """The signature is malformed or does not match ``manifest.json``."""

    reason = "bad_signature"


class InvalidManifest(BundleError):
    """``manifest.json`` is missing, or signed but not a valid bundle manifest."""

    reason = "invalid_manifest"


class MissingFile(BundleError):
    """A file the manifest lists is absent."""

    reason = "missing_file"


class HashMismatch(BundleError):
    """A file's sha256 differs from the manifest's."""

    reason = "hash_mismatch"


class UnlistedFile(BundleError):
    """The bundle holds a file the manifest does not list."""

    reason = "unlisted_file"


class UnsafePath(BundleError):
    """A file or archive member name is not a plain file name (path traversal, link, ...)."""

    reason = "unsafe_path"


@dataclass(frozen=True, slots=True)
class VerifiedBundle:
    """A bundle folder whose signature and file hashes were checked.

    Attributes:
        folder: the folder that was verified.
        manifest: its manifest (parsed from the signed bytes).
        key_id: id of the trusted key that signed it.
    """

    folder: Path
    manifest: ModelManifest
    key_id: str

    @property
    def model_path(self) -> Path:
        """The file to load (``manifest.model_file``)."""
        assert self.manifest.model_file is not None  # verify_manifest guarantees it
        return self.folder / self.manifest.model_file


def check_name(name: str) -> str:
    """``name`` if it is a plain flat file name; UnsafePath otherwise."""
    if not _NAME.match(name):
        raise UnsafePath(
            f"{name!r} is not a plain file name (letters, digits, '.', '_', '-'; no folders, "
            "no leading dot): a bundle is flat"
        )
    return name


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _sha256_stream(f: IO[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in iter(lambda: f.read(_CHUNK), b""):
        h.update(chunk)
    return h.hexdigest()


def manifest_bytes(manifest: ModelManifest) -> bytes:
    """The bytes written to ``manifest.json`` (and signed)."""
    return (manifest.model_dump_json(indent=2) + "\n").encode()


# -- pure checks -----------------------------------------------------------------------------


def verify_manifest(
    manifest_data: bytes, signature_data: bytes | None, trusted: TrustedKeys
) -> tuple[ModelManifest, str]:
    """Check the signature over ``manifest_data``, then parse it; returns (manifest, key id).

    Raises:
        UnsignedBundle, UnknownKeyError, BadSignatureError, InvalidManifest.
    """
    if signature_data is None:
        raise UnsignedBundle(f"no {SIGNATURE_FILE}: the bundle is not signed (retail-export sign)")
    try:
        signature = Signature.from_bytes(signature_data)
        trusted.verify(manifest_data, signature)
    except UnknownKey as exc:
        raise UnknownKeyError(str(exc)) from exc
    except BadSignature as exc:
        raise BadSignatureError(f"{SIGNATURE_FILE}: {exc}") from exc
    try:
        manifest = ModelManifest.model_validate_json(manifest_data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InvalidManifest(f"{MANIFEST_FILE}: {where}: {first['msg']}") from None
    if not manifest.files or manifest.model_file is None:
        raise InvalidManifest(f"{MANIFEST_FILE} lists no files: not a bundle manifest")
    for name in manifest.files:
        check_name(name)
    return manifest, signature.key_id


def check_files(manifest: ModelManifest, hashes: Mapping[str, str]) -> None:
    """Check the files found (name → sha256) against the manifest's list.

    Raises:
        MissingFile, HashMismatch, UnlistedFile.
    """
    missing = sorted(set(manifest.files) - set(hashes))
    if missing:
        raise MissingFile(f"{missing[0]} is listed in {MANIFEST_FILE} but absent")
    for name, expected in sorted(manifest.files.items()):
        if hashes[name] != expected:
            raise HashMismatch(
                f"{name}: sha256 {hashes[name][:12]}… differs from {expected[:12]}… in "
                f"{MANIFEST_FILE} (corrupt or tampered)"
            )
    extra = sorted(set(hashes) - set(manifest.files))
    if extra:
        raise UnlistedFile(f"{extra[0]} is not listed in {MANIFEST_FILE}")


# -- folders ---------------------------------------------------------------------------------


def write_bundle(
    folder: Path,
    files: Sequence[Path],
    manifest: ModelManifest,
    model_file: str,
    created_at: datetime | None = None,
) -> ModelManifest:
    """Copy ``files`` into ``folder`` and write its (unsigned) ``manifest.json``.

    The manifest gets the sha256 of every file, ``model_file`` (its ``sha256`` is that file's)
    and ``created_at`` (now, UTC, by default). A stale signature is removed.

    Raises:
        UnsafePath: a file name is not plain. MissingFile: a file is absent or ``model_file``
        is not among them.
    """
    names = [check_name(p.name) for p in files]
    if model_file not in names:
        raise MissingFile(f"model_file {model_file!r} is not among the files {names}")
    if len(set(names)) != len(names) or {MANIFEST_FILE, SIGNATURE_FILE} & set(names):
        raise UnsafePath(f"file names must be unique and not {MANIFEST_FILE}/{SIGNATURE_FILE}")
    folder.mkdir(parents=True, exist_ok=True)
    hashes: dict[str, str] = {}
    for src in files:
        if not src.is_file():
            raise MissingFile(f"{src} not found")
        dst = folder / src.name
        if src.resolve() != dst.resolve():
            shutil.copyfile(src, dst)
        hashes[src.name] = sha256_file(dst)
    final = manifest.model_copy(
        update={
            "files": hashes,
            "model_file": model_file,
            "sha256": hashes[model_file],
            "created_at": created_at or datetime.now(UTC),
        }
    )
    ModelManifest.model_validate(final.model_dump())  # run the validators on the result
    (folder / SIGNATURE_FILE).unlink(missing_ok=True)
    (folder / MANIFEST_FILE).write_bytes(manifest_bytes(final))
    return final


def sign_bundle(folder: Path, private: Ed25519PrivateKey) -> Signature:
    """Sign the exact bytes of ``folder/manifest.json``; writes ``manifest.sig``."""
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise InvalidManifest(f"{path} not found: not a bundle folder")
    signature = sign(path.read_bytes(), private)
    (folder / SIGNATURE_FILE).write_bytes(signature.to_bytes())
    return signature


def _folder_files(folder: Path) -> dict[str, Path]:
    """Every entry of a bundle folder by name; links, folders and odd names are refused."""
    if not folder.is_dir():
        raise MissingFile(f"bundle folder {folder} not found")
    found: dict[str, Path] = {}
    for entry in folder.iterdir():
        check_name(entry.name)
        if entry.is_symlink() or not entry.is_file():
            raise UnsafePath(f"{entry} is not a regular file (links and folders are refused)")
        found[entry.name] = entry
    return found


def verify_bundle(folder: Path, trusted: TrustedKeys) -> VerifiedBundle:
    """Verify a bundle folder: signature, manifest, then every file's sha256.

    Raises:
        BundleError: the subclass says which check failed.
    """
    entries = _folder_files(folder)
    if MANIFEST_FILE not in entries:
        raise InvalidManifest(f"no {MANIFEST_FILE} in {folder}: not a bundle")
    sig = entries.pop(SIGNATURE_FILE, None)
    manifest, kid = verify_manifest(
        entries.pop(MANIFEST_FILE).read_bytes(), sig.read_bytes() if sig else None, trusted
    )
    check_files(manifest, {name: sha256_file(p) for name, p in entries.items()})
    return VerifiedBundle(folder, manifest, kid)


def inspect_bundle(folder: Path) -> ModelManifest:
    """A bundle folder's manifest, with every file checked against it, but NOT the signature.

    For tooling on the signer's own machine (re-signing, making variants); never a substitute
    for ``verify_bundle`` before loading a model.

    Raises:
        BundleError: no or invalid manifest, or a file missing, added or changed.
    """
    entries = _folder_files(folder)
    entries.pop(SIGNATURE_FILE, None)
    path = entries.pop(MANIFEST_FILE, None)
    if path is None:
        raise InvalidManifest(f"no {MANIFEST_FILE} in {folder}: not a bundle")
    try:
        manifest = ModelManifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise InvalidManifest(f"{path}: {exc.errors()[0]['msg']}") from None
    if not manifest.files or manifest.model_file is None:
        raise InvalidManifest(f"{path} lists no files: not a bundle manifest")
    check_files(manifest, {name: sha256_file(p) for name, p in entries.items()})
    return manifest


# -- archives --------------------------------------------------------------------------------


def _write_tar(folder: Path, target: Path | IO[bytes]) -> None:
    entries = _folder_files(folder)
    with (
        tarfile.open(target, "w", format=tarfile.PAX_FORMAT)
        if isinstance(target, Path)
        else tarfile.open(fileobj=target, mode="w", format=tarfile.PAX_FORMAT)
    ) as tar:
        for name in sorted(entries):
            info = tarfile.TarInfo(name)
            info.size = entries[name].stat().st_size
            info.mode = 0o644
            with entries[name].open("rb") as f:
                tar.addfile(info, f)


def pack_bundle(folder: Path, archive: Path) -> Path:
    """Write the bundle folder as one uncompressed tar (sorted members, no owners, mtime 0)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    _write_tar(folder, archive)
    return archive


def archive_bytes(folder: Path) -> bytes:
    """The bundle folder as tar bytes (see ``pack_bundle``), e.g. for an HTTP upload."""
    buf = io.BytesIO()
    _write_tar(folder, buf)
    return buf.getvalue()


def _archive_members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    members: dict[str, tarfile.TarInfo] = {}
    for info in tar.getmembers():
        check_name(info.name)
        if not info.isreg():
            raise UnsafePath(f"archive member {info.name!r} is not a regular file")
        if info.name in members:
            raise UnsafePath(f"archive member {info.name!r} appears twice")
        members[info.name] = info
    return members


def _read_member(tar: tarfile.TarFile, info: tarfile.TarInfo) -> IO[bytes]:
    f = tar.extractfile(info)
    assert f is not None  # regular files always have data
    return f


def verify_archive(archive: Path | IO[bytes], trusted: TrustedKeys) -> tuple[ModelManifest, str]:
    """Verify a bundle archive without unpacking it (e.g. an upload at the hub).

    Returns the manifest and the id of the key that signed it.

    Raises:
        BundleError: the subclass says which check failed (a bad tar is ``UnsafePath``).
    """
    try:
        with (
            tarfile.open(archive, "r:")
            if isinstance(archive, Path)
            else tarfile.open(fileobj=archive, mode="r:")
        ) as tar:
            members = _archive_members(tar)
            if MANIFEST_FILE not in members:
                raise InvalidManifest(f"no {MANIFEST_FILE} in the archive: not a bundle")
            sig = members.pop(SIGNATURE_FILE, None)
            manifest, kid = verify_manifest(
                _read_member(tar, members.pop(MANIFEST_FILE)).read(),
                _read_member(tar, sig).read() if sig else None,
                trusted,
            )
            hashes = {n: _sha256_stream(_read_member(tar, i)) for n, i in members.items()}
    except tarfile.TarError as exc:
        raise UnsafePath(f"not a readable tar archive: {exc}") from None
    check_files(manifest, hashes)
    return manifest, kid


def unpack_bundle(archive: Path, dest: Path) -> Path:
    """Unpack a bundle archive into the empty (or new) folder ``dest``; nothing is verified.

    Member names are checked before anything is written: only plain flat file names.
    """
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise UnsafePath(f"{dest} is not empty: a bundle is unpacked into an empty folder")
    try:
        with tarfile.open(archive, "r:") as tar:
            for name, info in _archive_members(tar).items():
                with _read_member(tar, info) as src, (dest / name).open("xb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
    except tarfile.TarError as exc:
        raise UnsafePath(f"{archive} is not a readable tar archive: {exc}") from None
    return dest


def open_bundle(source: Path, trusted: TrustedKeys, workdir: Path) -> VerifiedBundle:
    """Copy a bundle folder, or unpack a bundle archive, into ``workdir`` and verify the copy.

    What is verified is exactly what the caller then loads: nobody can swap a file between
    the check and the load, since ``workdir`` is private to the caller.

    Raises:
        BundleError: the subclass says which check failed; MissingFile when ``source`` is absent.
    """
    if source.is_dir():
        workdir.mkdir(parents=True, exist_ok=True)
        for name, path in _folder_files(source).items():
            shutil.copyfile(path, workdir / name)
    elif source.is_file():
        unpack_bundle(source, workdir)
    else:
        raise MissingFile(f"bundle {source} not found")
    return verify_bundle(workdir, trusted)
