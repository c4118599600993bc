"""``retail-hub``: the HQ hub's command line. Parses arguments, calls the library, prints.

Settings come from the environment (``DATABASE_URL``, ``RETAIL_HUB_*``; see
``cloud_hub/core/config.py``); options given here override them. A user-facing error prints one
line ``error: ...`` on stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from cloud_hub.core.config import HubSettings, configure_logging

log = logging.getLogger("cloud_hub")
APP_FACTORY = "cloud_hub.main:create_app_from_env"  # what `serve --workers N` processes run

ENV_HELP = (
    "Settings come from the environment: DATABASE_URL (default sqlite:///./hub.db; "
    "postgresql+psycopg://user:pass@host/db for PostgreSQL) and RETAIL_HUB_* (MQTT_HOST, "
    "MQTT_PORT, MQTT_USERNAME, MQTT_PASSWORD, MQTT_TLS_CA_FILE, MQTT_TLS_CERT_FILE, "
    "MQTT_TLS_KEY_FILE, WORKER_NAME, MAX_BODY_BYTES, LOG_LEVEL, ...)."
)


class UsageError(Exception):
    """A command line or setting the user must fix; printed as one ``error:`` line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _cmd_serve(args: argparse.Namespace, settings: HubSettings) -> int:
    import uvicorn

    from cloud_hub.db import create_hub_engine
    from cloud_hub.main import create_app
    from cloud_hub.migrate import SchemaOutOfDateError, check_schema_current

    engine = create_hub_engine(settings.database_url, pool_size=1)
    try:
        check_schema_current(engine)
    except SchemaOutOfDateError as exc:
        raise UsageError(str(exc)) from None
    except OperationalError as exc:  # the API starts anyway; /api/v1/health reports it
        log.warning("database unreachable at start: %s", _one_line(exc.orig))
    finally:
        engine.dispose()
    if args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    options = {
        "host": args.host,
        "port": args.port,
        "log_level": settings.log_level.lower(),
        "timeout_graceful_shutdown": 10,
    }
    if args.workers == 1:
        uvicorn.run(create_app(settings), **options)
        return 0
    # Worker processes build their own app from the environment: hand them what the command
    # line changed, and one folder where their /metrics counters add up.
    os.environ["DATABASE_URL"] = settings.database_url
    with tempfile.TemporaryDirectory(prefix="retail-hub-metrics-") as metrics_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        uvicorn.run(APP_FACTORY, factory=True, workers=args.workers, **options)
    return 0


def _cmd_migrate(args: argparse.Namespace, settings: HubSettings) -> int:
    from cloud_hub.migrate import upgrade_database

    try:
        upgrade_database(settings.database_url, args.revision)
    except OperationalError as exc:
        raise UsageError(f"cannot reach the database: {_one_line(exc.orig)}") from None
    print(f"database migrated to {args.revision}", file=sys.stderr)
    return 0


def _cmd_retention(args: argparse.Namespace, settings: HubSettings) -> int:
    import time

    from cloud_hub.db import create_hub_engine
    from cloud_hub.services.rollups_hourly import prune_expired_rollups
    from cloud_hub.services.snapshots import delete_expired_snapshots

    days = settings.snapshot_retention_days if args.snapshot_days is None else args.snapshot_days
    if days <= 0:
        raise UsageError(f"--snapshot-days must be > 0, got {days}")
    engine = create_hub_engine(settings.database_url, pool_size=1)
    try:
        with engine.begin() as conn:
            deleted = delete_expired_snapshots(conn, days * 86400.0, time.time())
            rollups = prune_expired_rollups(conn, settings.rollup_retention_days, time.time())
    except OperationalError as exc:
        raise UsageError(f"cannot reach the database: {_one_line(exc.orig)}") from None
    finally:
        engine.dispose()
    print(
        json.dumps(
            {
                "snapshots_deleted": deleted,
                "older_than_days": days,
                "rollups_deleted": rollups[0],
                "hourly_rollups_deleted": rollups[1],
            }
        )
    )
    return 0


def _cmd_mqtt_worker(args: argparse.Namespace, settings: HubSettings) -> int:
    from cloud_hub.workers.hub_worker import run_hub_worker
    from cloud_hub.workers.mqtt_ingest import stop_on_signals

    if args.name is not None:
        settings = _override(settings, worker_name=args.name)
    run_hub_worker(settings, stop_on_signals())
    return 0


