"""``retail-edge``: the store box's command line. Parses arguments, calls the library, prints."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from edge_agent.errors import RetailCVError

log = logging.getLogger("edge_agent")


def _cmd_process(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from edge_agent.config import load_config
    from edge_agent.process import process_video

    config = load_config(args.config)
    camera = config.camera(args.camera) if args.camera else None
    bar = tqdm(desc=args.video.name, unit="frame", disable=args.no_progress, file=sys.stderr)

    def progress(done: int, expected: int | None) -> None:
        bar.total = expected
        bar.update(done - bar.n)

    try:
        report = process_video(
            args.video,
            config,
            camera,
            all_frames=args.all_frames,
            tracks_path=args.tracks,
            progress=progress,
        )
    finally:
        bar.close()
    text = report.model_dump_json(indent=2)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text + "\n")
        print(f"report written to {args.report}", file=sys.stderr)
    else:
        print(text)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from edge_agent.agent import EdgeAgent
    from edge_agent.config import load_config
    from edge_agent.process import open_detector

    config = load_config(args.config)
    cameras = [c for c in config.cameras if c.enabled]
    detector = open_detector(config, throughput=True, max_batch=len(cameras))
    agent = EdgeAgent(config, detector)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        agent.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with agent:
        agent.run(duration_s=args.duration)
    stats = agent.stats()
    print(
        json.dumps(
            {
                "frames": stats.frames,
                "cycles": stats.cycles,
                "cameras": [h.camera_id for h in agent.health()],
            }
        )
    )
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    from edge_agent.config import load_config

    config = load_config(args.config)
    print(f"{args.config}: OK ({len(config.cameras)} camera(s), store {config.store_id})")
    return 0


def _cmd_config_schema(_args: argparse.Namespace) -> int:
    from edge_agent.config import config_json_schema

    print(json.dumps(config_json_schema(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to render --help in the docs)."""
    p = argparse.ArgumentParser(
        prog="retail-edge",
        description="Retail CV edge agent: people detection, tracking and store analytics on "
        "the store box.",
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    sub = p.add_subparsers(dest="command", required=True)

    pr = sub.add_parser(
        "process",
        help="process a recorded video file and write a JSON report",
        description="Run the whole pipeline on one video file. By default frames are sampled "
        "to the camera's fps by media time; --all-frames analyses every frame.",
    )
    pr.add_argument("video", type=Path, help="video file (mp4, avi, gif, .264, ...)")
    pr.add_argument("--config", type=Path, required=True, help="store YAML config")
    pr.add_argument("--camera", help="camera id whose lines/zones apply (default: the first)")
    pr.add_argument("--report", type=Path, help="write the JSON report here (default: stdout)")
    pr.add_argument("--tracks", type=Path, help="also write MOTChallenge-format tracks here")
    pr.add_argument("--all-frames", action="store_true", help="analyse every frame")
    pr.add_argument("--no-progress", action="store_true", help="no progress bar")
    pr.set_defaults(func=_cmd_process)

    ru = sub.add_parser("run", help="run the agent continuously on all configured cameras")
    ru.add_argument("--config", type=Path, required=True, help="store YAML config")
    ru.add_argument("--duration", type=float, help="stop after this many seconds")
    ru.set_defaults(func=_cmd_run)

    cc = sub.add_parser("check-config", help="validate a store config and exit")
    cc.add_argument("config", type=Path)
    cc.set_defaults(func=_cmd_check_config)

    cs = sub.add_parser("config-schema", help="print the store config JSON schema")
    cs.set_defaults(func=_cmd_config_schema)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the process exit code (2 for a user-facing error)."""
    args = build_parser().parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    if args.verbose < 2:
        # FFmpeg and OpenCV print their own warnings straight to stderr; our errors already
        # say what failed. Set before cv2 is first imported (commands import it lazily).
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except RetailCVError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
