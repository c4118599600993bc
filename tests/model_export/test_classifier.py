"""The product classifier on the real grocery-packages data, through ``retail-export classifier``.

The full 31-class run (train ~2 min + eval ~25 s on 2 cores) is marked slow and comes first,
so that the subset run finds its embeddings in the shared cache. The fast tests train on an
8-class subset of the same images (one look-alike pair, Bravo apple/orange juice, kept in)
with one more class held out for add-product.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from model_export.classifier.bundle import MANIFEST_FILE, read_manifest
from model_export.classifier.compose import BIAS, EMBEDDING, PROBS, WEIGHT
from model_export.classifier.embed import Embedder, EmbeddingCache
from model_export.classifier.inference import BundleRunner
from model_export.classifier.settings import EXTRACTOR_IN_ASSETS
from model_export.cli import main

SUBSET_IDS = (28, 29, 31, 38, 44, 49, 53, 56)  # fine class ids of classes.csv, all with val
HELD_OUT_ID = 45  # Oatly-Oat-Milk: added from 5 photos; Oatly-Natural-Oatghurt (44) is trained
SHOTS = 5


def _cli(args: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _split_lines(root: Path, split: str) -> list[tuple[str, int]]:
    lines = []
    for line in (root / f"{split}.txt").read_text().splitlines():
        if line.strip():
            path, cid = (p.strip() for p in line.split(",")[:2])
            lines.append((path, int(cid)))
    return lines


def _write_subset(root: Path, out: Path, ids: set[int]) -> Path:
    """A dataset folder with only ``ids``: classes.csv copied, split lines with absolute paths."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "classes.csv").write_text((root / "classes.csv").read_text())
    for split in ("train", "val", "test"):
        rows = [f"{root / p}, {cid}, 0" for p, cid in _split_lines(root, split) if cid in ids]
        (out / f"{split}.txt").write_text("\n".join(rows) + "\n")
    return out


@pytest.fixture(scope="module")
def grocery(assets: Path) -> Path:
    """The real grocery-packages dataset folder."""
    return assets / "products" / "grocery-packages"


@pytest.fixture(scope="module")
def extractor(assets: Path) -> Path:
    """The frozen MobileNetV1 embedding extractor."""
    return assets / EXTRACTOR_IN_ASSETS


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Embedding cache shared by this module's training runs (the images are the same)."""
    return tmp_path_factory.mktemp("embeddings")


