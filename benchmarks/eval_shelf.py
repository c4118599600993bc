"""Shelf stock timeline against hand-annotated ground truth, on real footage.

    python benchmarks/eval_shelf.py [--no-append]

`bottle-detection.mp4` (640x360, 29.8 fps, 40 s) shows three water bottles on a table taken
away and put back; `examples/bottle-shelf.yaml` makes the table a shelf of three slots. The real
pipeline (`process_video`: YOLOX-nano, occlusion skip, debounced slots, alert rules) runs on
the video; each slot's state changes are matched to `tests/data/bottle-shelf-gt.csv` (how it was
made: `tests/data/bottle-shelf-gt.md`). Reported per change: the error of `since` (when the
pipeline first saw the new state) and of the confirmation (since + hold); and the alerts raised
against the low-stock and out-of-stock periods the ground truth implies.

Peers in the same run (ablations of the same pipeline): every frame instead of 10 fps, no
occlusion skip (person boxes ignored), and no hold time (hold_s = 0).

`tests/edge_agent/test_shelf_video.py` runs `evaluate` on the configured pipeline and asserts
the result.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, append_section, assets_dir

sys.path.insert(0, str(REPO))
from edge_agent.config import CameraConfig, StoreConfig, load_config
from edge_agent.process import ProcessReport, process_video

CONFIG = REPO / "examples/bottle-shelf.yaml"
GT_CSV = REPO / "tests/data/bottle-shelf-gt.csv"
VIDEO = "videos/bottle-detection.mp4"
SHELF = "water"
# A detected change matches a ground-truth change of the same slot and state when its `since`
# (first sighting) is within this many seconds. The pipeline cannot see a change while the arm
# hides the shelf: the longest the hand stays in view after a change is 44 frames = 1.47 s
# (middle put back at frame 688, hand gone at 732); plus one analysed frame at 10 fps. It may
# also see a put-back early, while the bottle hovers inside its slot before touching down
# (less than 1 s here). See tests/data/bottle-shelf-gt.md.
TOLERANCE_S = 1.6


@dataclass(frozen=True)
class GtChange:
    """A ground-truth slot state change (media seconds)."""

    slot: str
    state: str
    t_s: float
    uncertainty_s: float


@dataclass(frozen=True)
class Matched:
    """A ground-truth change and the detected one matched to it (None: missed)."""

    gt: GtChange
    since_s: float | None
    at_s: float | None

    @property
    def error_s(self) -> float | None:
        """Detected since minus ground truth (s); negative: seen before the annotated frame."""
        return None if self.since_s is None else self.since_s - self.gt.t_s

    @property
    def delay_s(self) -> float | None:
        """Confirmation (since + hold) minus ground truth (s)."""
        return None if self.at_s is None else self.at_s - self.gt.t_s


@dataclass
class AlertScore:
    """One alert rule: ground-truth periods, raises matched to them, false raises."""

    rule: str
    periods: list[tuple[float, float]]
    raises: list[tuple[float, float | None]]
    matched: list[tuple[tuple[float, float], float, float | None]] = field(default_factory=list)
    false: list[float] = field(default_factory=list)


@dataclass
class Evaluation:
    """The whole comparison of one run."""

    initial_ok: bool
    changes: list[Matched]
    false_changes: list[tuple[str, str, float]]
    alerts: dict[str, AlertScore]
    occluded_frames: int
    frames: int
    wall_s: float

    @property
    def missed(self) -> list[GtChange]:
        """Ground-truth changes without a detected match."""
        return [m.gt for m in self.changes if m.since_s is None]

    @property
    def abs_errors(self) -> list[float]:
        """|since error| of the matched changes (s)."""
        return [abs(m.error_s) for m in self.changes if m.error_s is not None]


def read_gt(path: Path = GT_CSV) -> tuple[dict[str, str], list[GtChange]]:
    """Initial state per slot, and the changes after frame 0 in time order."""
    initial: dict[str, str] = {}
    changes: list[GtChange] = []
    with path.open() as f:
        for row in csv.DictReader(f):
            t = float(row["time_s"])
            if int(row["frame"]) == 0:
                initial[row["slot"]] = row["state"]
                continue
            fps = int(row["frame"]) / t
            changes.append(
                GtChange(row["slot"], row["state"], t, int(row["uncertainty_frames"]) / fps)
            )
    return initial, sorted(changes, key=lambda c: c.t_s)


def gt_periods(
    initial: dict[str, str], changes: Sequence[GtChange], below: float, end_s: float
) -> dict[str, list[tuple[float, float]]]:
    """Ground-truth ``low_stock`` (level < below) and ``out_of_stock`` (level 0) periods."""
    state = dict(initial)
    out: dict[str, list[tuple[float, float]]] = {"low_stock": [], "out_of_stock": []}
    open_at: dict[str, float | None] = {"low_stock": None, "out_of_stock": None}
    times = [(0.0, None)] + [(c.t_s, c) for c in changes] + [(end_s, None)]
    for t, c in times:
        if c is not None:
            state[c.slot] = c.state
        level = sum(s == "stocked" for s in state.values()) / len(state)
        for rule, on in (("low_stock", level < below), ("out_of_stock", level <= 0)):
            start = open_at[rule]
            if on and start is None and t < end_s:
                open_at[rule] = t
            elif start is not None and (not on or t >= end_s):
                out[rule].append((start, t))
                open_at[rule] = None
    return out


def evaluate(
    report: ProcessReport, hold_s: float, below: float, tolerance_s: float = TOLERANCE_S
) -> Evaluation:
    """Compare a ``process_video`` report of the bottle shelf with the ground truth."""
    initial, gt = read_gt()
    shelf = report.shelves[SHELF]
    detected = [c for c in shelf["changes"] if c["what"] == "state"]
    first: dict[str, dict[str, object]] = {}
    later = []
    for c in detected:
        if c["slot"] not in first:
            first[c["slot"]] = c  # unknown -> first held state
        else:
            later.append(c)
    initial_ok = {s: str(c["value"]) for s, c in first.items()} == initial
    used: set[int] = set()
    matched = []
    for g in gt:
        best = None
        for i, c in enumerate(later):
            if i in used or c["slot"] != g.slot or c["value"] != g.state:
                continue
            err = abs(float(c["since_s"]) - g.t_s)
            if err <= tolerance_s and (best is None or err < best[1]):
                best = (i, err)
        if best is None:
            matched.append(Matched(g, None, None))
        else:
            used.add(best[0])
            c = later[best[0]]
            matched.append(Matched(g, float(c["since_s"]), float(c["at_s"])))
    false_changes = [
        (str(c["slot"]), str(c["value"]), float(c["since_s"]))
        for i, c in enumerate(later)
        if i not in used
    ]
    periods = gt_periods(initial, gt, below, report.duration_s)
    alerts = {}
    for rule, spans in periods.items():
        raises = [
            (float(a["raised_at_s"]), a["cleared_at_s"])
            for a in report.alerts
            if a["rule"] == f"{SHELF}.{rule}"
        ]
        score = AlertScore(rule, spans, raises)
        free = list(spans)
        for raised, cleared in raises:
            hit = next(
                (p for p in free if p[0] - tolerance_s <= raised <= p[1] + hold_s + tolerance_s),
                None,
            )
            if hit is None:
                score.false.append(raised)
            else:
                free.remove(hit)
                score.matched.append((hit, raised, None if cleared is None else float(cleared)))
        alerts[rule] = score
    return Evaluation(
        initial_ok=initial_ok,
        changes=matched,
        false_changes=false_changes,
        alerts=alerts,
        occluded_frames=int(shelf["occluded_frames"]),
        frames=int(shelf["frames"]),
        wall_s=report.wall_s,
    )


def run(
    config: StoreConfig, camera: CameraConfig | None = None, all_frames: bool = False
) -> ProcessReport:
    """The real pipeline on the bottle video (media time from 0)."""
    video = assets_dir() / VIDEO
    return process_video(video, config, camera, all_frames=all_frames, recorded_at=0.0)


def _variant(config: StoreConfig, **shelf_update: object) -> CameraConfig:
    cam = config.cameras[0]
    zones = []
    for z in cam.zones:
        if z.shelf is None:
            zones.append(z)
        else:
            zones.append(z.model_copy(update={"shelf": z.shelf.model_copy(update=shelf_update)}))
    return cam.model_copy(update={"zones": zones})


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:+.2f}"


def timeline_table(ev: Evaluation) -> str:
    """Markdown table: each ground-truth change and what the pipeline made of it."""
    rows = [
        "| slot | change | GT s (±) | seen (since) s | error s | confirmed s | delay s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for m in ev.changes:
        g = m.gt
        since = "missed" if m.since_s is None else f"{m.since_s:.2f}"
        at = "-" if m.at_s is None else f"{m.at_s:.2f}"
        rows.append(
            f"| {g.slot} | {g.state} | {g.t_s:.2f} (±{g.uncertainty_s:.2f}) | {since} | "
            f"{_fmt(m.error_s)} | {at} | {_fmt(m.delay_s)} |"
        )
    return "\n".join(rows)


def alerts_table(ev: Evaluation) -> str:
    """Markdown table: ground-truth alert periods and the raises matched to them."""
    rows = ["| rule | GT period s | raised s | cleared s |", "|---|---|---:|---:|"]
    for rule, a in ev.alerts.items():
        for (start, end), raised, cleared in a.matched:
            c = "-" if cleared is None else f"{cleared:.2f}"
            rows.append(f"| {rule} | {start:.2f}-{end:.2f} | {raised:.2f} | {c} |")
        matched = {p for p, _, _ in a.matched}
        for p in a.periods:
            if p not in matched:
                rows.append(f"| {rule} | {p[0]:.2f}-{p[1]:.2f} | missed | - |")
        for t in a.false:
            rows.append(f"| {rule} | (none) | {t:.2f} (false) | - |")
    return "\n".join(rows)


def summary_row(name: str, ev: Evaluation) -> str:
    """One line of the comparison table."""
    errs = ev.abs_errors
    mean = sum(errs) / len(errs) if errs else float("nan")
    worst = max(errs) if errs else float("nan")
    fa = {r: len(a.false) for r, a in ev.alerts.items()}
    return (
        f"| {name} | {len(ev.changes) - len(ev.missed)}/{len(ev.changes)} | "
        f"{len(ev.false_changes)} | {mean:.2f} | {worst:.2f} | {fa['low_stock']} | "
        f"{fa['out_of_stock']} | {ev.occluded_frames}/{ev.frames} | {ev.wall_s:.1f} |"
    )


def main() -> None:
    """Run the configured pipeline and its peers, print the tables, append to BENCHMARKS.md."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-append", action="store_true", help="print only")
    args = ap.parse_args()
    config = load_config(CONFIG)
    shelf = config.cameras[0].zones[0].shelf
    assert shelf is not None
    hold, below = shelf.hold_s, shelf.low_stock_below
    base = evaluate(run(config), hold, below)
    runs = [
        (f"configured ({config.cameras[0].fps:g} fps, hold {hold:g} s, occlusion skip)", base),
        ("every frame (29.8 fps)", evaluate(run(config, all_frames=True), hold, below)),
    ]
    no_occ = _variant(
        config, occlusion=shelf.occlusion.model_copy(update={"person_confidence": 1.0})
    )
    runs.append(("no occlusion skip", evaluate(run(config, no_occ), hold, below)))
    runs.append(
        ("no hold (hold_s 0)", evaluate(run(config, _variant(config, hold_s=0.0)), 0.0, below))
    )
    table = "\n".join(
        [
            "| run | GT changes found | false changes | mean abs error s | max abs error s | "
            "false low-stock | false out-of-stock | occluded frames | wall s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            *(summary_row(name, ev) for name, ev in runs),
        ]
    )
    body = (
        f"`examples/bottle-shelf.yaml` on `{VIDEO}` (three slots, product class `bottle`, "
        f"low_stock_below {below:g}); ground truth `tests/data/bottle-shelf-gt.csv` "
        f"(8 changes, annotated by hand); a change matches within {TOLERANCE_S:g} s.\n\n"
        f"Configured run, each ground-truth change (error = when the pipeline first saw the new "
        f"state minus the annotated frame; confirmed = after the {hold:g} s hold):\n\n"
        f"{timeline_table(base)}\n\nAlerts of the configured run against the ground-truth "
        f"periods:\n\n{alerts_table(base)}\n\nInitial states right: {base.initial_ok}. "
        f"Peers (same pipeline, one setting changed):\n\n{table}\n"
    )
    if args.no_append:
        print(body)
    else:
        append_section("Shelf stock timeline on bottle-detection.mp4", body)


if __name__ == "__main__":
    main()
