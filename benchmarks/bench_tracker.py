"""Tracker benchmark: our ByteTrack against a SORT-style single-stage tracker on the same boxes.

Sequences (from the shared assets):

- TUD-Campus, TUD-Stadtmitte (25 fps): detections are the boxes of the reference tracker's
  output ``test.txt`` with its ids thrown away (score 1.0); the reference's own scores are shown.
- MOT17-02-FRCNN, MOT17-04-FRCNN (30 fps): public FRCNN ``det.txt`` over the whole sequence,
  scored on the frames that have ground truth (the first 4 / 8).
- Stress copies of TUD: 20 % of detections dropped at random (seed 0: a weaker detector), and
  every 3rd frame only (a camera sampled at 8.3 fps).

Peers: ``sort`` (written here: constant-velocity Kalman, one Hungarian IoU stage at IoU 0.3 on
detections scoring >= 0.5, max_age 1 frame, min_hits 3, as in Bewley et al. 2016);
``bytetrack+reid`` (ours with OSNet appearance, on MOT17 only: the TUD files have no images);
``roboflow-bytetrack`` (roboflow ``trackers``, Apache-2.0) when that package is importable.

Scores: motmetrics MOTA, IDF1, ID switches at IoU >= 0.5. Speed: milliseconds per ``update``
(best of ``--repeat`` runs; best of 2 with the embedding time included for
``bytetrack+reid``).

Run from the repo root:  python benchmarks/bench_tracker.py
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import motmetrics as mm
import numpy as np
import numpy.typing as npt

from edge_agent.detect.detections import Detections
from edge_agent.track import AppearanceEmbedder, ByteTracker, TrackerConfig, kalman
from edge_agent.track.matching import iou_matrix, linear_assignment
from edge_agent.track.mot_io import MotRows, read_mot
from edge_agent.track.tracks import Tracks

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import append_section, assets_dir

ASSETS = assets_dir()
REID_MODEL = ASSETS / "models" / "reid" / "osnet_x0_25_msmt17.onnx"


class SortTracker:
    """SORT-style baseline: every detection above ``score_thresh`` in one IoU Hungarian stage.

    Tracks die after ``max_age`` unmatched frames and are output after ``min_hits`` matches
    (or at once during the first ``min_hits`` frames, as in the SORT reference code).
    """

    def __init__(
        self,
        iou_thresh: float = 0.3,
        max_age: int = 1,
        min_hits: int = 3,
        score_thresh: float = 0.5,
    ) -> None:
        self.iou_thresh = iou_thresh
        self.max_age = max_age
        self.min_hits = min_hits
        self.score_thresh = score_thresh
        self.frame = 0
        self.next_id = 1
        self.mean = np.zeros((0, 8))
        self.cov = np.zeros((0, 8, 8))
        self.ids = np.zeros(0, np.int64)
        self.hits = np.zeros(0, np.int32)
        self.since = np.zeros(0, np.int64)
        self.box = np.zeros((0, 4), np.float32)
        self.score = np.zeros(0, np.float32)

    def update(self, det: Detections) -> Tracks:
        """One frame of detections (pixels) in, tracks matched this frame out."""
        self.frame += 1
        det = det.select(det.confidence >= self.score_thresh)
        if len(self.ids):
            self.mean, self.cov = kalman.predict(self.mean, self.cov)
        cost = 1.0 - iou_matrix(kalman.xyah_to_xyxy(self.mean), det.xyxy)
        m, _, free = linear_assignment(cost, 1.0 - self.iou_thresh)
        t, d = m[:, 0], m[:, 1]
        self.since += 1
        if len(t):
            self.mean[t], self.cov[t] = kalman.update(
                self.mean[t], self.cov[t], kalman.xyxy_to_xyah(det.xyxy[d])
            )
            self.hits[t] += 1
            self.since[t] = 0
            self.box[t] = det.xyxy[d]
            self.score[t] = det.confidence[d]
        keep = self.since < self.max_age
        new_mean, new_cov = kalman.initiate(kalman.xyxy_to_xyah(det.xyxy[free]))
        n = len(free)
        self.mean = np.concatenate([self.mean[keep], new_mean])
        self.cov = np.concatenate([self.cov[keep], new_cov])
        self.ids = np.concatenate([self.ids[keep], np.arange(self.next_id, self.next_id + n)])
        self.next_id += n
        self.hits = np.concatenate([self.hits[keep], np.ones(n, np.int32)])
        self.since = np.concatenate([self.since[keep], np.zeros(n, np.int64)])
        self.box = np.concatenate([self.box[keep], det.xyxy[free]])
        self.score = np.concatenate([self.score[keep], det.confidence[free]])
        out = (self.since == 0) & ((self.hits >= self.min_hits) | (self.frame <= self.min_hits))
        return Tracks(
            self.box[out],
            self.score[out],
            np.zeros(int(out.sum()), np.int32),
            self.ids[out],
            self.hits[out],
        )


@dataclass
class Sequence:
    """Detections to track and ground truth to score against."""

    name: str
    fps: float
    dets: MotRows
    gt: MotRows
    last_frame: int
    images: Path | None = None  # img1/ folder when frames exist
    reference: MotRows | None = None  # the reference tracker's own output


def load_sequences() -> list[Sequence]:
    """TUD (reference tracker boxes as detections) and MOT17-mini (public detections)."""
    seqs = []
    for name in ("TUD-Campus", "TUD-Stadtmitte"):
        folder = ASSETS / "mot" / "motmetrics_data" / name
        gt = read_mot(folder / "gt.txt")
        ref = read_mot(folder / "test.txt")
        dets = MotRows(
            ref.frame,
            np.full(len(ref), -1, np.int64),
            ref.xywh,
            np.ones(len(ref), np.float32),
            ref.class_id,
            ref.visibility,
        )
        last = int(max(gt.frame.max(), ref.frame.max()))
        seqs.append(Sequence(name, 25.0, dets, gt, last, reference=ref))
    for name in ("MOT17-02-FRCNN", "MOT17-04-FRCNN"):
        folder = ASSETS / "mot" / "MOT17-mini" / "train" / name
        dets = read_mot(folder / "det" / "det.txt")
        gt = read_mot(folder / "gt" / "gt.txt").pedestrians()
        # seqinfo.ini's seqLength is wrong for this mini copy: the detections say how long it is.
        seqs.append(Sequence(name, 30.0, dets, gt, int(dets.frame.max()), folder / "img1"))
    return seqs


def stressed(seq: Sequence, *, every: int = 1, drop: float = 0.0, seed: int = 0) -> Sequence:
    """A harder copy of ``seq``: keep every ``every``-th frame (a camera sampled at a lower
    rate, frames renumbered) and drop a random ``drop`` fraction of detections (a weaker
    detector). Ground truth follows the kept frames; the reference output is not kept."""

    def keep_frames(rows: MotRows) -> MotRows:
        kept = rows.select((rows.frame - 1) % every == 0)
        return MotRows(
            (kept.frame - 1) // every + 1,
            kept.track_id,
            kept.xywh,
            kept.confidence,
            kept.class_id,
            kept.visibility,
        )

    dets = keep_frames(seq.dets)
    dets = dets.select(np.random.default_rng(seed).random(len(dets)) >= drop)
    label = (
        seq.name + (f" @1/{every} fps" if every > 1 else "") + (f" drop {drop:.0%}" if drop else "")
    )
    return Sequence(
        label, seq.fps / every, dets, keep_frames(seq.gt), (seq.last_frame - 1) // every + 1
    )


def score(gt: MotRows, hyp: MotRows) -> dict[str, float]:
    """MOTA, IDF1, ID switches over the frames that have ground truth, IoU >= 0.5."""
    acc = mm.MOTAccumulator(auto_id=False)
    for f in np.unique(gt.frame).tolist():
        g = gt.select(gt.frame == f)
        h = hyp.select(hyp.frame == f)
        # motmetrics' iou_matrix uses np.asfarray (gone in numpy 2): call its boxiou directly.
        iou = mm.distances.boxiou(
            g.xywh.astype(np.float64)[:, None], h.xywh.astype(np.float64)[None, :]
        ).reshape(len(g), len(h))
        acc.update(
            g.track_id.tolist(), h.track_id.tolist(), np.where(iou >= 0.5, 1 - iou, np.nan), f
        )
    summary = mm.metrics.create().compute(
        acc, metrics=["mota", "idf1", "num_switches", "num_frames"], name="seq"
    )
    row = summary.iloc[0]
    return {
        "mota": float(row["mota"]),
        "idf1": float(row["idf1"]),
        "idsw": float(row["num_switches"]),
    }


Step = Callable[[Detections, "npt.NDArray[np.uint8] | None"], Tracks]
"""One tracker update: a frame's detections (and image, for appearance) in, tracks out."""