@pytest.fixture(scope="module")
def subset(grocery: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 8 subset classes (train, val, test)."""
    return _write_subset(grocery, tmp_path_factory.mktemp("subset"), set(SUBSET_IDS))


@pytest.fixture(scope="module")
def subset_bundle(
    subset: Path, extractor: Path, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A bundle trained through the CLI on the 8-class subset."""
    out = tmp_path_factory.mktemp("bundle") / "subset"
    code = main(
        [
            "classifier",
            "train",
            "--dataset",
            str(subset),
            "--out",
            str(out),
            "--extractor",
            str(extractor),
            "--cache-dir",
            str(cache_dir),
        ]
    )
    assert code == 0
    return out


@pytest.mark.slow
def test_all_31_classes_reach_90_percent_on_test(
    grocery: Path,
    extractor: Path,
    cache_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bundle = tmp_path / "grocery"
    code, out, err = _cli(
        [
            "classifier",
            "train",
            "--dataset",
            str(grocery),
            "--out",
            str(bundle),
            "--extractor",
            str(extractor),
            "--cache-dir",
            str(cache_dir),
        ],
        capsys,
    )
    assert code == 0, err
    assert json.loads(out)["classes"] == 31
    code, out, err = _cli(
        ["classifier", "eval", "--dataset", str(grocery), "--bundle", str(bundle)], capsys
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["n"] == len((grocery / "test.txt").read_text().splitlines()) == 781
    assert report["classes"] == 31
    assert report["top1"] >= 0.90
    worst = report["confused_pairs"][0]
    assert {worst["a"], worst["b"]} == {"Yoggi-Strawberry-Yoghurt", "Yoggi-Vanilla-Yoghurt"}


def test_subset_eval_through_the_cli(
    subset: Path, subset_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(
        ["classifier", "eval", "--dataset", str(subset), "--bundle", str(subset_bundle)], capsys
    )
    assert code == 0, err
    report = json.loads(out)
    n_test = len((subset / "test.txt").read_text().splitlines())
    assert report["n"] == n_test
    assert report["classes"] == len(SUBSET_IDS)
    assert report["top1"] >= 0.93
    manifest = json.loads((subset_bundle / MANIFEST_FILE).read_text())
    assert manifest["center_crop"] == 0.55
    assert manifest["input"]["width"] == manifest["input"]["height"] == 224
    assert manifest["input"]["layout"] == "NCHW" and manifest["input"]["color"] == "rgb"
    assert manifest["metrics"]["val_top1"] >= 0.8
    assert read_manifest(subset_bundle).sha256 == manifest["sha256"]  # checks the file hash


def test_onnx_graph_matches_the_python_pipeline(
    subset: Path, subset_bundle: Path, extractor: Path
) -> None:
    """Composed ONNX (mirror, extractor, embedding, head in one graph) = Embedder + numpy head."""
    import onnx
    from onnx import numpy_helper

    paths = [subset / p for p, _ in _split_lines(subset, "test")[::4]]
    runner = BundleRunner(subset_bundle)
    onnx_emb = runner.run(paths, EMBEDDING)
    onnx_probs = runner.run(paths, PROBS)

    model = onnx.load(str(subset_bundle / runner.manifest.model_file))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    py_emb = Embedder(extractor).embed_files(paths, runner.manifest.center_crop)
    logits = py_emb @ inits[WEIGHT].T + inits[BIAS]
    py_probs = np.exp(logits - logits.max(1, keepdims=True))
    py_probs /= py_probs.sum(1, keepdims=True)

    assert len(paths) == 56
    np.testing.assert_allclose(onnx_emb, py_emb, atol=1e-5)
    np.testing.assert_allclose(onnx_probs, py_probs, atol=1e-5)
    assert (onnx_probs.argmax(1) == py_probs.argmax(1)).all()


def test_add_product_from_five_photos(
    grocery: Path,
    subset: Path,
    subset_bundle: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _cli(
        ["classifier", "eval", "--dataset", str(subset), "--bundle", str(subset_bundle)], capsys
    )
    assert code == 0, err
    before = json.loads(out)

    photos = [str(grocery / p) for p, cid in _split_lines(grocery, "train") if cid == HELD_OUT_ID]
    new_bundle = tmp_path / "with-oat-milk"
    code, out, err = _cli(
        [
            "classifier",
            "add-product",
            "--bundle",
            str(subset_bundle),
            "--out",
            str(new_bundle),
            "--name",
            "Oatly-Oat-Milk",
            *photos[:SHOTS],
        ],
        capsys,
    )
    assert code == 0, err
    assert json.loads(out)["classes"] == len(SUBSET_IDS) + 1
    manifest = read_manifest(new_bundle)
    assert manifest.classes[-1] == "Oatly-Oat-Milk"
    assert manifest.training.added_products == ["Oatly-Oat-Milk"]

    with_new = _write_subset(grocery, tmp_path / "with-new", {*SUBSET_IDS, HELD_OUT_ID})
    code, out, err = _cli(
        ["classifier", "eval", "--dataset", str(with_new), "--bundle", str(new_bundle)], capsys
    )
    assert code == 0, err
    after = json.loads(out)
    per_class = {c["name"]: c for c in after["per_class"]}
    new = per_class.pop("Oatly-Oat-Milk")
    assert new["total"] == 31
    assert new["accuracy"] >= 0.7  # most of its test images, learnt from 5 photos
    old_correct = sum(c["correct"] for c in per_class.values())
    old_total = sum(c["total"] for c in per_class.values())
    assert old_total == before["n"]
    assert old_correct / old_total >= before["top1"] - 0.02  # old classes keep their accuracy


# --- bad input: one line on stderr, exit code 2 ----------------------------------------------


def _tiny_dataset(grocery: Path, out: Path) -> Path:
    """Two classes, three images each per split (absolute paths), enough to reach the checks."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "classes.csv").write_text((grocery / "classes.csv").read_text())
    for split in ("train", "val", "test"):
        lines = _split_lines(grocery, split)
        rows = [(p, c) for cid in (28, 44) for p, c in [r for r in lines if r[1] == cid][:3]]
        (out / f"{split}.txt").write_text("".join(f"{grocery / p}, {c}, 0\n" for p, c in rows))
    return out


def _train(dataset: Path, out: Path, extractor: Path) -> list[str]:
    return [
        "classifier",
        "train",
        "--dataset",
        str(dataset),
        "--out",
        str(out),
        "--extractor",
        str(extractor),
    ]


def test_missing_classes_csv_exits_2(
    grocery: Path, extractor: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _tiny_dataset(grocery, tmp_path / "data")
    (data / "classes.csv").unlink()
    code, _, err = _cli(_train(data, tmp_path / "b", extractor), capsys)
    assert code == 2
    assert "classes.csv not found" in err
    assert not (tmp_path / "b").exists()


def test_missing_image_in_train_txt_exits_2(
    grocery: Path, extractor: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _tiny_dataset(grocery, tmp_path / "data")
    with (data / "train.txt").open("a") as fh:
        fh.write("train/Packages/Juice/No-Such-Juice/No-Such-Juice_001.jpg, 28, 19\n")
    code, _, err = _cli(_train(data, tmp_path / "b", extractor), capsys)
    assert code == 2
    assert "train.txt:7: image" in err and "No-Such-Juice_001.jpg does not exist" in err


def test_unreadable_image_exits_2(
    grocery: Path, extractor: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _tiny_dataset(grocery, tmp_path / "data")
    broken = data / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    (data / "train.txt").write_text(f"broken.jpg, 28, 19\n{(data / 'train.txt').read_text()}")
    code, _, err = _cli(_train(data, tmp_path / "b", extractor), capsys)
    assert code == 2
    assert f"cannot decode image {broken}" in err


def test_unknown_class_id_exits_2(
    grocery: Path, extractor: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _tiny_dataset(grocery, tmp_path / "data")
    with (data / "val.txt").open("a") as fh:
        fh.write(f"{grocery / _split_lines(grocery, 'val')[0][0]}, 999, 0\n")
    code, _, err = _cli(_train(data, tmp_path / "b", extractor), capsys)
    assert code == 2
    assert "class id 999 is not in classes.csv" in err


def test_eval_of_a_class_the_model_lacks_exits_2(
    grocery: Path, subset_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _write_subset(grocery, tmp_path / "data", {28, HELD_OUT_ID})
    code, _, err = _cli(
        ["classifier", "eval", "--dataset", str(data), "--bundle", str(subset_bundle)], capsys
    )
    assert code == 2
    assert "test.txt has classes the model does not know: ['Oatly-Oat-Milk']" in err


def test_eval_of_a_folder_that_is_no_bundle_exits_2(
    grocery: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(
        ["classifier", "eval", "--dataset", str(grocery), "--bundle", str(tmp_path)], capsys
    )
    assert code == 2
    assert "manifest.json not found" in err


def test_add_product_with_a_known_name_exits_2(
    grocery: Path, subset_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = grocery / _split_lines(grocery, "train")[0][0]
    code, _, err = _cli(
        [
            "classifier",
            "add-product",
            "--bundle",
            str(subset_bundle),
            "--out",
            str(tmp_path),
            "--name",
            "Bravo-Apple-Juice",
            str(photo),
        ],
        capsys,
    )
    assert code == 2
    assert "'Bravo-Apple-Juice' is already in" in err


def test_embedding_cache_returns_what_was_computed(
    grocery: Path, extractor: Path, tmp_path: Path
) -> None:
    paths = [grocery / p for p, _ in _split_lines(grocery, "val")[:3]]
    embedder = Embedder(extractor)
    cache = EmbeddingCache(tmp_path)
    first = embedder.embed_files(paths[:2], 0.55, cache)
    both = embedder.embed_files(paths, 0.55, cache)  # two from the cache, one computed
    np.testing.assert_array_equal(both[:2], first)
    np.testing.assert_allclose(np.linalg.norm(both, axis=1), 1.0, atol=1e-5)
    assert len(list(tmp_path.glob("emb-*.npz"))) == 1
