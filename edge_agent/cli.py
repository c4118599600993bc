"""``retail-edge``: the store box's command line. Parses arguments, calls the library, prints."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from pydantic import ValidationError

from edge_agent.errors import ConfigError, RetailCVError

if TYPE_CHECKING:
    from edge_agent.config import StoreConfig
    from edge_agent.outbox import Outbox

log = logging.getLogger("edge_agent")


def _cmd_process(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from edge_agent.config import load_config
    from edge_agent.privacy import PrivacySettings
    from edge_agent.process import process_video

    config = load_config(args.config)
    privacy = None
    if args.snapshot_every is not None and (args.export_dir is None or args.snapshot_every <= 0):
        raise ConfigError("--snapshot-every needs --export-dir and a number of seconds > 0")
    face_model = args.face_model or config.privacy.face_model
    if args.export_dir is not None or (args.outbox and face_model is not None):
        try:
            privacy = PrivacySettings(face_model=face_model) if face_model else PrivacySettings()
        except ValidationError as exc:
            raise ConfigError(f"privacy settings: {exc.errors()[0]['msg']}") from None
    camera = config.camera(args.camera) if args.camera else None
    bar = tqdm(desc=args.video.name, unit="frame", disable=args.no_progress, file=sys.stderr)

    def progress(done: int, expected: int | None) -> None:
        bar.total = expected
        bar.update(done - bar.n)

    outbox = _open_outbox(config) if args.outbox else None
    try:
        report = process_video(
            args.video,
            config,
            camera,
            all_frames=args.all_frames,
            tracks_path=args.tracks,
            progress=progress,
            export_dir=args.export_dir,
            snapshot_every_s=args.snapshot_every,
            privacy=privacy,
            outbox=outbox,
            recorded_at=args.recorded_at,
        )
    finally:
        bar.close()
        if outbox is not None:
            outbox.close()
    text = report.model_dump_json(indent=2)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text + "\n")
        print(f"report written to {args.report}", file=sys.stderr)
    else:
        print(text)
    return 0


def _open_outbox(config: StoreConfig) -> Outbox:
    from edge_agent.outbox import Outbox

    o = config.outbox
    return Outbox.open(
        o.path,
        config.device_id,
        config.store_id,
        o.limits(),
        synchronous=o.synchronous,
        reserve_bytes=o.reserve_bytes,
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from common.twin import DesiredState
    from edge_agent.agent import EdgeAgent
    from edge_agent.config import load_config
    from edge_agent.metrics import EdgeMetrics
    from edge_agent.process import open_detector
    from edge_agent.sync.mqtt import MqttTransport
    from edge_agent.sync.session import SyncSession
    from edge_agent.twin.layout_follower import layout_at_start
    from edge_agent.twin.session import open_reconciler
    from edge_agent.watchdog import ServiceNotifier

    config = load_config(args.config)
    layouts = None
    if config.twin is not None and config.twin.enabled:
        # The store layout the hub rolled out last, if one passed its trial here.
        layouts = layout_at_start(config, args.config.parent)
        config = layouts.config
    cameras = [c for c in config.cameras if c.enabled]
    detector = open_detector(config, throughput=True, max_batch=len(cameras))
    with _open_outbox(config) as outbox:
        session = SyncSession(config, outbox) if config.sync is not None else None
        if session is None:
            log.warning("no sync section in %s: records stay in %s", args.config, outbox.path)
        agent = EdgeAgent(
            config,
            detector,
            outbox=outbox,
            on_records=session.notify if session is not None else None,
            notifier=ServiceNotifier.from_environment(),
        )

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %d: stopping", signum)
            agent.request_stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        reconciler = open_reconciler(config, agent, layouts=layouts)
        transport = session.transport if session is not None else None
        if reconciler is not None and isinstance(transport, MqttTransport):
            # The desired state also arrives as the retained MQTT message; polling stays.
            twin = reconciler

            def on_desired(payload: bytes) -> None:
                try:
                    desired = DesiredState.model_validate_json(payload)
                except ValidationError as exc:
                    first = exc.errors()[0]
                    log.error(
                        "desired state over MQTT ignored: not a DesiredState (%s at %s)",
                        first["msg"], ".".join(str(p) for p in first["loc"]) or "top level",
                    )  # fmt: skip
                    return
                log.info("desired state revision %d arrived over MQTT", desired.revision)
                twin.offer(desired)

            transport.set_desired_handler(on_desired)
        metrics = None
        if config.metrics.port is not None:
            metrics = EdgeMetrics(agent.health, agent.stats, outbox.stats)
            metrics.start(config.metrics.port, config.metrics.addr)
        if session is not None:
            session.start()
        try:
            with agent:
                if reconciler is not None:
                    reconciler.start()
                agent.run(duration_s=args.duration)
        finally:
            if reconciler is not None:
                reconciler.stop()
                reconciler.client.close()
            if session is not None:
                # The stop wrote the open buckets' partial rollups: send them now if we can.
                session.stop(drain_s=config.sync.drain_on_stop_s if config.sync else 0.0)
            if metrics is not None:
                metrics.stop()
        stats = agent.stats()
        pending = outbox.stats(time.time()).pending_count
    print(
        json.dumps(
            {
                "frames": stats.frames,
                "cycles": stats.cycles,
                "cameras": [h.camera_id for h in agent.health()],
                "records_appended": agent.records_appended,
                "records_pending": pending,
            }
        )
    )
    return 0


def _cmd_sync(args: argparse.Namespace) -> int:
    from edge_agent.config import load_config
    from edge_agent.sync.session import SyncSession

    config = load_config(args.config)
    with _open_outbox(config) as outbox:
        session = SyncSession(config, outbox)
        try:
            session.open()
            result = session.drain(args.timeout)
        finally:
            session.stop()
        stats = outbox.stats(time.time())
    print(
        json.dumps(
            {
                "sent": result.sent,
                "delivered": result.delivered,
                "duplicates": result.duplicates,
                "dead_lettered": result.dead_lettered,
                "pending": stats.pending_count,
            }
        )
    )
    return 0


def _cmd_enroll(args: argparse.Namespace) -> int:
    from edge_agent.config import load_config
    from edge_agent.sync.enroll import enroll

    config = load_config(args.config)
    sync = config.sync
    hub_url = args.hub or (sync.hub_url if sync is not None else None)
    path = args.out or (sync.credentials_file if sync is not None else None)
    if hub_url is None:
        raise ConfigError("no hub URL: pass --hub URL or set sync.hub_url in the config")
    if path is None:
        raise ConfigError(
            "no place for the credentials: pass --out PATH or set sync.credentials_file"
        )
    token = _enroll_token(args)
    creds = enroll(hub_url, token, config.device_id, path, expected_store=config.store_id)
    print(
        json.dumps(
            {"store_id": creds.store_id, "device_id": creds.device_id, "credentials": str(path)}
        )
    )
    return 0


def _enroll_token(args: argparse.Namespace) -> str:
    """The one-time token from exactly one of --token-file, $RETAIL_EDGE_ENROLL_TOKEN, --token."""
    from edge_agent.settings import EdgeSecrets

    env = EdgeSecrets().enroll_token
    given = [x for x in (args.token_file, env, args.token) if x is not None]
    if len(given) != 1:
        raise ConfigError(
            "give the enrollment token once: --token-file PATH ('-' reads it from stdin), or "
            f"RETAIL_EDGE_ENROLL_TOKEN in the environment, or --token ({len(given)} given)"
        )
    if args.token is not None:
        log.warning(
            "--token shows the token to every local user (process list): prefer --token-file "
            "or RETAIL_EDGE_ENROLL_TOKEN"
        )
        return str(args.token)
    if env is not None:
        return env.get_secret_value()
    if str(args.token_file) == "-":
        text = sys.stdin.readline()
    else:
        try:
            text = Path(args.token_file).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {args.token_file}: {exc}") from None
    token = text.strip()
    if not token:
        raise ConfigError(f"the token file {args.token_file} is empty")
    return token


def _cmd_outbox(args: argparse.Namespace) -> int:
    from edge_agent.config import load_config

    config = load_config(args.config)
    with _open_outbox(config) as outbox:
        stats = outbox.stats(time.time())
    print(json.dumps(dataclasses.asdict(stats), indent=2))
    return 0


def _cmd_detect(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from common.labels import write_labels
    from edge_agent.detect.detector import Detector, DetectorSettings
    from edge_agent.detect.images import detect_images

    for name in ("confidence", "iou"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise ConfigError(f"--{name} must be between 0 and 1, got {getattr(args, name)}")
    if args.all_classes and args.classes:
        raise ConfigError("--class and --all-classes exclude each other")
    classes = None if args.all_classes else tuple(args.classes or ["person"])
    detector = Detector.open(
        args.model,
        manifest=args.manifest,
        settings=DetectorSettings(confidence=args.confidence, iou=args.iou, classes=classes),
    )
    bar = tqdm(desc=args.images.name, unit="image", disable=args.no_progress, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        n = write_labels(args.out, detect_images(detector, args.images, progress))
    finally:
        bar.close()
    print(json.dumps({"images": n, "labels": str(args.out), "model": detector.manifest.name}))
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    from edge_agent.config import load_config

    config = load_config(args.config)
    print(f"{args.config}: OK ({len(config.cameras)} camera(s), store {config.store_id})")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from edge_agent.doctor import Status, run_checks

    results = run_checks(args.config, camera_timeout_s=args.camera_timeout)
    for r in results:
        for line in r.lines():
            print(line)
    failed = [r.name for r in results if r.status is Status.FAIL]
    print(f"{len(failed)} check(s) failed: {', '.join(failed)}" if failed else "all checks passed")
    return 1 if failed else 0


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
    pr.add_argument(
        "--export-dir",
        type=Path,
        help="write every image that would leave the box (alert snapshots, heatmap, samples), "
        "after the privacy gate, into this folder with manifest.jsonl, for audit",
    )
    pr.add_argument(
        "--snapshot-every",
        type=float,
        metavar="S",
        help="with --export-dir: also export a gated sample every S media seconds",
    )
    pr.add_argument(
        "--face-model",
        type=Path,
        help="YuNet face model for the privacy gate (default: $RETAIL_CV_PRIVACY_FACE_MODEL)",
    )
    pr.add_argument(
        "--outbox",
        action="store_true",
        help="append events, rollups and heatmaps to the config's outbox (outbox.path), as the "
        "live agent does; `retail-edge sync` then sends them to the hub",
    )
    pr.add_argument(
        "--recorded-at",
        type=_unix_time,
        metavar="TIME",
        help="when the video's first frame was recorded (ISO 8601 with zone, or UNIX seconds): "
        "the time base of events and rollups (default: the file's modification time)",
    )
    pr.set_defaults(func=_cmd_process)

    ru = sub.add_parser(
        "run",
        help="run the agent continuously on all configured cameras",
        description="Analyse every enabled camera until SIGTERM/Ctrl-C (or --duration). "
        "Events, rollups and heatmaps go to the outbox (outbox.path) and, with a sync section, "
        "to the hub; secrets come from RETAIL_EDGE_MQTT_PASSWORD / RETAIL_EDGE_HUB_TOKEN.",
    )
    ru.add_argument("--config", type=Path, required=True, help="store YAML config")
    ru.add_argument("--duration", type=float, help="stop after this many seconds")
    ru.set_defaults(func=_cmd_run)

    sy = sub.add_parser(
        "sync",
        help="send everything in the outbox to the hub, then exit",
        description="Drain the outbox through the config's sync section (HTTP or MQTT); records "
        "are removed only once the hub acknowledges its commit. Exit code 2 if records are "
        "still pending after --timeout.",
    )
    sy.add_argument("--config", type=Path, required=True, help="store YAML config")
    sy.add_argument(
        "--timeout", type=float, default=300.0, help="give up after this many seconds (300)"
    )
    sy.set_defaults(func=_cmd_sync)

    en = sub.add_parser(
        "enroll",
        help="enroll this box with the hub using a one-time token",
        description="Trade the one-time token from HQ (`retail-hub admin enroll-token`) for "
        "this box's own credentials, written to sync.credentials_file (or --out) readable by "
        "its owner only. The store and device ids come from the config. Give the token with "
        "--token-file, or RETAIL_EDGE_ENROLL_TOKEN in the environment; --token works too but "
        "shows it to every local user in the process list.",
    )
    en.add_argument("--config", type=Path, required=True, help="store YAML config")
    en.add_argument(
        "--token-file", help="file holding the one-time enrollment token ('-': read stdin)"
    )
    en.add_argument("--token", help="the one-time enrollment token (visible in `ps`)")
    en.add_argument("--hub", help="hub base URL (default: sync.hub_url)")
    en.add_argument("--out", type=Path, help="credentials file (default: sync.credentials_file)")
    en.set_defaults(func=_cmd_enroll)

    ob = sub.add_parser("outbox", help="print the outbox's state (pending, oldest, dropped)")
    ob.add_argument("--config", type=Path, required=True, help="store YAML config")
    ob.set_defaults(func=_cmd_outbox)

    de = sub.add_parser(
        "detect",
        help="detect in a folder of images and write labels as JSON lines (pre-labelling)",
        description="Run the edge's detector on every image under --images (recursively) and "
        "write one JSON line per image to --out: boxes in pixels, class names, scores "
        "(common.labels.ImageLabels). `retail-export dataset export` turns these labels into a "
        "YOLO training dataset.",
    )
    de.add_argument("--model", type=Path, required=True, help="detector model (ONNX or IR)")
    de.add_argument(
        "--manifest", type=Path, help="model manifest JSON (default: beside the model or known)"
    )
    de.add_argument("--images", type=Path, required=True, help="folder of images to label")
    de.add_argument("--out", type=Path, required=True, help="labels file to write (.jsonl)")
    de.add_argument(
        "--class",
        dest="classes",
        action="append",
        metavar="NAME",
        help="keep this class (repeatable; default: person)",
    )
    de.add_argument("--all-classes", action="store_true", help="keep every class of the model")
    de.add_argument("--confidence", type=float, default=0.3, help="minimum score kept, 0-1 (0.3)")
    de.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold, 0-1 (0.45)")
    de.add_argument("--no-progress", action="store_true", help="no progress bar")
    de.set_defaults(func=_cmd_detect)

    cc = sub.add_parser("check-config", help="validate a store config and exit")
    cc.add_argument("config", type=Path)
    cc.set_defaults(func=_cmd_check_config)

    dr = sub.add_parser(
        "doctor",
        help="check the box: config, model, cameras, disk, clock, hub, broker",
        description="Run every check a store box needs to work and print PASS, FAIL or SKIP "
        "per check, with what to fix under each FAIL: the config is valid, the model loads "
        "and runs, each camera gives a frame, the outbox disk has room, the clock agrees with "
        "the hub's, the hub accepts this box's credentials, the broker accepts its login. "
        "Exit code 1 if any check failed.",
    )
    dr.add_argument("--config", type=Path, required=True, help="store YAML config")
    dr.add_argument(
        "--camera-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to wait for each camera to connect and give a frame (10)",
    )
    dr.set_defaults(func=_cmd_doctor)

    cs = sub.add_parser("config-schema", help="print the store config JSON schema")
    cs.set_defaults(func=_cmd_config_schema)
    return p


def _unix_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither UNIX seconds nor an ISO 8601 time (2026-11-24T09:00:00+01:00)"
        ) from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone; add one, e.g. +00:00")
    return when.timestamp()


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