def run(
    make: Callable[[float], Step], seq: Sequence, last: int, repeat: int
) -> tuple[MotRows, float]:
    """Track frames 1..last; returns output rows and best ms per frame over ``repeat`` runs."""
    frames = list(seq.dets.frames(1, last))
    images: list[npt.NDArray[np.uint8] | None] = [None] * len(frames)
    if seq.images is not None and last <= 8:
        folder = seq.images
        images = [np.asarray(cv2.imread(str(folder / f"{f:06d}.jpg")), np.uint8) for f, _ in frames]
    best = float("inf")
    rows = MotRows.concat([])
    for _ in range(repeat):
        step = make(seq.fps)
        outs = []
        start = time.perf_counter()
        for (_, d), img in zip(frames, images, strict=True):
            outs.append(step(d, img))
        best = min(best, (time.perf_counter() - start) / len(frames) * 1000)
        rows = MotRows.concat(
            [MotRows.from_tracks(f, o) for (f, _), o in zip(frames, outs, strict=True)]
        )
    return rows, best


def ours(fps: float) -> Step:
    tracker = ByteTracker(TrackerConfig(), fps)
    return lambda d, _img: tracker.update(d)


def ours_reid(embedder: AppearanceEmbedder) -> Callable[[float], Step]:
    def make(fps: float) -> Step:
        tracker = ByteTracker(TrackerConfig(use_appearance=True), fps, embedder)
        return tracker.update

    return make


