"""MOTChallenge file reading and writing, checked against the real files' text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_agent.track.mot_io import MotRows, read_mot, write_mot
from edge_agent.track.tracks import Tracks

MOT17_02 = ("mot", "MOT17-mini", "train", "MOT17-02-FRCNN")


def test_reads_public_detections_as_written(assets: Path) -> None:
    path = assets.joinpath(*MOT17_02, "det", "det.txt")
    lines = path.read_text().split()
    rows = read_mot(path)
    assert len(rows) == len(lines)
    # The file's first line, parsed by hand: frame 69, x 912.8, y 482.9, w 97.6, h 112.6, score 1.
    assert lines[0] == "69,-1,912.8,482.9,97.6,112.6,1"
    assert rows.frame[0] == 69 and rows.track_id[0] == -1
    np.testing.assert_allclose(rows.xywh[0], [912.8, 482.9, 97.6, 112.6], rtol=1e-6)
    np.testing.assert_allclose(rows.xyxy[0], [912.8, 482.9, 1010.4, 595.5], rtol=1e-6)
    assert rows.class_id[0] == -1  # 7-column det file: no class column


def test_frames_groups_unsorted_rows_and_fills_gaps(assets: Path) -> None:
    rows = read_mot(assets.joinpath(*MOT17_02, "det", "det.txt"))
    lines = [
        ln.split(",") for ln in assets.joinpath(*MOT17_02, "det", "det.txt").read_text().split()
    ]
    per_frame = dict(rows.frames(1, 605))
    assert sorted(per_frame) == list(range(1, 606))
    for f in (1, 69, 600):
        expected = sorted(float(ln[2]) for ln in lines if int(ln[0]) == f)
        assert sorted(per_frame[f].xyxy[:, 0].tolist()) == pytest.approx(expected)
    assert len(per_frame[605]) == 0  # past the end: an empty frame, not an error


def test_ground_truth_pedestrians_filter(assets: Path) -> None:
    path = assets.joinpath(*MOT17_02, "gt", "gt.txt")
    fields = [ln.split(",") for ln in path.read_text().split()]
    wanted = [f for f in fields if f[6] == "1" and f[7] == "1"]
    people = read_mot(path).pedestrians()
    assert len(people) == len(wanted) == 88  # 22 people in each of the 4 annotated frames
    assert sorted(people.track_id.tolist()) == sorted(int(f[1]) for f in wanted)


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    tracks = Tracks(
        xyxy=np.array([[10, 20, 40, 100], [5.5, 6.25, 15.5, 26.25]], np.float32),
        confidence=np.array([0.9, 0.5], np.float32),
        class_id=np.zeros(2, np.int32),
        track_id=np.array([7, 3], np.int64),
        hits=np.array([4, 1], np.int32),
    )
    out = tmp_path / "out.txt"
    write_mot(out, MotRows.concat([MotRows.from_tracks(2, tracks), MotRows.from_tracks(1, tracks)]))
    text = out.read_text().splitlines()
    # Sorted by frame then id; top-left + size in pixels; MOTChallenge's -1 padding.
    assert text[0] == "1,3,5.50,6.25,10.00,20.00,0.5,-1,-1,-1"
    assert text[1] == "1,7,10.00,20.00,30.00,80.00,0.9,-1,-1,-1"
    back = read_mot(out)
    assert back.frame.tolist() == [1, 1, 2, 2]
    np.testing.assert_allclose(back.xyxy[1], [10, 20, 40, 100])


def test_malformed_file_names_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "det.txt"
    bad.write_text("1,-1,1,2,3,4,0.9\n2,-1,1,2,3\n")
    with pytest.raises(ValueError, match=r"det\.txt: line 2"):
        read_mot(bad)
    bad.write_text("1,-1,1,2,3,x,0.9\n")
    with pytest.raises(ValueError, match="non-numeric"):
        read_mot(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert len(read_mot(empty)) == 0
