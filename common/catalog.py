"""Manifests for well-known public models, identified by the sha256 of their weights file.

These models ship without metadata that says how to preprocess their input. Rather than guess
from a file name, we recognise the exact file by its hash and use the layout published by its
authors (see ``source``). Any other model needs a manifest beside it (``retail-export import``).
The edge agent resolves plain model files with this catalogue; ``retail-export import`` starts
a bundle's manifest from it. ``ultralytics_manifest`` is the layout every ultralytics export
documents in its metadata.
"""

from __future__ import annotations

from common.manifest import DecoderFamily, InputSpec, Letterbox, ModelManifest

COCO80 = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
]  # fmt: skip


def ultralytics_manifest(
    name: str,
    width: int,
    height: int,
    classes: list[str],
    sha256: str | None = None,
    dynamic_batch: bool = False,
    version: str = "ultralytics",
    source: str = "ultralytics export metadata",
) -> ModelManifest:
    """The manifest of an ultralytics YOLOv8/11 detection export at ``width`` x ``height`` px.

    Ultralytics exports document their own preprocessing: RGB, /255, centred letterbox, pad 114.
    """
    return ModelManifest(
        name=name,
        version=version,
        family=DecoderFamily.YOLOV8,
        input=InputSpec(
            width=width,
            height=height,
            color="rgb",
            scale=1 / 255,
            letterbox=Letterbox.CENTER,
            pad_value=114,
            dynamic_batch=dynamic_batch,
        ),
        classes=classes,
        sha256=sha256,
        source=source,
    )


def _omz_ssd(name: str, width: int, height: int, label: str, sha: str) -> ModelManifest:
    return ModelManifest(
        name=name,
        version="omz-2021",
        family=DecoderFamily.SSD,
        input=InputSpec(width=width, height=height, color="bgr", letterbox=Letterbox.STRETCH),
        classes=[label],
        label_offset=1,
        sha256=sha,
        source="Intel Open Model Zoo, Apache-2.0",
    )


KNOWN_MODELS: dict[str, ModelManifest] = {
    m.sha256: m  # type: ignore[misc]
    for m in [
        ModelManifest(
            name="yolox-nano",
            version="megvii-0.1.1",
            family=DecoderFamily.YOLOX,
            input=InputSpec(
                width=416, height=416, color="bgr", letterbox=Letterbox.TOP_LEFT, pad_value=114
            ),
            classes=COCO80,
            sha256="695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14",
            source="Megvii YOLOX-nano COCO; ONNX from Kazuhito00/YOLOX-ONNX-TFLite-Sample; "
            "Apache-2.0",
        ),
        # OpenVINO IR: the hash is of the .xml topology file.
        _omz_ssd(
            "person-detection-retail-0013",
            544,
            320,
            "person",
            "4c7d5d40fce71f2715f8175010309b33071bd6a768475e3563ade5d3584c31e4",
        ),
        _omz_ssd(
            "pedestrian-detection-adas-0002",
            672,
            384,
            "person",
            "233519498b393adc8506bd80dd09d19f89e202b544565e7821a7fdff48bfa306",
        ),
    ]
}