def _cmd_broker_config(args: argparse.Namespace, settings: HubSettings) -> int:
    from cloud_hub.db import create_hub_engine
    from cloud_hub.migrate import SchemaOutOfDateError, check_schema_current
    from cloud_hub.services.broker_config import (
        BrokerConfigError,
        BrokerOptions,
        BrokerTls,
        enrolled_devices,
        write_broker_config,
    )

    tls_files = (args.tls_ca, args.tls_cert, args.tls_key)
    if any(tls_files) and not all(tls_files):
        raise UsageError("--tls-ca, --tls-cert and --tls-key go together")
    tls = None
    if all(tls_files):
        tls = BrokerTls(ca_file=args.tls_ca, cert_file=args.tls_cert, key_file=args.tls_key)
    hub_user = args.hub_user or settings.mqtt_username or "hub"
    if settings.mqtt_username is not None and settings.mqtt_username != hub_user:
        log.warning(
            "--hub-user %s differs from RETAIL_HUB_MQTT_USERNAME %s: the workers will not get in",
            hub_user,
            settings.mqtt_username,
        )
    try:
        options = BrokerOptions(
            tls=tls,
            port=args.port,
            bind_address=args.bind,
            hub_user=hub_user,
            config_dir=args.config_dir,
            data_dir=args.data_dir,
            run_as=args.run_as,
        )
    except ValidationError as exc:
        raise UsageError(_settings_error(exc)) from None
    engine = create_hub_engine(settings.database_url, pool_size=1)
    try:
        check_schema_current(engine)
        with engine.connect() as conn:
            devices = enrolled_devices(conn)
    except SchemaOutOfDateError as exc:
        raise UsageError(str(exc)) from None
    except OperationalError as exc:
        raise UsageError(f"cannot reach the database: {_one_line(exc.orig)}") from None
    finally:
        engine.dispose()
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else ""
    try:
        files = write_broker_config(args.out, devices, options, password)
    except BrokerConfigError as exc:
        raise UsageError(str(exc)) from None
    print(
        json.dumps(
            {
                "conf": str(files.conf),
                "passwd": str(files.passwd),
                "acl": str(files.acl),
                "devices": files.devices,
                "hub_user": hub_user,
            }
        )
    )
    print(
        "apply it: start mosquitto with -c CONF, or send SIGHUP to the running broker",
        file=sys.stderr,
    )
    return 0