def sort(_fps: float) -> Step:
    tracker = SortTracker()
    return lambda d, _img: tracker.update(d)


def roboflow(fps: float) -> Step:
    import supervision as sv
    from trackers import ByteTrackTracker

    tracker = ByteTrackTracker(frame_rate=fps)

    def step(d: Detections, _img: npt.NDArray[np.uint8] | None) -> Tracks:
        out = tracker.update(
            sv.Detections(xyxy=d.xyxy, confidence=d.confidence, class_id=d.class_id)
        )
        ok = out.tracker_id >= 0
        n = int(ok.sum())
        return Tracks(
            out.xyxy[ok].astype(np.float32),
            out.confidence[ok].astype(np.float32),
            np.zeros(n, np.int32),
            out.tracker_id[ok].astype(np.int64),
            np.zeros(n, np.int32),
        )

    return step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="timing runs per tracker (best kept)")
    parser.add_argument("--no-append", action="store_true", help="do not append to BENCHMARKS.md")
    args = parser.parse_args()

    peers: list[tuple[str, Callable[[float], Step]]] = [("bytetrack (ours)", ours), ("sort", sort)]
    note = "roboflow `trackers` not installed: no roboflow row"
    if importlib.util.find_spec("trackers") and importlib.util.find_spec("supervision"):
        peers.append(("roboflow-bytetrack", roboflow))
        version = importlib.metadata.version("trackers")
        note = f"roboflow `trackers` {version} installed beside the project (not a dependency)"
    else:
        print("roboflow `trackers` not importable: its row is skipped")
    embedder = AppearanceEmbedder(REID_MODEL)

    table = []
    base = load_sequences()
    tud = [q for q in base if q.reference is not None]
    stress = [stressed(q, drop=0.2) for q in tud] + [stressed(q, every=3) for q in tud]
    density = {q.name: len(q.dets) / q.last_frame for q in base + stress}
    for seq in base + stress:
        if seq.reference is not None:
            table.append(
                (seq.name, "reference (test.txt ids)", score(seq.gt, seq.reference), float("nan"))
            )
        for name, make in peers:
            rows, ms = run(make, seq, seq.last_frame, args.repeat)
            table.append((seq.name, name, score(seq.gt, rows), ms))
        if seq.images is not None:
            # Only the frames with ground truth have images: run those, score the same frames.
            last = int(seq.gt.frame.max())
            rows, ms = run(ours_reid(embedder), seq, last, 2)
            table.append((seq.name, f"bytetrack+reid (frames 1-{last})", score(seq.gt, rows), ms))

    header = (
        "| sequence | dets/frame | tracker | MOTA | IDF1 | IDSW | ms/frame |\n"
        "|---|---:|---|---:|---:|---:|---:|"
    )
    lines = [
        f"| {s} | {density[s]:.1f} | {t} | {m['mota']:.3f} | {m['idf1']:.3f} | {int(m['idsw'])} | "
        + ("-" if np.isnan(ms) else f"{ms:.3f}")
        + " |"
        for s, t, m, ms in table
    ]
    text = "\n".join([header, *lines])
    print(text)
    if not args.no_append:
        append_section(
            "Tracker (edge_agent/track): ByteTrack vs SORT-style",
            f"- numpy {np.__version__}\n"
            f"- MOTA/IDF1/IDSW by motmetrics at IoU >= 0.5; MOT17 scored on its gt frames only "
            f"(4 / 8) after tracking the whole det.txt; ms/frame = best of {args.repeat} runs\n"
            f"- {note}\n\n{text}",
        )


if __name__ == "__main__":
    main()
