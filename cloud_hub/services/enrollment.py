"""Device enrollment: one-time tokens in, per-device credentials out (both kept hashed).

An HQ admin issues a token for a store (``retail-hub admin enroll-token --store S`` or
``POST /api/v1/stores/{store}/enrollment-tokens``); the installer gives it to the new box
(``retail-edge enroll``), which trades it once for its own secret. From then on the box sends
that secret as ``Authorization: Bearer`` and the hub takes the device and its store from it, so
a box can write only its own store's data. Times are UNIX seconds UTC, passed in.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from cloud_hub.core.security import (
    generate_device_secret,
    generate_enrollment_token,
    hash_api_key,
    mosquitto_password_hash,
)
from cloud_hub.models import DEVICE_CREDENTIALS, DEVICE_TWINS, DEVICES, ENROLLMENT_TOKENS
from cloud_hub.services.api_keys import STORE_ID_PATTERN
from cloud_hub.services.paging import PageInfo, page_info
from cloud_hub.services.stores import ensure_store
from common.topics import DeviceTopics

DEFAULT_TOKEN_TTL_S = 24 * 3600.0
MAX_TOKEN_TTL_S = 30 * 24 * 3600.0


class EnrollmentError(ValueError):
    """An enrollment that cannot go ahead (the message says why, never the token)."""


class TokenRejectedError(EnrollmentError):
    """The enrollment token is unknown, used or expired (one answer for all three)."""


class DeviceConflictError(EnrollmentError):
    """The device id is already bound to another store."""


class EnrollmentTokenOut(BaseModel):
    """A new enrollment token, shown once. Times: UNIX s UTC."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str = Field(description="give it to the installer; it enrolls one device, once")
    store_id: str
    expires_at: float


class EnrollmentTokenRequest(BaseModel):
    """An HQ admin asks for a token for one new box of ``store_id``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store_id: str = Field(pattern=STORE_ID_PATTERN)
    ttl_s: float | None = Field(
        None, gt=0, le=MAX_TOKEN_TTL_S, description="lifetime in seconds; default: the hub's"
    )


class EnrollRequest(BaseModel):
    """What a new box sends to enroll."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str = Field(min_length=1, max_length=200, description="the one-time token")
    device_id: str = Field(pattern=STORE_ID_PATTERN, description="the box's device id")


class DeviceCredentialsOut(BaseModel):
    """A device's credentials, returned once at enrollment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store_id: str
    device_id: str
    device_secret: str = Field(description="send as `Authorization: Bearer SECRET`; shown once")
    topic_prefix: str = Field(description="MQTT topics of this device start with this")


class DeviceOut(BaseModel):
    """A device as HQ sees it: enrollment and sync health. Times: UNIX s UTC (null: never)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_id: str
    store_id: str
    enrolled_at: float | None
    revoked_at: float | None
    last_seen: float | None = Field(description="hub clock at the device's last batch")
    max_seq: int | None
    records_received: int | None
    dead_lettered: int | None
    dropped_at_edge: int | None
    model_name: str | None = Field(
        description="the model the device last reported running (null: it never reported; it "
        "runs its store config's model)"
    )
    model_version: str | None
    desired_model_name: str | None = Field(
        description="the model the hub wants it to run (null: its store config's)"
    )
    desired_model_version: str | None
    twin_step: str | None = Field(description="its last reported rollout step (TwinStep)")
    twin_reported_at: float | None = Field(description="hub clock at that report")
    config_version: int | None = Field(
        description="the store layout version it last reported running (null: its file's, or "
        "never reported)"
    )
    desired_config_version: int | None = Field(
        description="the layout version the hub wants it to run (null: its file's)"
    )
    config_step: str | None = Field(description="its last reported layout step (ConfigStep)")


class DevicePage(PageInfo):
    """Devices by ``(store_id, device_id)``."""

    items: list[DeviceOut]


def create_enrollment_token(
    conn: Connection,
    store_id: str,
    *,
    created_by: str,
    now: float,
    ttl_s: float = DEFAULT_TOKEN_TTL_S,
) -> EnrollmentTokenOut:
    """Issue a one-time token that enrolls one device into ``store_id`` until ``now + ttl_s``.

    The store is registered if the hub does not know it yet (a new store's first box).

    Raises:
        EnrollmentError: a bad store id or a lifetime outside (0, 30 days].
    """
    if not re.match(STORE_ID_PATTERN, store_id):
        raise EnrollmentError(f"store id {store_id!r} is not a valid id (letters, digits, - _ .)")
    if not 0 < ttl_s <= MAX_TOKEN_TTL_S:
        raise EnrollmentError(f"token lifetime {ttl_s} s is outside (0, {MAX_TOKEN_TTL_S:.0f}]")
    token = generate_enrollment_token()
    ensure_store(conn, store_id, now)
    conn.execute(
        insert(ENROLLMENT_TOKENS).values(
            token_hash=hash_api_key(token),
            store_id=store_id,
            created_by=created_by,
            created_at=now,
            expires_at=now + ttl_s,
        )
    )
    return EnrollmentTokenOut(token=token, store_id=store_id, expires_at=now + ttl_s)


