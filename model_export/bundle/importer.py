"""``retail-export import``: wrap an existing ONNX or OpenVINO model into a (signed) bundle.

The manifest starts from what is known for sure about the exact file: the catalogue of public
models by sha256 (``common.catalog``), else the ultralytics metadata an ultralytics export
embeds. Anything else is built from the options (family, classes, input size), with the
preprocessing each decoder family's authors publish. Options always win over what was found,
and the input size must agree with the model's own input shape.
"""

from __future__ import annotations

import ast
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.bundle import sha256_file, sign_bundle, write_bundle
from common.catalog import KNOWN_MODELS, ultralytics_manifest
from common.manifest import DecoderFamily, InputSpec, Letterbox, ModelManifest
from model_export.bundle.errors import ExportError

log = logging.getLogger(__name__)

#: Input preprocessing each family's authors publish (the sizes are placeholders).
FAMILY_INPUT: dict[DecoderFamily, InputSpec] = {
    DecoderFamily.YOLOX: InputSpec(
        width=1, height=1, color="bgr", letterbox=Letterbox.TOP_LEFT, pad_value=114
    ),
    DecoderFamily.YOLOV8: InputSpec(
        width=1, height=1, color="rgb", scale=1 / 255, letterbox=Letterbox.CENTER, pad_value=114
    ),
    DecoderFamily.SSD: InputSpec(width=1, height=1, color="bgr", letterbox=Letterbox.STRETCH),
}
#: Raw label minus this is the class index: DetectionOutput reserves label 0 for background.
FAMILY_LABEL_OFFSET = {DecoderFamily.YOLOX: 0, DecoderFamily.YOLOV8: 0, DecoderFamily.SSD: 1}


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """What the operator says about the model; ``None`` keeps what was found.

    Attributes:
        family: decoder family (required: it is never guessed).
        classes: class names in output order.
        input_size: (width, height) in pixels.
        name, version: the bundle's identity (default: the known model's, else the file stem
            and ``"1"``).
        source: where the weights came from, and their licence.
    """

    family: DecoderFamily
    classes: list[str] | None = None
    input_size: tuple[int, int] | None = None
    name: str | None = None
    version: str | None = None
    source: str | None = None


def read_classes(path: Path) -> list[str]:
    """Class names from a text file, one per line (``coco.names`` style); blank lines skipped."""
    try:
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise ExportError(f"cannot read classes file {path}: {exc.strerror}") from None
    if not names:
        raise ExportError(f"classes file {path} lists no class")
    return names


def model_files(model: Path) -> list[Path]:
    """The files a model consists of: the ONNX file, or the OpenVINO .xml and its .bin."""
    if not model.is_file():
        raise ExportError(f"model file not found: {model}")
    suffix = model.suffix.lower()
    if suffix == ".onnx":
        return [model]
    if suffix == ".xml":
        weights = model.with_suffix(".bin")
        if not weights.is_file():
            raise ExportError(
                f"OpenVINO model {model} has no weights file {weights.name} beside it"
            )
        return [model, weights]
    raise ExportError(f"unsupported model type {suffix!r} for {model}: give an .onnx or .xml")


def model_input_size(model: Path) -> tuple[int, int] | None:
    """(width, height) of the model's NCHW input when fixed, else None."""
    if model.suffix.lower() == ".xml":
        try:
            root = ET.parse(model).getroot()
        except ET.ParseError as exc:
            raise ExportError(f"{model} is not valid OpenVINO XML: {exc}") from None
        data = root.find(".//layer[@type='Parameter']/data")
        dims = (data.get("shape") or "").split(",") if data is not None else []
        if len(dims) == 4 and dims[2].strip().isdigit() and dims[3].strip().isdigit():
            return int(dims[3]), int(dims[2])
        return None
    import onnx

    try:
        graph = onnx.load(str(model), load_external_data=False).graph
    except Exception as exc:  # onnx raises DecodeError and others for a bad file
        raise ExportError(f"cannot read ONNX model {model}: {exc}") from None
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    sizes = [int(d.dim_value) for d in inputs[0].type.tensor_type.shape.dim] if inputs else []
    if len(sizes) == 4 and sizes[2] > 0 and sizes[3] > 0:
        return sizes[3], sizes[2]
    return None


def _ultralytics_metadata(model: Path, sha: str) -> ModelManifest | None:
    if model.suffix.lower() != ".onnx":
        return None
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(model), load_external_data=False).metadata_props}
    if "names" not in meta or "imgsz" not in meta:
        return None
    names = ast.literal_eval(meta["names"])
    imgsz = ast.literal_eval(meta["imgsz"])
    classes = list(names.values()) if isinstance(names, dict) else list(names)
    return ultralytics_manifest(model.stem, int(imgsz[1]), int(imgsz[0]), classes, sha256=sha)


def import_manifest(model: Path, options: ImportOptions) -> ModelManifest:
    """The manifest for ``model``: what is known about the file, then the options over it.

    Raises:
        ExportError: the family contradicts a known model, classes are needed and missing, or
            the input size disagrees with the model's.
    """
    model_files(model)
    sha = sha256_file(model)
    found = KNOWN_MODELS.get(sha) or _ultralytics_metadata(model, sha)
    actual = model_input_size(model)
    if found is not None:
        log.info("%s: starting from %s (%s)", model.name, found.name, found.source)
        if found.family is not options.family:
            raise ExportError(
                f"{model} is {found.name}, decoded as {found.family.value}, not "
                f"{options.family.value}: fix --family"
            )
        base = found
    else:
        if options.classes is None:
            raise ExportError(
                f"{model} is not a known model and has no exporter metadata: give --classes FILE"
            )
        size = options.input_size or actual
        if size is None:
            raise ExportError(f"{model} has a dynamic input size: give --input WxH")
        base = ModelManifest(
            name=options.name or model.stem,
            version=options.version or "1",
            family=options.family,
            input=FAMILY_INPUT[options.family].model_copy(
                update={"width": size[0], "height": size[1]}
            ),
            classes=options.classes,
            label_offset=FAMILY_LABEL_OFFSET[options.family],
            source=options.source,
        )
    update: dict[str, object] = {"sha256": sha}
    if options.classes is not None:
        update["classes"] = options.classes
    for field in ("name", "version", "source"):
        if getattr(options, field) is not None:
            update[field] = getattr(options, field)
    if options.input_size is not None:
        update["input"] = base.input.model_copy(
            update={"width": options.input_size[0], "height": options.input_size[1]}
        )
    manifest = base.model_copy(update=update)
    spec = manifest.input
    if actual is not None and actual != (spec.width, spec.height):
        raise ExportError(
            f"--input {spec.width}x{spec.height} but {model} takes {actual[0]}x{actual[1]}"
        )
    return manifest


def import_model(
    model: Path,
    out: Path,
    options: ImportOptions,
    key: Ed25519PrivateKey | None = None,
    metrics: dict[str, float] | None = None,
) -> ModelManifest:
    """Write a bundle for ``model`` into ``out``; signed when ``key`` is given.

    Returns the manifest written (with every file's sha256 and ``created_at``).
    """
    manifest = import_manifest(model, options)
    if metrics:
        manifest = manifest.model_copy(update={"metrics": {**manifest.metrics, **metrics}})
    files = model_files(model)
    written = write_bundle(out, files, manifest, model_file=model.name)
    if key is not None:
        sign_bundle(out, key)
    log.info("bundle %s: %s %s (%d files)", out, written.name, written.version, len(files))
    return written
