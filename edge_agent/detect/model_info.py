"""Find out how to run a model: its manifest, from the most explicit source available.

Order: a manifest given in the store config; a manifest file beside the model
(``<model>.manifest.json`` or ``manifest.json``); metadata embedded by the exporter
(ultralytics ONNX metadata, OpenVINO ``rt_info/model_info``, ultralytics ``metadata.yaml``);
the catalogue of known public models by sha256. Nothing is guessed from file names.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml
from pydantic import ValidationError

from common.catalog import KNOWN_MODELS, ultralytics_manifest
from common.manifest import DecoderFamily, InputSpec, Letterbox, ModelManifest
from edge_agent.errors import ModelError

log = logging.getLogger(__name__)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _ultralytics_manifest(
    name: str, imgsz: list[int], names: dict[int, str] | list[str], sha: str, dynamic: bool
) -> ModelManifest:
    classes = list(names.values()) if isinstance(names, dict) else list(names)
    return ultralytics_manifest(
        name, int(imgsz[1]), int(imgsz[0]), classes, sha256=sha, dynamic_batch=dynamic
    )


def _from_onnx_metadata(path: Path, sha: str) -> ModelManifest | None:
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several unrelated types for bad files
        raise ModelError(f"cannot load ONNX model {path}: {exc}") from exc
    meta = sess.get_modelmeta().custom_metadata_map
    if "names" not in meta or "imgsz" not in meta:
        return None
    names = ast.literal_eval(meta["names"])
    imgsz = ast.literal_eval(meta["imgsz"])
    dynamic = not isinstance(sess.get_inputs()[0].shape[0], int)
    return _ultralytics_manifest(path.stem, imgsz, names, sha, dynamic)


def _from_openvino_xml(path: Path, sha: str) -> ModelManifest | None:
    sidecar = path.parent / "metadata.yaml"
    if sidecar.is_file():
        meta = yaml.safe_load(sidecar.read_text())
        if isinstance(meta, dict) and "imgsz" in meta and "names" in meta:
            dynamic = bool(meta.get("args", {}).get("dynamic", False))
            return _ultralytics_manifest(path.stem, meta["imgsz"], meta["names"], sha, dynamic)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ModelError(f"OpenVINO model {path} is not valid XML: {exc}") from exc
    info = root.find("rt_info/model_info")
    if info is None or info.find("model_type") is None:
        return None
    fields = {child.tag: child.get("value", "") for child in info}
    if fields.get("model_type") != "YOLO":
        return None
    shape = root.find(".//layer[@type='Parameter']/data")
    if shape is None:
        return None
    dims = [int(d) for d in (shape.get("shape") or "").split(",") if d.strip().isdigit()]
    if len(dims) != 4:
        return None
    resize = fields.get("resize_type", "fit_to_window_letterbox")
    return ModelManifest(
        name=path.stem,
        version="openvino-rt-info",
        family=DecoderFamily.YOLOV8,
        input=InputSpec(
            width=dims[3],
            height=dims[2],
            color="rgb" if fields.get("reverse_input_channels", "NO") == "YES" else "bgr",
            scale=1 / float(fields.get("scale_values", "1") or 1),
            letterbox=Letterbox.CENTER if "letterbox" in resize else Letterbox.STRETCH,
            pad_value=int(float(fields.get("pad_value", "114"))),
        ),
        classes=fields.get("labels", "object").split(),
        sha256=sha,
        source="OpenVINO rt_info model_info",
    )


def _read_manifest_file(path: Path) -> ModelManifest:
    try:
        return ModelManifest.model_validate(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read model manifest {path}: {exc}") from exc
    except ValidationError as exc:
        raise ModelError(f"invalid model manifest {path}: {exc}") from exc


def resolve_manifest(
    model_path: Path, manifest: ModelManifest | dict[str, object] | Path | None = None
) -> ModelManifest:
    """The manifest describing ``model_path``.

    Raises:
        ModelError: the model file is missing, or no source says how to run it.
    """
    if not model_path.is_file():
        raise ModelError(f"model file not found: {model_path}")
    if isinstance(manifest, ModelManifest):
        return manifest
    if isinstance(manifest, dict):
        try:
            return ModelManifest.model_validate(manifest)
        except ValidationError as exc:
            raise ModelError(f"invalid model manifest in config: {exc}") from exc
    if isinstance(manifest, Path):
        return _read_manifest_file(manifest)
    for candidate in (
        model_path.with_name(model_path.name + ".manifest.json"),
        model_path.with_suffix(".manifest.json"),
        model_path.parent / "manifest.json",
    ):
        if candidate.is_file():
            log.info("model %s: manifest from %s", model_path.name, candidate)
            return _read_manifest_file(candidate)
    sha = sha256_file(model_path)
    suffix = model_path.suffix.lower()
    found: ModelManifest | None = None
    if suffix == ".onnx":
        found = _from_onnx_metadata(model_path, sha)
    elif suffix == ".xml":
        found = _from_openvino_xml(model_path, sha)
    else:
        raise ModelError(
            f"unsupported model file type {suffix!r} for {model_path}: use .onnx or OpenVINO .xml"
        )
    if found is not None:
        log.info("model %s: layout from embedded metadata (%s)", model_path.name, found.source)
        return found
    if sha in KNOWN_MODELS:
        log.info("model %s: recognised as %s", model_path.name, KNOWN_MODELS[sha].name)
        return KNOWN_MODELS[sha]
    raise ModelError(
        f"cannot tell how to run {model_path}: it has no manifest beside it, no exporter "
        f"metadata, and is not a known model (sha256 {sha[:12]}…). Create one with "
        f"`retail-export import {model_path} --family yolox|yolov8|ssd ...` or give "
        f"`model.manifest` in the store config."
    )
