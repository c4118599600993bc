"""``retail-export dataset frames|export`` on real footage: files, index, split, clear errors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from common.labels import ImageLabels, LabelBox, write_labels
from model_export.cli import main
from model_export.dataset.errors import DatasetError
from model_export.dataset.export import export_yolo_dataset, read_summary
from model_export.dataset.frames import FRAMES_INDEX, read_frame_index

ONE_BY_ONE = "videos/one-by-one-person-detection.mp4"  # 768x432, 10 fps
AISLE = "videos/store-aisle-detection.gif"  # 480x270, 16.7 fps, 67 frames
WORKER = "videos/worker-zone-detection.gif"  # 480x270, 16.7 fps, 71 frames


def _cli(args: Sequence[str | Path], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_frames_sampled_at_3_fps_with_near_duplicates_dropped(
    tmp_path: Path, assets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = assets / ONE_BY_ONE
    code, out, err = _cli(
        ["dataset", "frames", video, "--out", tmp_path, "--end", "30", "--no-progress"], capsys
    )
    assert code == 0, err
    (summary,) = json.loads(out)["videos"]
    assert summary["frames_read"] == 300  # 30 s at 10 fps
    assert summary["sampled"] == 90  # 3 fps
    # The first 30 s are mostly an empty room and one person standing: most are duplicates.
    assert 5 < summary["kept"] < 60
    index = read_frame_index(tmp_path)
    assert len(index) == summary["kept"]
    records = sorted(index.values(), key=lambda r: r.frame_index)
    for r in records:
        assert r.video == str(video.resolve())
        assert r.time_s == pytest.approx(r.frame_index / 10.0)
        assert r.frame_index % 10 in (0, 3, 7)  # nearest frames to k/3 s at 10 fps
        image = cv2.imread(str(tmp_path / r.image))
        assert image is not None and image.shape == (432, 768, 3)
    jpgs = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jpg"))
    assert jpgs == sorted(index)

    # Without near-duplicate removal every sampled frame is kept.
    keep_all = tmp_path / "all"
    code, out, _ = _cli(
        ["dataset", "frames", video, "--out", keep_all, "--end", "30", "--min-change", "0"],
        capsys,
    )
    assert code == 0 and json.loads(out)["videos"][0]["kept"] == 90


def test_re_extracting_a_video_replaces_its_frames(
    tmp_path: Path, assets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["dataset", "frames", assets / AISLE, assets / WORKER, "--out", tmp_path]
    assert _cli([*args, "--min-change", "0", "--fps", "6"], capsys)[0] == 0
    assert len(read_frame_index(tmp_path)) > 40
    code, _, err = _cli(
        ["dataset", "frames", assets / AISLE, "--out", tmp_path, "--fps", "1"], capsys
    )
    assert code == 0, err
    index = read_frame_index(tmp_path)
    aisle = [r for r in index.values() if r.video.endswith(AISLE.split("/")[1])]
    worker = [r for r in index.values() if r.video.endswith(WORKER.split("/")[1])]
    assert len(aisle) <= 5 and len(worker) > 20  # the other video's frames are untouched
    on_disk = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jpg")}
    assert on_disk == set(index)


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage" * 5000])
def test_corrupt_video_is_one_clear_line(
    tmp_path: Path, assets: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(content)
    # The good video comes first: nothing is written when any video cannot be read.
    code, out, err = _cli(
        ["dataset", "frames", assets / AISLE, bad, "--out", tmp_path / "f"], capsys
    )
    assert code == 2 and out == ""
    assert err.startswith("error:") and "clip.mp4" in err and err.count("\n") == 1
    assert not (tmp_path / "f" / FRAMES_INDEX).exists()


def test_missing_video_and_bad_settings_are_clear(
    tmp_path: Path, assets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(["dataset", "frames", tmp_path / "nope.mp4", "--out", tmp_path], capsys)
    assert code == 2 and "nope.mp4 not found" in err
    code, _, err = _cli(
        ["dataset", "frames", assets / AISLE, "--out", tmp_path, "--fps", "0"], capsys
    )
    assert code == 2 and "fps" in err


def test_truncated_video_keeps_what_was_read(
    tmp_path: Path, assets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = (assets / ONE_BY_ONE).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(src[: len(src) // 2])
    code, out, err = _cli(["dataset", "frames", cut, "--out", tmp_path / "f"], capsys)
    # Either the container is unreadable without its tail (clear error) or the first part
    # is kept and the summary says the file ended early. Never a traceback.
    if code == 0:
        (summary,) = json.loads(out)["videos"]
        assert summary["ended_early"] is True and 0 < summary["frames_read"] < 1394
    else:
        assert code == 2 and "cut.mp4" in err and "Traceback" not in err


def test_two_videos_with_one_name_are_refused(
    tmp_path: Path, assets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "elsewhere" / "store-aisle-detection.gif"
    other.parent.mkdir()
    other.write_bytes((assets / AISLE).read_bytes())
    code, _, err = _cli(
        ["dataset", "frames", assets / AISLE, other, "--out", tmp_path / "f"], capsys
    )
    assert code == 2 and "same name 'store-aisle-detection'" in err
    assert not (tmp_path / "f" / FRAMES_INDEX).exists()


@pytest.fixture(scope="module")
def frames_dir(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Frames of the two store GIFs, every sampled frame kept, plus two still photos."""
    out = tmp_path_factory.mktemp("frames")
    videos = [str(assets / AISLE), str(assets / WORKER)]
    args = ["dataset", "frames", *videos, "--out", str(out), "--min-change", "0", "--no-progress"]
    assert main(args) == 0
    stills = out / "shelf-photos"
    stills.mkdir()
    for i in range(2):
        cv2.imwrite(str(stills / f"photo{i}.jpg"), np.full((200, 300, 3), 60 * i, np.uint8))
    return out


