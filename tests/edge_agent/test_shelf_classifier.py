"""The product classifier on the edge: a real bundle trained by ``retail-export classifier
train`` on grocery photos, run by ``edge_agent.shelf.products`` with ONNX Runtime alone; a
product in the wrong slot is flagged as misplaced once it held for the hold time."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.detect.detections import Detections
from edge_agent.errors import ModelError
from edge_agent.shelf.classes import DetectorClasses
from edge_agent.shelf.config import ShelfConfig
from edge_agent.shelf.monitor import ShelfFrame, ShelfMonitor
from edge_agent.shelf.products import ProductClassifier
from model_export.classifier.inference import BundleRunner
from model_export.cli import main as export_main

APPLE, OAT = "Bravo-Apple-Juice", "Oatly-Natural-Oatghurt"
IDS = {APPLE: 28, OAT: 44}
SIDE = 256  # pixels of a pasted product photo


def _lines(root: Path, split: str, cid: int) -> list[str]:
    out = []
    for line in (root / f"{split}.txt").read_text().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and int(parts[1]) == cid:
            out.append(parts[0])
    return out


@pytest.fixture(scope="module")
def grocery(assets: Path) -> Path:
    """The real grocery-packages dataset."""
    return assets / "products" / "grocery-packages"


@pytest.fixture(scope="module")
def bundle(grocery: Path, assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-product bundle trained through the export CLI on 8 photos per product."""
    data = tmp_path_factory.mktemp("products")
    (data / "classes.csv").write_text((grocery / "classes.csv").read_text())
    for split, n in (("train", 8), ("val", 3), ("test", 3)):
        rows = [
            f"{grocery / p}, {cid}, 0"
            for cid in IDS.values()
            for p in _lines(grocery, split, cid)[:n]
        ]
        (data / f"{split}.txt").write_text("\n".join(rows) + "\n")
    out = tmp_path_factory.mktemp("bundle") / "products"
    extractor = assets / "models/classifier/mobilenet_v1_1.0_224_quant_embedding_extractor.onnx"
    args = ["classifier", "train", "--dataset", str(data), "--out", str(out)]
    assert export_main([*args, "--extractor", str(extractor)]) == 0
    return out


def _test_photos(grocery: Path, name: str) -> list[Path]:
    return [grocery / p for p in _lines(grocery, "test", IDS[name])[5:8]]


def test_edge_preprocessing_matches_the_export_tooling(bundle: Path, grocery: Path) -> None:
    """Same bundle, same photos: the edge's crop-and-scale gives the export side's answer."""
    photos = _test_photos(grocery, APPLE) + _test_photos(grocery, OAT)
    want = BundleRunner(bundle).run(photos, "probabilities")
    edge = ProductClassifier(bundle)
    names = []
    for path, probs in zip(photos, want, strict=True):
        image = cv2.imread(str(path))
        h, w = image.shape[:2]
        label, score = edge.classify(image, np.array([[0, 0, w, h]], np.float32))
        assert label[0] == probs.argmax()
        assert score[0] == pytest.approx(probs.max(), abs=1e-4)
        names.append(edge.classes[int(label[0])])
    assert names == [APPLE] * 3 + [OAT] * 3


def test_a_product_in_the_wrong_slot_is_flagged_misplaced(bundle: Path, grocery: Path) -> None:
    """Slots a and b are planned for apple juice; b holds oatghurt, c is empty."""
    canvas = np.full((SIDE + 40, 3 * (SIDE + 40), 3), 200, np.uint8)
    boxes = []
    for k, name in enumerate([APPLE, OAT]):
        photo = cv2.resize(cv2.imread(str(_test_photos(grocery, name)[0])), (SIDE, SIDE))
        x = 20 + k * (SIDE + 40)
        canvas[20 : 20 + SIDE, x : x + SIDE] = photo
        boxes.append([x, 20, x + SIDE, 20 + SIDE])
    h, w = canvas.shape[:2]
    pitch = SIDE + 40
    slots = [
        {"id": f"s{k}", "box": [(10 + k * pitch) / w, 0.02, (k + 1) * pitch / w, 0.98]}
        for k in range(3)
    ]
    for slot in slots:
        slot["product"] = APPLE
    cfg = ShelfConfig.model_validate(
        {"slots": slots, "hold_s": 1.0, "classifier": str(bundle), "product_classes": ["bottle"]}
    )
    classes = DetectorClasses(["person", "bottle"])
    monitor = ShelfMonitor(
        "dairy",
        [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)],
        cfg,
        classes.ids(["bottle"]),
        classes.people_ids,
        ProductClassifier(bundle),
    )
    dets = Detections.from_arrays(boxes, [0.9, 0.9], [1, 1])
    changes = []
    for k in range(15):  # 1.4 s at 10 fps
        changes += monitor.update(ShelfFrame(dets, canvas), w, h, k / 10).changes
    product_changes = sorted((c.slot_id, c.value) for c in changes if c.what == "product")
    assert product_changes == [("s0", APPLE), ("s1", OAT)]
    views = {v.slot_id: v for v in monitor.slots()}
    assert (views["s0"].seen_product, views["s0"].misplaced) == (APPLE, False)
    assert (views["s1"].seen_product, views["s1"].misplaced) == (OAT, True)
    assert (views["s2"].state, views["s2"].seen_product, views["s2"].misplaced) == (
        "empty",
        None,
        False,
    )
    # Without the image (a caller that does not pass it) identity is simply not observed.
    blind = ShelfMonitor("dairy", [(0, 0), (1, 0), (1, 1), (0, 1)], cfg, classes.ids(["bottle"]),
                         classes.people_ids, ProductClassifier(bundle))  # fmt: skip
    for k in range(15):
        blind.update(ShelfFrame(dets), w, h, k / 10)
    assert [v.seen_product for v in blind.slots()] == [None, None, None]


def test_a_tampered_or_missing_bundle_is_refused(bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    model = copy / "classifier.onnx"
    model.write_bytes(model.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ModelError, match="sha256"):
        ProductClassifier(copy)
    with pytest.raises(ModelError, match="classifier train"):
        ProductClassifier(tmp_path / "nowhere")