def _override(settings: HubSettings, **changes: object) -> HubSettings:
    try:
        return HubSettings.model_validate({**settings.model_dump(), **changes})
    except ValidationError as exc:
        raise UsageError(_settings_error(exc)) from None


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _settings_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = ".".join(str(x) for x in err["loc"]) or "settings"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"setting {field}: {msg} (got {err.get('input')!r})"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also renders --help)."""
    p = _Parser(
        prog="retail-hub",
        description="Retail CV HQ hub: receives telemetry from the store edge agents over "
        "HTTP and MQTT and stores it in SQLite or PostgreSQL. " + ENV_HELP,
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sv = sub.add_parser(
        "serve",
        help="run the HTTP API (ingest, health, device sync)",
        description="Serve the hub API with uvicorn: POST /api/v1/ingest/telemetry, "
        "GET /api/v1/health, GET /api/v1/devices/{device_id}/sync. Run `retail-hub migrate` "
        "first; the API never creates tables. " + ENV_HELP,
    )
    sv.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s)"
    )
    sv.add_argument("--port", type=int, default=8000, help="TCP port (default %(default)s)")
    sv.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="uvicorn worker processes sharing the port (default %(default)s), about one per "
        "CPU core the API may use. Each has its own database pool (up to 15 connections), "
        "its own rate limiter (a caller gets up to N x RETAIL_HUB_RATE_LIMIT_PER_MINUTE) and "
        "runs the periodic jobs' threads (each period still runs once); /metrics adds up the "
        "counters of all N",
    )
    sv.set_defaults(func=_cmd_serve)

    mg = sub.add_parser(
        "migrate",
        help="create or upgrade the database schema (Alembic)",
        description="Bring the database at DATABASE_URL to the newest schema (or --revision). "
        "Safe to run again: an up-to-date database is left as it is.",
    )
    mg.add_argument("--revision", default="head", help="target revision (default %(default)s)")
    mg.set_defaults(func=_cmd_migrate)

    mw = sub.add_parser(
        "worker",
        aliases=["mqtt-worker"],
        help="ingest telemetry batches from the MQTT broker; follow device status; run jobs",
        description="Subscribe to the edge telemetry topics through the shared subscription "
        "and ingest each batch, acknowledging it after the database commit. Run several "
        "workers with different --name to split the load; keep each name across restarts so "
        "the broker hands back what it queued while the worker was down. Also follows each "
        "device's MQTT status (device offline alerts) and runs the periodic jobs (retention, "
        "offline check, store thresholds, webhook delivery: once per period across all hub "
        "processes; RETAIL_HUB_RUN_JOBS=false turns them off here). Stops cleanly on "
        "SIGTERM. " + ENV_HELP,
    )
    mw.add_argument(
        "--name",
        help="stable worker name; MQTT client id hub-ingest-NAME (default $RETAIL_HUB_WORKER_NAME "
        "or 1)",
    )
    mw.set_defaults(func=_cmd_mqtt_worker)
    rt = sub.add_parser(
        "retention",
        help="delete snapshots (and rollups, if so set) older than the retention period, once",
        description="Delete stored snapshots (gated images) taken more than --snapshot-days "
        "ago (default $RETAIL_HUB_SNAPSHOT_RETENTION_DAYS, 30), and minute rollups with their "
        "hourly sums older than $RETAIL_HUB_ROLLUP_RETENTION_DAYS (0, the default: never). "
        "`retail-hub serve` and "
        "`worker` run this every RETAIL_HUB_RETENTION_INTERVAL_S seconds (3600; 0 turns that "
        "off), once per period across all hub processes.",
    )
    rt.add_argument("--snapshot-days", type=float, help="retention period in days")
    rt.set_defaults(func=_cmd_retention)
    bc = sub.add_parser(
        "broker-config",
        help="write the Mosquitto config: TLS listener, device passwords, per-device ACLs",
        description="Write mosquitto.conf, passwd (0600) and acl into --out from the enrolled, "
        "unrevoked devices: each device logs in with its device id and secret and may publish "
        "only its own telemetry, status and state and read only its own ack and desired; the "
        "hub user (--hub-user, password $RETAIL_HUB_MQTT_PASSWORD) reads all telemetry and "
        "writes acks. Re-run it after enrollments and revocations and send SIGHUP to mosquitto "
        "to apply them. " + ENV_HELP,
    )
    bc.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write to")
    bc.add_argument("--tls-ca", type=Path, metavar="FILE", help="CA bundle (PEM) for clients")
    bc.add_argument("--tls-cert", type=Path, metavar="FILE", help="broker certificate (PEM)")
    bc.add_argument("--tls-key", type=Path, metavar="FILE", help="broker private key (PEM)")
    bc.add_argument("--port", type=int, help="listener port (default 8883 with TLS, else 1883)")
    bc.add_argument("--bind", metavar="ADDRESS", help="address to listen on (default: all)")
    bc.add_argument(
        "--hub-user",
        metavar="NAME",
        help="MQTT user of the hub workers (default $RETAIL_HUB_MQTT_USERNAME or hub)",
    )
    bc.add_argument(
        "--config-dir",
        type=Path,
        metavar="DIR",
        help="where passwd and acl are as the broker sees them, e.g. /mosquitto/config in a "
        "container (default: --out)",
    )
    bc.add_argument(
        "--data-dir",
        type=Path,
        default=Path("/var/lib/mosquitto"),
        metavar="DIR",
        help="broker persistence folder (default %(default)s)",
    )
    bc.add_argument(
        "--run-as",
        metavar="USER",
        help="account mosquitto drops to when started as root (written as its `user` option; "
        "passwd and acl are handed to it when this runs as root)",
    )
    bc.set_defaults(func=_cmd_broker_config)
    database_url_help = (
        "database to use instead of $DATABASE_URL (sqlite:///hub.db, "
        "postgresql+psycopg://user@host/db)"
    )
    for command in (sv, mg, mw, rt, bc):
        command.add_argument("--database-url", metavar="URL", help=database_url_help)
    from cloud_hub.cli_admin import add_admin_parser

    add_admin_parser(sub, _Parser, database_url_help)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the process exit code (2 for a user-facing error)."""
    args = build_parser().parse_args(argv)
    try:
        settings = HubSettings()
    except ValidationError as exc:
        print(f"error: {_settings_error(exc)}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        if args.database_url is not None:
            settings = _override(settings, database_url=args.database_url)
        return int(args.func(args, settings))
    except UsageError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
