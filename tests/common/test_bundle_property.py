"""Property: any single flipped byte in a signed bundle is refused, folder or archive."""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from common.bundle import (
    MANIFEST_FILE,
    SIGNATURE_FILE,
    BundleError,
    pack_bundle,
    verify_archive,
    verify_bundle,
)
from common.signing import TrustedKeys
from tests.common.test_bundle import make_bundle

KEY = Ed25519PrivateKey.generate()
TRUSTED = TrustedKeys.of(KEY.public_key())


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("prop"), KEY)


def _flip(data: bytes, position: int, mask: int) -> bytes:
    i = position % len(data)
    return data[:i] + bytes([data[i] ^ mask]) + data[i + 1 :]


@settings(max_examples=300, deadline=None)
@given(
    target=st.sampled_from(["part0.bin", "part1.bin", MANIFEST_FILE, SIGNATURE_FILE]),
    position=st.integers(min_value=0, max_value=1 << 20),
    mask=st.integers(min_value=1, max_value=255),
)
def test_any_flipped_byte_in_any_file_is_refused(
    bundle: Path, target: str, position: int, mask: int
) -> None:
    verify_bundle(bundle, TRUSTED)  # the untouched bundle is fine
    path = bundle / target
    original = path.read_bytes()
    path.write_bytes(_flip(original, position, mask))
    try:
        with pytest.raises(BundleError):
            verify_bundle(bundle, TRUSTED)
    finally:
        path.write_bytes(original)


@settings(max_examples=150, deadline=None)
@given(
    member=st.sampled_from(["part0.bin", "part1.bin", MANIFEST_FILE, SIGNATURE_FILE]),
    position=st.integers(min_value=0, max_value=1 << 20),
    mask=st.integers(min_value=1, max_value=255),
)
def test_any_flipped_byte_in_an_archive_member_is_refused(
    bundle: Path, member: str, position: int, mask: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        archive = pack_bundle(bundle, Path(tmp) / "b.tar")
        with tarfile.open(archive) as tar:
            info = tar.getmember(member)
        data = bytearray(archive.read_bytes())
        data[info.offset_data + position % info.size] ^= mask
        archive.write_bytes(bytes(data))
        with pytest.raises(BundleError):
            verify_archive(archive, TRUSTED)


def test_whitespace_flip_in_signature_file_is_refused(bundle: Path) -> None:
    # Regression: a newline turned into a space or tab left valid JSON with the same signature.
    path = bundle / SIGNATURE_FILE
    original = path.read_bytes()
    for replacement in (b" ", b"\t", b"\r"):
        path.write_bytes(original.replace(b"\n", replacement, 1))
        try:
            with pytest.raises(BundleError, match="canonical"):
                verify_bundle(bundle, TRUSTED)
        finally:
            path.write_bytes(original)


def test_unused_bits_of_the_last_base64_digit_are_refused(bundle: Path) -> None:
    # Regression (found by the property above): the digit before "==" carries 4 unused bits,
    # so flipping one of them decoded to the same signature and the bundle was accepted.
    path = bundle / SIGNATURE_FILE
    original = path.read_bytes()
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    i = original.index(b"==") - 1
    other = alphabet[alphabet.index(original[i]) ^ 1]  # same 2 used bits, one unused bit flipped
    path.write_bytes(original[:i] + bytes([other]) + original[i + 1 :])
    try:
        with pytest.raises(BundleError, match="canonical base64"):
            verify_bundle(bundle, TRUSTED)
    finally:
        path.write_bytes(original)
