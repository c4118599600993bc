"""``retail-hub admin``: API keys for people and integrations (create, revoke, list), and
one-time enrollment tokens for store boxes.

A thin shell over ``cloud_hub.services.api_keys``. ``create-key`` prints the new key alone on
stdout, once: the hub keeps only its hash. Errors print one ``error:`` line and return 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.exc import OperationalError

from cloud_hub.core.config import HubSettings
from cloud_hub.core.security import Role

P = TypeVar("P", bound=argparse.ArgumentParser)


def _fail(message: str) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cmd(args: argparse.Namespace, settings: HubSettings) -> int:
    from cloud_hub.db import create_hub_engine
    from cloud_hub.migrate import SchemaOutOfDateError, check_schema_current
    from cloud_hub.services.api_keys import (
        ApiKeyError,
        create_api_key,
        list_api_keys,
        revoke_api_key,
    )
    from cloud_hub.services.enrollment import EnrollmentError, create_enrollment_token
    from cloud_hub.services.stores import get_store

    engine = create_hub_engine(settings.database_url, pool_size=1)
    try:
        check_schema_current(engine)
        with engine.begin() as conn:
            if args.admin_command == "enroll-token":
                issued = create_enrollment_token(
                    conn,
                    args.store,
                    created_by="retail-hub admin",
                    now=time.time(),
                    ttl_s=args.ttl_hours * 3600.0,
                )
            elif args.admin_command == "create-key":
                key, info = create_api_key(
                    conn,
                    Role(args.role),
                    args.store,
                    all_stores=args.all_stores,
                    name=args.name,
                    now=time.time(),
                )
                unknown = [s for s in info.stores or [] if get_store(conn, s) is None]
            elif args.admin_command == "revoke-key":
                info = revoke_api_key(conn, args.key_id, now=time.time())
            else:
                keys = list_api_keys(conn)
    except (ApiKeyError, EnrollmentError, SchemaOutOfDateError) as exc:
        return _fail(str(exc))
    except OperationalError as exc:
        return _fail(f"cannot reach the database: {exc.orig}")
    finally:
        engine.dispose()
    if args.admin_command == "enroll-token":
        print(issued.token)
        print(
            f"Enrollment token for store {issued.store_id}, valid once until "
            f"{_when(issued.expires_at)}: on the box run `retail-edge enroll --hub URL --token "
            "TOKEN`.",
            file=sys.stderr,
        )
    elif args.admin_command == "create-key":
        print(key)
        scope = "all stores" if info.stores is None else "stores " + ", ".join(info.stores)
        print(
            f"API key {info.id} ({info.role.value}, {scope}) created. It is shown only now: "
            "give it to its holder, who sends it as `Authorization: Bearer KEY`.",
            file=sys.stderr,
        )
        for s in unknown:
            print(f"note: the hub has no data from store {s} yet", file=sys.stderr)
    elif args.admin_command == "revoke-key":
        print(f"API key {info.id} ({info.name}) revoked at {_when(info.revoked_at)}")
    else:
        print("ID\tROLE\tSTORES\tPREFIX\tCREATED\tREVOKED\tNAME")
        for k in keys:
            stores = "*" if k.stores is None else ",".join(k.stores)
            print(
                f"{k.id}\t{k.role.value}\t{stores}\t{k.key_prefix}\t{_when(k.created_at)}\t"
                f"{_when(k.revoked_at)}\t{k.name}"
            )
    return 0


def add_admin_parser(
    sub: argparse._SubParsersAction[P], parser_class: type[P], database_url_help: str
) -> None:
    """Add ``admin create-key | revoke-key | list-keys`` to the ``retail-hub`` parser."""
    ad = sub.add_parser(
        "admin",
        help="manage API keys (create-key, revoke-key, list-keys) and enrollment tokens",
        description="API keys for the HQ API, sent as `Authorization: Bearer KEY`. Roles: "
        "hq_admin (every store, read and write), store_manager (its --store stores, read), "
        "integrator (analytics of its --store stores, or of every store with --all-stores).",
    )
    cmds = ad.add_subparsers(dest="admin_command", required=True, parser_class=parser_class)
    ck = cmds.add_parser(
        "create-key",
        help="create a key and print it (once)",
        description="Create an API key and print it alone on stdout. The hub stores only its "
        "SHA-256, so it cannot be shown again: revoke it and create another if lost.",
    )
    ck.add_argument("--role", required=True, choices=[r.value for r in Role])
    ck.add_argument(
        "--store",
        action="append",
        default=[],
        metavar="ID",
        help="a store the key may see (repeat for several; store_manager and integrator)",
    )
    ck.add_argument(
        "--all-stores",
        action="store_true",
        help="integrator only: every store, present and future",
    )
    ck.add_argument("--name", help="who or what holds the key (shown by list-keys)")
    rk = cmds.add_parser(
        "revoke-key", help="revoke a key by id", description="Refuse a key from now on."
    )
    rk.add_argument("key_id", type=int, metavar="ID", help="the id list-keys shows")
    lk = cmds.add_parser(
        "list-keys",
        help="list keys (never the keys themselves)",
        description="Every key: id, role, stores (* = all), the first characters of the key, "
        "when it was created and revoked (UTC), and its name.",
    )
    et = cmds.add_parser(
        "enroll-token",
        help="issue a one-time token that enrolls one store box",
        description="Print a one-time enrollment token for a new box of --store. The "
        "installer runs `retail-edge enroll --hub URL --token TOKEN` on the box, which trades it "
        "for the box's own secret. The token works once, until it expires.",
    )
    et.add_argument("--store", required=True, metavar="ID", help="the store the box belongs to")
    et.add_argument(
        "--ttl-hours", type=float, default=24.0, help="hours the token stays valid (default 24)"
    )
    for command in (ck, rk, lk, et):
        command.add_argument("--database-url", metavar="URL", help=database_url_help)
        command.set_defaults(func=_cmd)