def _labels(frames_dir: Path) -> list[ImageLabels]:
    """Hand-made labels over every image: varied boxes, a second class, a box off the edge."""
    images = sorted(p.relative_to(frames_dir).as_posix() for p in frames_dir.rglob("*.jpg"))
    out = []
    for n, rel in enumerate(images):
        h, w = cv2.imread(str(frames_dir / rel)).shape[:2]
        boxes = [
            LabelBox(xyxy=(10.0 + n, 20.0, 60.0 + n, 120.0), class_name="person", score=0.9),
            LabelBox(xyxy=(w - 30.0, h - 40.0, w + 25.0, h + 5.0), class_name="person", score=0.4),
        ]
        if n % 3 == 0:
            boxes.append(LabelBox(xyxy=(5.0, 5.0, 25.0, 45.0), class_name="bottle", score=0.8))
        if n % 5 == 0:
            boxes = []  # a background image
        out.append(ImageLabels(image=rel, width=w, height=h, source="test", boxes=boxes))
    return out


def _read_rows(path: Path) -> np.ndarray:
    text = path.read_text().split()
    return np.array([float(v) for v in text], np.float64).reshape(-1, 5)


def test_export_writes_a_yolo_dataset_consistent_with_the_labels(
    frames_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = _labels(frames_dir)
    labels_path = tmp_path / "labels.jsonl"
    write_labels(labels_path, labels)
    out = tmp_path / "ds"
    export = ["dataset", "export", "--images", frames_dir, "--labels", labels_path, "--out", out]
    filters = ["--class", "person", "--min-score", "0.5"]
    code, stdout, err = _cli([*export, *filters], capsys)
    assert code == 0, err
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data == {
        "path": str(out.resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": {0: "person"},
    }
    summary = read_summary(out)
    by_source = {e.source: e for e in summary.images}
    assert set(by_source) == {item.image for item in labels}
    for item in labels:
        entry = by_source[item.image]
        image = out / entry.image
        assert image.read_bytes() == (frames_dir / item.image).read_bytes()
        rows = _read_rows(out / "labels" / entry.split / f"{image.stem}.txt")
        kept = [b for b in item.boxes if b.class_name == "person" and b.score >= 0.5]
        assert len(rows) == len(kept) == entry.boxes
        for row, box in zip(rows, kept, strict=True):
            x1, y1, x2, y2 = box.xyxy
            w, h = item.width, item.height
            assert row[0] == 0
            assert row[1:] == pytest.approx(
                [(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h], abs=2e-6
            )
    # Every image of a scene sits on its scene's side; both sides are used.
    for e in summary.images:
        assert e.split == summary.scenes[e.scene]
    assert set(summary.scenes.values()) == {"train", "val"}
    assert sorted(k.split(":", 1)[0] for k in summary.scenes) == ["folder", "video", "video"]
    for side in ("train", "val"):
        listed = sorted(Path(e.image).name for e in summary.images if e.split == side)
        assert sorted(p.name for p in (out / "images" / side).iterdir()) == listed
        assert summary.counts[side].images == len(listed)
    assert json.loads(stdout)["counts"] == {k: v.model_dump() for k, v in summary.counts.items()}
    person = sum(1 for i in labels for b in i.boxes if b.class_name == "person" and b.score >= 0.5)
    assert summary.counts["train"].boxes + summary.counts["val"].boxes == person
    assert summary.dropped_boxes == sum(len(i.boxes) for i in labels) - person


def test_export_default_classes_clip_boxes_and_replace_an_old_dataset(
    frames_dir: Path, tmp_path: Path
) -> None:
    labels = _labels(frames_dir)
    labels_path = tmp_path / "labels.jsonl"
    write_labels(labels_path, labels)
    out = tmp_path / "ds"
    first = export_yolo_dataset(frames_dir, labels_path, out, seed=1)
    again = export_yolo_dataset(frames_dir, labels_path, out, seed=2)  # replaces the first
    assert first.classes == again.classes == ["bottle", "person"]
    assert first.dropped_boxes == 0
    written = {p.name for p in out.rglob("*.jpg")}
    assert written == {Path(e.image).name for e in again.images}
    for e in again.images:
        rows = _read_rows(out / "labels" / e.split / f"{Path(e.image).stem}.txt")
        assert ((rows[:, 1:] >= 0) & (rows[:, 1:] <= 1)).all()  # the off-edge box is clipped


def test_export_refuses_what_it_cannot_split_or_trust(frames_dir: Path, tmp_path: Path) -> None:
    labels = _labels(frames_dir)
    one_video = [i for i in labels if i.image.startswith("store-aisle-detection/")]
    path = tmp_path / "one.jsonl"
    write_labels(path, one_video)
    with pytest.raises(DatasetError, match="at least 2 videos or scenes"):
        export_yolo_dataset(frames_dir, path, tmp_path / "a")

    wrong = [labels[0].model_copy(update={"width": 999}), *labels[1:]]
    write_labels(path, wrong)
    with pytest.raises(DatasetError, match="labels belong to another image"):
        export_yolo_dataset(frames_dir, path, tmp_path / "b")
    assert not (tmp_path / "b").exists()  # checked before anything is written

    missing = [*labels, labels[0].model_copy(update={"image": "gone/nothing.jpg"})]
    write_labels(path, missing)
    with pytest.raises(DatasetError, match="does not exist"):
        export_yolo_dataset(frames_dir, path, tmp_path / "c")

    path.write_text('{"image": "x.jpg"}\n')
    with pytest.raises(DatasetError, match=r"one\.jsonl:1"):
        export_yolo_dataset(frames_dir, path, tmp_path / "d")

    write_labels(path, labels)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        export_yolo_dataset(frames_dir, path, occupied)
    assert (occupied / "notes.txt").read_text() == "mine"


def test_dataset_help_explains_the_steps(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["dataset", "--help"])
    out = capsys.readouterr().out
    for step in ("dataset frames", "retail-edge detect", "dataset export", "yolo train"):
        assert step in out
