"""``retail-export keys|sign|verify|import|pack``: argument parsing only; the work is in the
library (``common.signing``, ``common.bundle``, ``model_export.bundle.importer``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.bundle import (
    BundleError,
    pack_bundle,
    sign_bundle,
    verify_archive,
    verify_bundle,
)
from common.manifest import DecoderFamily
from common.signing import (
    SigningError,
    TrustedKeys,
    generate_key_pair,
    key_id,
    load_private_key,
    load_public_key,
)
from model_export.bundle.errors import ExportError
from model_export.bundle.importer import ImportOptions, import_model, read_classes

COMMANDS = ("keys", "sign", "verify", "import", "pack")


def parse_size(text: str) -> tuple[int, int]:
    """``WxH`` (e.g. ``416x416``) as (width, height) in pixels."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WxH, e.g. 416x416") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: sizes must be positive")
    return w, h


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the bundle commands."""
    keys = subparsers.add_parser("keys", help="Ed25519 signing keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    gen = keys_sub.add_parser("generate", help="write NAME.key (0600) and NAME.pub into --out")
    gen.add_argument("--out", type=Path, required=True, help="folder for the key pair")
    gen.add_argument("--name", default="signing", help="file name stem (default: signing)")
    gen.set_defaults(func=_keys_generate)

    sign = subparsers.add_parser("sign", help="sign a bundle folder's manifest.json")
    sign.add_argument("bundle", type=Path, help="bundle folder")
    sign.add_argument("--key", type=Path, required=True, help="private key file (NAME.key)")
    sign.set_defaults(func=_sign)

    verify = subparsers.add_parser(
        "verify", help="check a bundle (folder or .tar): signature, then every file's sha256"
    )
    verify.add_argument("bundle", type=Path, help="bundle folder or .tar archive")
    verify.add_argument(
        "--trusted-keys", type=Path, required=True, help="folder of trusted public keys (*.pub)"
    )
    verify.set_defaults(func=_verify)

    imp = subparsers.add_parser(
        "import", help="wrap an existing ONNX or OpenVINO model into a (signed) bundle"
    )
    imp.add_argument("model", type=Path, help=".onnx file, or OpenVINO .xml (with its .bin)")
    imp.add_argument(
        "--family", required=True, choices=[f.value for f in DecoderFamily], help="decoder"
    )
    imp.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    imp.add_argument("--classes", type=Path, help="class names file, one per line")
    imp.add_argument("--input", type=parse_size, help="input size WxH in pixels")
    imp.add_argument("--name", help="model name (default: the known model's, else file stem)")
    imp.add_argument("--version", help="model version (default: the known model's, else 1)")
    imp.add_argument("--source", help="where the weights come from, and their licence")
    imp.add_argument("--key", type=Path, help="private key: sign the bundle")
    imp.add_argument("--archive", type=Path, help="also write the bundle as this .tar")
    imp.set_defaults(func=_import)

    pack = subparsers.add_parser("pack", help="write a bundle folder as one .tar archive")
    pack.add_argument("bundle", type=Path, help="bundle folder")
    pack.add_argument("--out", type=Path, help="archive path (default: BUNDLE.tar)")
    pack.set_defaults(func=_pack)


def _print(data: dict[str, object]) -> None:
    print(json.dumps(data, indent=2, default=str))


def _keys_generate(args: argparse.Namespace) -> int:
    private, public = generate_key_pair(args.out, args.name)
    _print(
        {"private_key": private, "public_key": public, "key_id": key_id(load_public_key(public))}
    )
    return 0


def _sign(args: argparse.Namespace) -> int:
    signature = sign_bundle(args.bundle, load_private_key(args.key))
    _print({"bundle": args.bundle, "key_id": signature.key_id})
    return 0


def _verify(args: argparse.Namespace) -> int:
    trusted = TrustedKeys.from_dir(args.trusted_keys)
    if args.bundle.is_dir():
        verified = verify_bundle(args.bundle, trusted)
        manifest, kid = verified.manifest, verified.key_id
    else:
        manifest, kid = verify_archive(args.bundle, trusted)
    _print(
        {
            "verified": True,
            "bundle": args.bundle,
            "name": manifest.name,
            "version": manifest.version,
            "key_id": kid,
            "files": manifest.files,
        }
    )
    return 0


def _import(args: argparse.Namespace) -> int:
    key = load_private_key(args.key) if args.key else None
    options = ImportOptions(
        family=DecoderFamily(args.family),
        classes=read_classes(args.classes) if args.classes else None,
        input_size=args.input,
        name=args.name,
        version=args.version,
        source=args.source,
    )
    manifest = import_model(args.model, args.out, options, key=key)
    summary: dict[str, object] = {
        "bundle": args.out,
        "name": manifest.name,
        "version": manifest.version,
        "family": manifest.family.value,
        "input": f"{manifest.input.width}x{manifest.input.height}",
        "classes": len(manifest.classes),
        "signed": key is not None,
    }
    if args.archive:
        summary["archive"] = pack_bundle(args.out, args.archive)
    _print(summary)
    return 0


def _pack(args: argparse.Namespace) -> int:
    out = args.out or args.bundle.with_name(args.bundle.name + ".tar")
    _print({"archive": pack_bundle(args.bundle, out)})
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; domain errors print one line and return 2."""
    try:
        code: int = args.func(args)
    except BundleError as exc:
        print(f"error: bundle refused ({exc.reason}): {exc}", file=sys.stderr)
        return 2
    except (SigningError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code