def enroll_device(conn: Connection, request: EnrollRequest, *, now: float) -> DeviceCredentialsOut:
    """Trade a one-time token for the device's own secret (in the caller's transaction).

    The token is consumed by a conditional update, so two boxes racing with one token cannot
    both enroll. A device enrolling again (a re-imaged box, with a new token for the same
    store) gets a new secret and its old one stops working.

    Raises:
        EnrollmentError: the token is unknown, used or expired, or the device id belongs to
            another store.
    """
    t = ENROLLMENT_TOKENS.c
    row = (
        conn.execute(select(ENROLLMENT_TOKENS).where(t.token_hash == hash_api_key(request.token)))
        .mappings()
        .first()
    )
    if row is None or row["used_at"] is not None or row["expires_at"] <= now:
        # One answer for all three, so a caller cannot probe which tokens exist.
        raise TokenRejectedError("enrollment token unknown, already used or expired")
    store_id = str(row["store_id"])
    c = DEVICE_CREDENTIALS.c
    existing = conn.execute(
        select(c.store_id).where(c.device_id == request.device_id)
    ).scalar_one_or_none()
    seen_store = conn.execute(
        select(DEVICES.c.store_id).where(DEVICES.c.device_id == request.device_id)
    ).scalar_one_or_none()
    for other in (existing, seen_store):
        if other is not None and other != store_id:
            raise DeviceConflictError(
                f"device {request.device_id!r} belongs to another store; choose another id"
            )
    consumed = conn.execute(
        update(ENROLLMENT_TOKENS)
        .where(t.id == row["id"], t.used_at.is_(None))
        .values(used_at=now, device_id=request.device_id)
    )
    if consumed.rowcount != 1:
        raise TokenRejectedError("enrollment token unknown, already used or expired")
    secret = generate_device_secret()
    values = {
        "store_id": store_id,
        "secret_hash": hash_api_key(secret),
        "broker_password_hash": mosquitto_password_hash(secret),
        "enrolled_at": now,
    }
    if existing is None:
        conn.execute(insert(DEVICE_CREDENTIALS).values(device_id=request.device_id, **values))
    else:
        conn.execute(
            update(DEVICE_CREDENTIALS)
            .where(c.device_id == request.device_id)
            .values(revoked_at=None, **values)
        )
    topics = DeviceTopics(store_id=store_id, device_id=request.device_id)
    return DeviceCredentialsOut(
        store_id=store_id,
        device_id=request.device_id,
        device_secret=secret,
        topic_prefix=topics.base,
    )


def device_for_secret(conn: Connection, secret: str) -> DeviceTopics | None:
    """The device holding ``secret``; None when it is unknown or revoked."""
    c = DEVICE_CREDENTIALS.c
    row = (
        conn.execute(select(DEVICE_CREDENTIALS).where(c.secret_hash == hash_api_key(secret)))
        .mappings()
        .first()
    )
    if row is None or row["revoked_at"] is not None:
        return None
    return DeviceTopics(store_id=str(row["store_id"]), device_id=str(row["device_id"]))


def revoke_device(conn: Connection, device_id: str, *, now: float) -> bool:
    """Revoke the device's credential from ``now`` on; False when it has none."""
    c = DEVICE_CREDENTIALS.c
    exists = conn.execute(select(c.device_id).where(c.device_id == device_id)).first()
    conn.execute(
        update(DEVICE_CREDENTIALS)
        .where(c.device_id == device_id, c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return exists is not None


def list_devices(
    conn: Connection, store_ids: frozenset[str] | None, limit: int, offset: int
) -> DevicePage:
    """Devices of the stores ``store_ids`` (None: all), enrolled or seen syncing, by store and
    device id."""
    cred = {
        str(r["device_id"]): r
        for r in conn.execute(select(DEVICE_CREDENTIALS)).mappings().all()
        if store_ids is None or r["store_id"] in store_ids
    }
    seen = {
        str(r["device_id"]): r
        for r in conn.execute(select(DEVICES)).mappings().all()
        if store_ids is None or r["store_id"] in store_ids
    }
    twins = {
        str(r["device_id"]): r
        for r in conn.execute(select(DEVICE_TWINS)).mappings().all()
        if store_ids is None or r["store_id"] in store_ids
    }
    out: list[DeviceOut] = []
    for device_id in set(cred) | set(seen):
        c, s, t = cred.get(device_id), seen.get(device_id), twins.get(device_id)
        out.append(
            DeviceOut(
                device_id=device_id,
                store_id=str((c or s)["store_id"]),  # type: ignore[index]
                enrolled_at=None if c is None else c["enrolled_at"],
                revoked_at=None if c is None else c["revoked_at"],
                last_seen=None if s is None else s["last_seen"],
                max_seq=None if s is None else s["max_seq"],
                records_received=None if s is None else s["records_received"],
                dead_lettered=None if s is None else s["dead_lettered"],
                dropped_at_edge=None if s is None else s["dropped_at_edge"],
                model_name=None if t is None else t["reported_name"],
                model_version=None if t is None else t["reported_version"],
                desired_model_name=None if t is None else t["desired_name"],
                desired_model_version=None if t is None else t["desired_version"],
                twin_step=None if t is None else t["reported_step"],
                twin_reported_at=None if t is None else t["reported_at"],
                config_version=None if t is None else t["reported_config_version"],
                desired_config_version=None if t is None else t["desired_config_version"],
                config_step=None if t is None else t["reported_config_step"],
            )
        )
    out.sort(key=lambda d: (d.store_id, d.device_id))
    info = page_info(len(out), limit, offset)
    return DevicePage(items=out[offset : offset + limit], **info.model_dump())
