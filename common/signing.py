"""Ed25519 signing keys and signatures for model bundles.

A key pair is two PEM files: ``NAME.key`` (PKCS#8 private key, mode 0600, stays with the
person or CI job that signs) and ``NAME.pub`` (SubjectPublicKeyInfo, copied to every edge box
and to the hub as a *trusted key*). A key is known by its id: the first 16 hex digits of the
sha256 of its 32 raw public bytes, so an id can never be claimed by another key. A trusted
keys folder is every ``*.pub`` file in it.

A :class:`Signature` is stored as JSON (``manifest.sig`` in a bundle): algorithm, key id, and
the 64-byte Ed25519 signature in base64 over the exact bytes signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ALGORITHM: Literal["ed25519"] = "ed25519"
PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"


class SigningError(ValueError):
    """A key file or a signature failed a check; the message says which and what to do."""


class KeyFileError(SigningError):
    """A key file is missing, unreadable, not an Ed25519 PEM key, or readable by others."""


class UnknownKey(SigningError):
    """The signature names a key that is not among the trusted keys."""


class BadSignature(SigningError):
    """The signature is malformed or does not match the signed bytes."""


class Signature(BaseModel):
    """An Ed25519 signature and the id of the key that made it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: Literal["ed25519"] = ALGORITHM
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$", description="see key_id()")
    signature: str = Field(description="64-byte Ed25519 signature, base64")

    @field_validator("signature")
    @classmethod
    def _canonical_base64(cls, v: str) -> str:
        # Canonical only: the last base64 digit carries unused bits, which would otherwise let
        # a byte of the file change with the decoded signature unchanged.
        try:
            raw = base64.b64decode(v, validate=True)
        except binascii.Error:
            raise ValueError("not base64") from None
        if len(raw) != 64 or base64.b64encode(raw).decode() != v:
            raise ValueError("not the canonical base64 of a 64-byte Ed25519 signature")
        return v

    def to_bytes(self) -> bytes:
        """The JSON text stored in ``manifest.sig``."""
        return (self.model_dump_json(indent=2) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Signature:
        """Parse ``manifest.sig``; BadSignature when it is not a signature file.

        Only the exact bytes ``to_bytes`` writes are accepted, so that no byte of the file can
        change (even JSON whitespace) without the bundle being refused.
        """
        try:
            signature = cls.model_validate_json(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise BadSignature(f"not a valid signature file: {where}: {first['msg']}") from None
        if signature.to_bytes() != data:
            raise BadSignature("signature file is not in its canonical form (edited by hand?)")
        return signature


def key_id(public: Ed25519PublicKey) -> str:
    """The key's id: first 16 hex digits of sha256 over its 32 raw public bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> bytes:
    """The public key as PEM (SubjectPublicKeyInfo)."""
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def generate_key_pair(out_dir: Path, name: str = "signing") -> tuple[Path, Path]:
    """Create ``out_dir/NAME.key`` (mode 0600) and ``out_dir/NAME.pub``; returns both paths.

    Raises:
        KeyFileError: either file exists already (keys are never overwritten).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    private_path = out_dir / (name + PRIVATE_SUFFIX)
    public_path = out_dir / (name + PUBLIC_SUFFIX)
    for path in (private_path, public_path):
        if path.exists():
            raise KeyFileError(f"{path} exists: keys are never overwritten; pick another --name")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Created 0600 from the start: the key is never readable by others, even briefly.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public_path.write_bytes(public_pem(private.public_key()))
    return private_path, public_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read a private key file; refuses one that group or others can read (like ssh).

    Raises:
        KeyFileError: missing, readable by others, or not an unencrypted Ed25519 PEM key.
    """
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read private key {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"private key {path} is accessible by other users (mode {stat.S_IMODE(mode):o}): "
            f"chmod 600 {path}"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a public key file (PEM).

    Raises:
        KeyFileError: missing, or not an Ed25519 PEM public key.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read public key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise KeyFileError(f"{path} is not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def sign(message: bytes, private: Ed25519PrivateKey) -> Signature:
    """Sign ``message`` (the exact bytes) with ``private``."""
    raw = private.sign(message)
    return Signature(key_id=key_id(private.public_key()), signature=base64.b64encode(raw).decode())


class TrustedKeys(Mapping[str, Ed25519PublicKey]):
    """The public keys whose signatures are accepted, by key id."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey], origin: str = "<memory>") -> None:
        self._keys = dict(keys)
        self.origin = origin

    @classmethod
    def of(cls, *keys: Ed25519PublicKey) -> TrustedKeys:
        """Trust exactly these keys."""
        return cls({key_id(k): k for k in keys})

    @classmethod
    def from_dir(cls, folder: Path) -> TrustedKeys:
        """Every ``*.pub`` file in ``folder``; the id comes from each key, not its file name.

        Raises:
            KeyFileError: the folder is missing, holds no ``*.pub`` file, or one is not a key.
        """
        if not folder.is_dir():
            raise KeyFileError(f"trusted keys folder {folder} not found")
        paths = sorted(folder.glob("*" + PUBLIC_SUFFIX))
        if not paths:
            raise KeyFileError(
                f"no trusted keys (*{PUBLIC_SUFFIX}) in {folder}: copy the signer's public key "
                "there (retail-export keys generate writes one)"
            )
        keys = [load_public_key(p) for p in paths]
        return cls({key_id(k): k for k in keys}, origin=str(folder))

    def __getitem__(self, kid: str) -> Ed25519PublicKey:
        return self._keys[kid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def verify(self, message: bytes, signature: Signature) -> None:
        """Check that ``signature`` is a trusted key's signature of exactly ``message``.

        Raises:
            UnknownKey: the key id is not trusted.
            BadSignature: the signature does not match.
        """
        public = self._keys.get(signature.key_id)
        if public is None:
            raise UnknownKey(
                f"signed by key {signature.key_id}, which is not trusted here "
                f"(trusted: {sorted(self._keys) or 'none'} from {self.origin})"
            )
        try:
            raw = base64.b64decode(signature.signature, validate=True)
            public.verify(raw, message)
        except (binascii.Error, InvalidSignature):
            raise BadSignature(
                f"signature by key {signature.key_id} does not match the signed bytes"
            ) from None
