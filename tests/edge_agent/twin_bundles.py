"""Real model bundles for rollout tests: the YOLOX-nano of the assets, signed, and signed
variants that are bad in one way each (built from the real graph with ``onnx``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from onnx import TensorProto, helper, numpy_helper

from common.bundle import sign_bundle, write_bundle
from common.manifest import DecoderFamily, ModelManifest
from model_export.bundle.importer import ImportOptions, import_model

YOLOX = "models/person/yolox_nano.onnx"
Variant = Literal["slow", "crash", "zeros"]


def yolox_bundle(
    assets: Path, out: Path, version: str, key: Ed25519PrivateKey
) -> tuple[Path, ModelManifest]:
    """The real YOLOX-nano as a signed bundle of this version (what ``retail-export import
    --key`` writes)."""
    manifest = import_model(
        assets / YOLOX, out, ImportOptions(family=DecoderFamily.YOLOX, version=version), key
    )
    return out, manifest


def yolox_variant(assets: Path, kind: Variant, out: Path) -> Path:
    """A changed YOLOX-nano graph (same input and output), written to ``out``:

    * ``slow``: the real model plus a side branch of two full-resolution convolutions (3→64
      7x7, 64→64 3x3 over 416x416: about 8 GMAC) added to the output times zero: the same
      boxes, 9-11 times slower in the end-to-end test.
    * ``crash``: loads, then fails on every inference (a Gather whose index comes from the
      pixel data, out of range).
    * ``zeros``: the real model's output times zero: runs, detects nothing.
    """
    model = onnx.load(str(assets / YOLOX))
    g = model.graph
    g.output[0].name = "raw_output"
    for node in g.node:
        node.output[:] = ["raw_output" if o == "output" else o for o in node.output]
    zero = numpy_helper.from_array(np.zeros((1,), np.float32), "zero")
    g.initializer.append(zero)
    if kind == "zeros":
        g.node.append(helper.make_node("Mul", ["raw_output", "zero"], ["output"]))
    elif kind == "slow":
        rng = np.random.default_rng(0)
        w1 = rng.normal(0, 0.01, (64, 3, 7, 7)).astype(np.float32)
        w2 = rng.normal(0, 0.01, (64, 64, 3, 3)).astype(np.float32)
        g.initializer.extend([numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
        g.node.extend(
            [
                helper.make_node("Conv", ["images", "w1"], ["h1"], pads=[3, 3, 3, 3]),
                helper.make_node("Relu", ["h1"], ["h1r"]),
                helper.make_node("Conv", ["h1r", "w2"], ["h2"], pads=[1, 1, 1, 1]),
                helper.make_node("ReduceMean", ["h2"], ["m"], keepdims=0),
                helper.make_node("Mul", ["m", "zero"], ["m0"]),
                helper.make_node("Add", ["raw_output", "m0"], ["output"]),
            ]
        )
    else:
        g.node.extend(
            [
                helper.make_node("ReduceMax", ["images"], ["mx"], keepdims=0),
                helper.make_node("Cast", ["mx"], ["idx"], to=TensorProto.INT64),
                helper.make_node("Gather", ["images", "idx"], ["bad"], axis=1),
                helper.make_node("ReduceMean", ["bad"], ["bm"], keepdims=0),
                helper.make_node("Mul", ["bm", "zero"], ["bm0"]),
                helper.make_node("Add", ["raw_output", "bm0"], ["output"]),
            ]
        )
    g.output[0].name = "output"
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out


def bundle_of(
    model_file: Path,
    base: ModelManifest,
    version: str,
    key: Ed25519PrivateKey,
    out: Path,
) -> Path:
    """A signed bundle folder holding ``model_file`` under the base bundle's model file name,
    with the base manifest at ``version`` (what ``retail-export sign`` signs)."""
    assert base.model_file is not None
    staged = out.parent / f"{out.name}-src"
    staged.mkdir(parents=True, exist_ok=True)
    target = staged / base.model_file
    target.write_bytes(model_file.read_bytes())
    clean = base.model_copy(update={"version": version, "files": {}, "model_file": None})
    write_bundle(out, [target], clean, base.model_file)
    sign_bundle(out, key)
    return out
