"""Signed model bundles (common.bundle, common.signing): each check refuses what it must."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.bundle import (
    MANIFEST_FILE,
    SIGNATURE_FILE,
    BadSignatureError,
    BundleError,
    HashMismatch,
    InvalidManifest,
    MissingFile,
    UnknownKeyError,
    UnlistedFile,
    UnsafePath,
    UnsignedBundle,
    archive_bytes,
    inspect_bundle,
    open_bundle,
    pack_bundle,
    sign_bundle,
    unpack_bundle,
    verify_archive,
    verify_bundle,
    write_bundle,
)
from common.manifest import DecoderFamily, InputSpec, ModelManifest
from common.signing import (
    KeyFileError,
    Signature,
    TrustedKeys,
    generate_key_pair,
    key_id,
    load_private_key,
    load_public_key,
)

MANIFEST = ModelManifest(
    name="toy",
    version="3",
    family=DecoderFamily.YOLOX,
    input=InputSpec(width=64, height=32),
    classes=["person"],
)


def make_bundle(root: Path, key: Ed25519PrivateKey | None, files: int = 2) -> Path:
    """A bundle of ``files`` small files (the first is the model), signed when ``key``."""
    src = root / "src"
    src.mkdir(parents=True)
    paths = []
    for i in range(files):
        p = src / f"part{i}.bin"
        p.write_bytes(os.urandom(300 + i))
        paths.append(p)
    folder = root / "bundle"
    write_bundle(folder, paths, MANIFEST, model_file="part0.bin")
    if key is not None:
        sign_bundle(folder, key)
    return folder


@pytest.fixture()
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture()
def trusted(key: Ed25519PrivateKey) -> TrustedKeys:
    return TrustedKeys.of(key.public_key())


def test_signed_bundle_verifies_and_names_key_and_files(
    tmp_path: Path, key: Ed25519PrivateKey, trusted: TrustedKeys
) -> None:
    folder = make_bundle(tmp_path, key)
    verified = verify_bundle(folder, trusted)
    assert verified.key_id == key_id(key.public_key())
    assert verified.manifest.model_file == "part0.bin"
    assert set(verified.manifest.files) == {"part0.bin", "part1.bin"}
    assert verified.manifest.sha256 == verified.manifest.files["part0.bin"]
    assert verified.manifest.created_at is not None
    assert verified.model_path == folder / "part0.bin"


def test_unsigned_bundle_is_refused(tmp_path: Path, trusted: TrustedKeys) -> None:
    folder = make_bundle(tmp_path, None)
    with pytest.raises(UnsignedBundle) as err:
        verify_bundle(folder, trusted)
    assert err.value.reason == "unsigned"


def test_bundle_signed_by_another_key_is_refused(tmp_path: Path, trusted: TrustedKeys) -> None:
    folder = make_bundle(tmp_path, Ed25519PrivateKey.generate())
    with pytest.raises(UnknownKeyError, match="not trusted"):
        verify_bundle(folder, trusted)


def test_forged_key_id_is_a_bad_signature(
    tmp_path: Path, key: Ed25519PrivateKey, trusted: TrustedKeys
) -> None:
    # An attacker signs with their own key but claims the trusted key's id.
    folder = make_bundle(tmp_path, Ed25519PrivateKey.generate())
    sig = json.loads((folder / SIGNATURE_FILE).read_text())
    sig["key_id"] = key_id(key.public_key())
    (folder / SIGNATURE_FILE).write_text(json.dumps(sig))
    with pytest.raises(BadSignatureError):
        verify_bundle(folder, trusted)


def test_edited_and_resigned_manifest_needs_a_trusted_key(
    tmp_path: Path, key: Ed25519PrivateKey, trusted: TrustedKeys
) -> None:
    folder = make_bundle(tmp_path, key)
    (folder / "part0.bin").write_bytes(b"evil model")
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["files"]["part0.bin"] = manifest["sha256"] = "0" * 64
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BadSignatureError):
        verify_bundle(folder, trusted)


def test_changed_missing_and_added_files_are_refused(
    tmp_path: Path, key: Ed25519PrivateKey, trusted: TrustedKeys
) -> None:
    folder = make_bundle(tmp_path, key)
    original = (folder / "part1.bin").read_bytes()
    (folder / "part1.bin").write_bytes(original + b"\0")
    with pytest.raises(HashMismatch, match=r"part1\.bin") as err:
        verify_bundle(folder, trusted)
    assert err.value.reason == "hash_mismatch"
    (folder / "part1.bin").unlink()
    with pytest.raises(MissingFile, match=r"part1\.bin"):
        verify_bundle(folder, trusted)
    (folder / "part1.bin").write_bytes(original)
    verify_bundle(folder, trusted)
    (folder / "extra.onnx").write_bytes(b"x")
    with pytest.raises(UnlistedFile, match=r"extra\.onnx"):
        verify_bundle(folder, trusted)


def test_symlink_in_bundle_folder_is_refused(
    tmp_path: Path, key: Ed25519PrivateKey, trusted: TrustedKeys
) -> None:
    folder = make_bundle(tmp_path, key)
    target = folder / "part1.bin"
    moved = tmp_path / "elsewhere.bin"
    target.rename(moved)
    target.symlink_to(moved)
    with pytest.raises(UnsafePath, match="not a regular file"):
        verify_bundle(folder, trusted)


def test_missing_or_garbled_manifest(
    tmp_path: Path, key: Ed25519PrivateKey, trusted: TrustedKeys
) -> None:
    folder = make_bundle(tmp_path, key)
    (folder / MANIFEST_FILE).write_text("{not json")
    sign_bundle(folder, key)  # signed garbage is still not a manifest
    with pytest.raises(InvalidManifest):
        verify_bundle(folder, trusted)
    (folder / MANIFEST_FILE).unlink()
    with pytest.raises(InvalidManifest, match="not a bundle"):
        verify_bundle(folder, trusted)
    (folder / SIGNATURE_FILE).write_text("garbage")
    (folder / MANIFEST_FILE).write_text(MANIFEST.model_dump_json())
    with pytest.raises(BadSignatureError, match="not a valid signature file"):
        verify_bundle(folder, trusted)


def test_signed_manifest_naming_a_path_outside_the_bundle_is_refused(
    tmp_path: Path, key: Ed25519PrivateKey, trusted: TrustedKeys
) -> None:
    folder = tmp_path / "b"
    folder.mkdir()
    manifest = MANIFEST.model_copy(
        update={"files": {"../secret": "0" * 64}, "model_file": "../secret"}
    )
    (folder / MANIFEST_FILE).write_text(manifest.model_dump_json())
    sign_bundle(folder, key)
    with pytest.raises(UnsafePath, match="plain file name"):
        verify_bundle(folder, trusted)


def test_write_bundle_refuses_odd_names(tmp_path: Path) -> None:
    bad = tmp_path / ".hidden"
    bad.write_bytes(b"x")
    with pytest.raises(UnsafePath):
        write_bundle(tmp_path / "b", [bad], MANIFEST, model_file=".hidden")
    ok = tmp_path / "m.onnx"
    ok.write_bytes(b"x")
    with pytest.raises(MissingFile, match="model_file"):
        write_bundle(tmp_path / "b", [ok], MANIFEST, model_file="other.onnx")


def test_archive_round_trip_and_in_memory_verification(
    tmp_path: Path, key: Ed25519PrivateKey, trusted: TrustedKeys
) -> None:
    folder = make_bundle(tmp_path, key)
    archive = pack_bundle(folder, tmp_path / "b.tar")
    assert archive.read_bytes() == archive_bytes(folder)  # deterministic
    manifest, kid = verify_archive(archive, trusted)
    assert manifest == verify_bundle(folder, trusted).manifest
    assert kid == key_id(key.public_key())
    assert verify_archive(io.BytesIO(archive.read_bytes()), trusted)[0] == manifest
    opened = open_bundle(archive, trusted, tmp_path / "work")
    assert (opened.folder / "part1.bin").read_bytes() == (folder / "part1.bin").read_bytes()


def test_open_bundle_verifies_a_private_copy(
    tmp_path: Path, key: Ed25519PrivateKey, trusted: TrustedKeys
) -> None:
    folder = make_bundle(tmp_path, key)
    opened = open_bundle(folder, trusted, tmp_path / "work")
    assert opened.folder == tmp_path / "work"
    assert opened.model_path.read_bytes() == (folder / "part0.bin").read_bytes()
    with pytest.raises(MissingFile, match="not found"):
        open_bundle(tmp_path / "nope", trusted, tmp_path / "work2")


def _tar_with(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_member("../evil.onnx"), "plain file name"),
        (_member("/etc/evil"), "plain file name"),
        (_member("sub/model.onnx"), "plain file name"),
        (_member("link.onnx", tarfile.SYMTYPE, "/etc/passwd"), "not a regular file"),
        (_member("hard.onnx", tarfile.LNKTYPE, "manifest.json"), "not a regular file"),
        (_member("dev", tarfile.CHRTYPE), "not a regular file"),
    ],
)
def test_unsafe_archive_members_are_refused_before_anything_is_written(
    tmp_path: Path,
    key: Ed25519PrivateKey,
    trusted: TrustedKeys,
    member: tarfile.TarInfo,
    message: str,
) -> None:
    folder = make_bundle(tmp_path, key)
    good = [(_member(p.name), p.read_bytes()) for p in sorted(folder.iterdir())]
    archive = tmp_path / "evil.tar"
    archive.write_bytes(_tar_with([(member, b"pwned"), *good]))
    with pytest.raises(UnsafePath, match=message) as err:
        verify_archive(archive, trusted)
    assert err.value.reason == "unsafe_path"
    dest = tmp_path / "dest"
    with pytest.raises(UnsafePath, match=message):
        open_bundle(archive, trusted, dest)
    assert not any(dest.iterdir()) if dest.exists() else True
    assert not (tmp_path / "evil.onnx").exists()


def test_duplicate_archive_member_is_refused(
    tmp_path: Path, key: Ed25519PrivateKey, trusted: TrustedKeys
) -> None:
    folder = make_bundle(tmp_path, key)
    good = [(_member(p.name), p.read_bytes()) for p in sorted(folder.iterdir())]
    archive = tmp_path / "dup.tar"
    # A second copy of the model after the genuine one: extraction would overwrite it.
    archive.write_bytes(_tar_with([*good, (_member("part0.bin"), b"evil")]))
    with pytest.raises(UnsafePath, match="twice"):
        verify_archive(archive, trusted)
    with pytest.raises(UnsafePath, match="twice"):
        unpack_bundle(archive, tmp_path / "dest")


def test_not_a_tar_is_a_bundle_error(tmp_path: Path, trusted: TrustedKeys) -> None:
    archive = tmp_path / "junk.tar"
    archive.write_bytes(os.urandom(2048))
    with pytest.raises(BundleError):
        verify_archive(archive, trusted)


def test_inspect_checks_files_but_not_the_signature(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path, None)
    assert inspect_bundle(folder).model_file == "part0.bin"
    (folder / "part0.bin").write_bytes(b"changed")
    with pytest.raises(HashMismatch):
        inspect_bundle(folder)


def test_key_files(tmp_path: Path) -> None:
    private_path, public_path = generate_key_pair(tmp_path / "keys", "ci")
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    private = load_private_key(private_path)
    assert key_id(private.public_key()) == key_id(load_public_key(public_path))
    with pytest.raises(KeyFileError, match="never overwritten"):
        generate_key_pair(tmp_path / "keys", "ci")
    private_path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_private_key(private_path)
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        bad = tmp_path / "bad.pub"
        bad.write_text("hello")
        load_public_key(bad)


def test_trusted_keys_folder(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="not found"):
        TrustedKeys.from_dir(tmp_path / "none")
    (tmp_path / "keys").mkdir()
    with pytest.raises(KeyFileError, match="no trusted keys"):
        TrustedKeys.from_dir(tmp_path / "keys")
    _, pub_a = generate_key_pair(tmp_path / "a")
    _, pub_b = generate_key_pair(tmp_path / "b")
    # File names do not matter: the id comes from the key itself.
    (tmp_path / "keys" / "hq.pub").write_bytes(pub_a.read_bytes())
    (tmp_path / "keys" / "ci.pub").write_bytes(pub_b.read_bytes())
    trusted = TrustedKeys.from_dir(tmp_path / "keys")
    assert set(trusted) == {key_id(load_public_key(pub_a)), key_id(load_public_key(pub_b))}


def test_signature_file_format() -> None:
    private = Ed25519PrivateKey.generate()
    trusted = TrustedKeys.of(private.public_key())
    from common.signing import sign

    sig = sign(b"hello", private)
    assert Signature.from_bytes(sig.to_bytes()) == sig
    trusted.verify(b"hello", sig)
    assert json.loads(sig.to_bytes())["algorithm"] == "ed25519"
