"""The whole pipeline on real footage against hand-made ground truth (tests/data/*/HOW.md)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from edge_agent.config import load_config
from edge_agent.process import ProcessReport, process_video

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def one_by_one(assets: Path) -> tuple[ProcessReport, dict[str, object]]:
    cfg = load_config(DATA / "one_by_one/store.yaml")
    video = assets / "videos/one-by-one-person-detection.mp4"
    report = process_video(video, cfg, all_frames=True)
    truth = json.loads((DATA / "one_by_one/ground_truth.json").read_text())
    return report, truth


def test_people_entering_are_counted_exactly(
    one_by_one: tuple[ProcessReport, dict[str, object]],
) -> None:
    report, truth = one_by_one
    assert report.lines["entry"]["in"] == truth["lines"]["entry"]["in"] == 6  # type: ignore[index]
    assert report.people == len(truth["people"])  # type: ignore[arg-type]


def test_display_visits_and_dwell_within_two_seconds(
    one_by_one: tuple[ProcessReport, dict[str, object]],
) -> None:
    report, truth = one_by_one
    visits = truth["zones"]["display"]["visits"]  # type: ignore[index]
    zone = report.zones["display"]
    assert zone["visits"] == len(visits) == 6
    errors = np.abs(np.asarray(zone["dwell_s"]) - [v["dwell_s"] for v in visits])
    assert errors.max() <= 2.0, errors


def test_nobody_walks_out_through_the_entry(
    one_by_one: tuple[ProcessReport, dict[str, object]],
) -> None:
    # Regression: a one-frame box glitch at t = 68.4 s (person 3 turning to leave) put the feet
    # past the line's hysteresis band and counted a false "out" before lines needed two
    # confirming frames to flip sides.
    report, truth = one_by_one
    assert report.lines["entry"]["out"] == truth["lines"]["entry"]["out"] == 0  # type: ignore[index]


def test_people_per_frame_in_the_store_aisle(assets: Path, tmp_path: Path) -> None:
    """Tracks per frame against hand counts, on frames the annotator marked unambiguous."""
    cfg = load_config(DATA / "one_by_one/store.yaml")
    tracks = tmp_path / "tracks.txt"
    process_video(
        assets / "videos/store-aisle-detection.gif", cfg, all_frames=True, tracks_path=tracks
    )
    rows = np.loadtxt(tracks, delimiter=",", usecols=0, ndmin=1).astype(int)
    ours = np.bincount(rows, minlength=68)[1:68]
    with (DATA / "store_aisle/people_per_frame.csv").open() as f:
        truth = [(int(r["frame"]), int(r["people"]), r["note"]) for r in csv.DictReader(f)]
    clear = [(i, n) for i, n, note in truth if not note.startswith("ambiguous")]
    # The tracker needs a couple of frames to confirm a track; skip the first two frames.
    scored = [(i, n) for i, n in clear if i >= 2]
    exact = np.mean([ours[i] == n for i, n in scored])
    off_by_more_than_one = sum(abs(int(ours[i]) - n) > 1 for i, n in scored)
    assert exact >= 0.88, (exact, ours.tolist())  # measured 0.918 (45 of 49 frames)
    assert off_by_more_than_one == 0
