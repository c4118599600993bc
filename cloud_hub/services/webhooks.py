"""Outgoing webhooks: alert events POSTed to external systems (POS, ERP, HR), signed, retried,
logged.

**Signing.** Each request carries ``X-Retail-Signature: t=<unix s>,v1=<hex>``, the hex
HMAC-SHA256 of ``f"{t}.{body}"`` under the webhook's secret; a receiver recomputes it and
rejects a stale ``t`` (replays). **Secrets at rest.** The secret is shown once, at creation.
The hub stores only a random salt and derives the secret again when it signs:
``whsec_`` + base64url(HMAC-SHA256(hub webhook key, salt)). The hub webhook key
(``RETAIL_HUB_WEBHOOK_KEY``) lives in the processes' environment, never in the database, so a
copy of the database (a backup, a replica, an injection) reveals no secret. ``key_check``
fingerprints the key a secret came from: after a key change the hub refuses to sign with
the wrong secret and says so in the delivery log.

**Delivery.** An event inserts one ``webhook_deliveries`` row per matching webhook in the
transaction that changed the alert (nothing lives only in memory, so a restart loses
nothing). The delivery job sends due rows, one at a time under a lease (two hub processes
never send the same row at once), logs every attempt, and retries failures after an
exponential back-off with jitter until ``max_attempts``, then marks the row failed. Delivery
is at least once: a process killed after the receiver answered and before the commit sends it
again (once its lease, the request timeout + 5 s, has run out), so receivers deduplicate on
``X-Retail-Delivery`` (or the body's ``event_id``). Events of one alert may arrive out of
order after retries: the body's ``alert.updated_at`` orders them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import random
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import httpx
import orjson
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import ColumnElement, Engine, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, RowMapping

from cloud_hub.models import WEBHOOK_ATTEMPTS, WEBHOOK_DELIVERIES, WEBHOOKS
from cloud_hub.services.api_keys import STORE_ID_PATTERN
from cloud_hub.services.paging import PageInfo, page_info
from cloud_hub.services.sql import upsert
from cloud_hub.services.webhook_destinations import DestinationRefused, pin

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
SHOWN_SECRET_CHARS = len(SECRET_PREFIX) + 4
SIGNATURE_HEADER = "X-Retail-Signature"
MAX_URL_CHARS = 2000
MAX_ERROR_CHARS = 500
DELIVERIES_PER_RUN = 200
LEASE_MARGIN_S = 5.0  # a lease outlives a request (timeout_s) by this much


class WebhookEvent(StrEnum):
    """What happened to an alert."""

    ALERT_OPENED = "alert.opened"
    ALERT_ACKNOWLEDGED = "alert.acknowledged"
    ALERT_RESOLVED = "alert.resolved"


class DeliveryState(StrEnum):
    """Where a delivery stands."""

    PENDING = "pending"  # waiting for its next attempt
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # max attempts reached without a 2xx
    CANCELLED = "cancelled"  # its webhook was deleted first


class WebhookKeyError(RuntimeError):
    """The hub has no webhook key (``RETAIL_HUB_WEBHOOK_KEY``) or not the one a secret came
    from."""


class WebhookCreate(BaseModel):
    """A webhook to register: where to POST, which store (null: every store) and events."""

    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="http(s) URL the hub POSTs events to")
    store_id: str | None = Field(
        None, pattern=STORE_ID_PATTERN, description="only this store's alerts; null: all stores"
    )
    events: list[WebhookEvent] = Field(
        default_factory=lambda: list(WebhookEvent), min_length=1, description="events to send"
    )
    description: str | None = Field(None, min_length=1, max_length=200)

    @field_validator("url")
    @classmethod
    def _short_url(cls, url: AnyHttpUrl) -> AnyHttpUrl:
        if len(str(url)) > MAX_URL_CHARS:
            raise ValueError(f"the URL is longer than {MAX_URL_CHARS} characters")
        return url


class WebhookOut(BaseModel):
    """A registered webhook (never its secret; ``secret_prefix`` helps recognise it)."""

    model_config = ConfigDict(extra="forbid")

    id: int
    url: str
    store_id: str | None = Field(description="null: alerts of every store")
    events: list[WebhookEvent]
    description: str | None
    secret_prefix: str
    created_at: datetime
    created_by: str = Field(description="name of the API key that created it")


class WebhookCreated(WebhookOut):
    """The new webhook with its signing secret: shown this once, never again."""

    secret: str = Field(description="HMAC-SHA256 signing secret; store it now")


class WebhookPage(PageInfo):
    """Webhooks by id."""

    items: list[WebhookOut]


class AttemptOut(BaseModel):
    """One HTTP attempt of a delivery."""

    model_config = ConfigDict(extra="forbid")

    attempt: int
    started_at: datetime
    status_code: int | None = Field(description="null: no HTTP answer (see error)")
    error: str | None
    duration_ms: float


class DeliveryOut(BaseModel):
    """One event sent (or to send) to one webhook, with every attempt so far."""

    model_config = ConfigDict(extra="forbid")

    id: int
    webhook_id: int
    event: WebhookEvent
    event_id: str
    alert_id: int | None
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None = Field(description="null unless pending")
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    attempt_log: list[AttemptOut]


class DeliveryPage(PageInfo):
    """Deliveries of one webhook, newest first."""

    items: list[DeliveryOut]


@dataclass(frozen=True)
class DeliveryPolicy:
    """How deliveries are retried: ``max_attempts`` in all, the n-th retry after about
    ``backoff_s * 2**(n-1)`` seconds (at most ``backoff_max_s``, jittered), each request
    allowed ``timeout_s`` seconds."""

    max_attempts: int
    backoff_s: float
    backoff_max_s: float
    timeout_s: float
    allow_private: bool = False  # see cloud_hub/services/webhook_destinations.py


@dataclass
class DeliveryReport:
    """What one run of the delivery job did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0


# -- secrets and signatures (pure) ------------------------------------------------------------


def derive_secret(hub_key: str, salt: str) -> str:
    """The signing secret of the webhook with ``salt`` under the hub's webhook key."""
    mac = hmac.new(hub_key.encode(), b"retail-hub webhook secret\x00" + salt.encode(), "sha256")
    return SECRET_PREFIX + base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def key_check(hub_key: str) -> str:
    """A fingerprint of the hub's webhook key (reveals nothing about it)."""
    return hmac.new(hub_key.encode(), b"retail-hub webhook key check", "sha256").hexdigest()[:16]


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<timestamp>,v1=<hex HMAC-SHA256 of "t.body">``."""
    signed = str(timestamp).encode() + b"." + body
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def backoff_s(failed_attempts: int, base_s: float, max_s: float, jitter: float) -> float:
    """Delay before the next attempt after ``failed_attempts`` failures: ``base * 2**(n-1)``
    capped at ``max_s``, of which a random half (``jitter`` in [0, 1)) is kept, so retries of
    many deliveries that failed together spread out instead of arriving together."""
    if failed_attempts < 1:
        raise ValueError(f"failed_attempts must be >= 1, got {failed_attempts}")
    cap = min(max_s, base_s * 2.0 ** min(failed_attempts - 1, 60))
    return cap / 2 + cap / 2 * jitter


# -- webhooks (HQ admins) ---------------------------------------------------------------------


def create_webhook(
    conn: Connection, spec: WebhookCreate, hub_key: str | None, created_by: str, now: float
) -> WebhookCreated:
    """Register a webhook; the answer holds its secret (the only time it is shown).

    Raises:
        WebhookKeyError: the hub has no webhook key to derive a secret from.
    """
    if hub_key is None:
        raise WebhookKeyError(
            "webhooks need a hub webhook key: set RETAIL_HUB_WEBHOOK_KEY (32+ random "
            "characters, the same in every hub process) and restart the hub"
        )
    salt = secrets.token_hex(16)
    secret = derive_secret(hub_key, salt)
    row = {
        "store_id": spec.store_id,
        "url": str(spec.url),
        "events": sorted({e.value for e in spec.events}),
        "description": spec.description,
        "secret_salt": salt,
        "secret_prefix": secret[:SHOWN_SECRET_CHARS],
        "key_check": key_check(hub_key),
        "created_at": now,
        "created_by": created_by,
    }
    new_id = conn.execute(insert(WEBHOOKS).values(row).returning(WEBHOOKS.c.id)).scalar_one()
    log.info("webhook %d created by %s for %s", new_id, created_by, spec.store_id or "all stores")
    return WebhookCreated(**_webhook_out({**row, "id": new_id}).model_dump(), secret=secret)


def list_webhooks(conn: Connection, store_id: str | None, limit: int, offset: int) -> WebhookPage:
    """Webhooks (not deleted) by id; ``store_id`` given: those of that store and the global
    ones (every webhook its alerts go to)."""
    c = WEBHOOKS.c
    where: list[ColumnElement[bool]] = [c.deleted_at.is_(None)]
    if store_id is not None:
        where.append(or_(c.store_id == store_id, c.store_id.is_(None)))
    total = conn.execute(select(func.count()).select_from(WEBHOOKS).where(*where)).scalar_one()
    rows = conn.execute(
        select(WEBHOOKS).where(*where).order_by(c.id).limit(limit).offset(offset)
    ).mappings()
    return WebhookPage(
        items=[_webhook_out(r) for r in rows], **page_info(total, limit, offset).model_dump()
    )


def get_webhook(conn: Connection, webhook_id: int) -> WebhookOut | None:
    """The webhook, or None (also for a deleted one)."""
    c = WEBHOOKS.c
    row = (
        conn.execute(select(WEBHOOKS).where(c.id == webhook_id, c.deleted_at.is_(None)))
        .mappings()
        .first()
    )
    return None if row is None else _webhook_out(row)


def delete_webhook(conn: Connection, webhook_id: int, now: float) -> bool:
    """Delete the webhook and cancel its pending deliveries; False when there is none. The row
    and its delivery log stay in the database (``deleted_at``) for the record."""
    c = WEBHOOKS.c
    done = conn.execute(
        update(WEBHOOKS).where(c.id == webhook_id, c.deleted_at.is_(None)).values(deleted_at=now)
    )
    if not done.rowcount:
        return False
    d = WEBHOOK_DELIVERIES.c
    conn.execute(
        update(WEBHOOK_DELIVERIES)
        .where(d.webhook_id == webhook_id, d.state == DeliveryState.PENDING.value)
        .values(state=DeliveryState.CANCELLED.value, finished_at=now, lease_until=None)
    )
    log.info("webhook %d deleted; its pending deliveries cancelled", webhook_id)
    return True


def list_deliveries(
    conn: Connection, webhook_id: int, state: DeliveryState | None, limit: int, offset: int
) -> DeliveryPage:
    """Deliveries of a webhook, newest first, each with its attempts."""
    d = WEBHOOK_DELIVERIES.c
    where = [d.webhook_id == webhook_id]
    if state is not None:
        where.append(d.state == state.value)
    total = conn.execute(
        select(func.count()).select_from(WEBHOOK_DELIVERIES).where(*where)
    ).scalar_one()
    cols = [col for col in WEBHOOK_DELIVERIES.columns if col.name not in ("body", "lease_until")]
    rows = (
        conn.execute(select(*cols).where(*where).order_by(d.id.desc()).limit(limit).offset(offset))
        .mappings()
        .all()
    )
    a = WEBHOOK_ATTEMPTS.c
    attempts: dict[int, list[AttemptOut]] = {}
    if rows:
        for r in conn.execute(
            select(WEBHOOK_ATTEMPTS)
            .where(a.delivery_id.in_([r["id"] for r in rows]))
            .order_by(a.delivery_id, a.attempt)
        ).mappings():
            attempts.setdefault(r["delivery_id"], []).append(
                AttemptOut(
                    attempt=r["attempt"],
                    started_at=_utc(r["started_at"]),
                    status_code=r["status_code"],
                    error=r["error"],
                    duration_ms=r["duration_ms"],
                )
            )
    items = [
        DeliveryOut(
            id=r["id"],
            webhook_id=r["webhook_id"],
            event=WebhookEvent(r["event"]),
            event_id=r["event_id"],
            alert_id=r["alert_id"],
            state=DeliveryState(r["state"]),
            attempts=r["attempts"],
            next_attempt_at=(
                _utc(r["next_attempt_at"]) if r["state"] == DeliveryState.PENDING else None
            ),
            last_status_code=r["last_status_code"],
            last_error=r["last_error"],
            created_at=_utc(r["created_at"]),
            finished_at=None if r["finished_at"] is None else _utc(r["finished_at"]),
            attempt_log=attempts.get(r["id"], []),
        )
        for r in rows
    ]
    return DeliveryPage(items=items, **page_info(total, limit, offset).model_dump())


def prune_deliveries(conn: Connection, before: float) -> int:
    """Delete deliveries that finished (delivered, failed, cancelled) before ``before``
    (UNIX s), with their attempts; how many deliveries."""
    d, a = WEBHOOK_DELIVERIES.c, WEBHOOK_ATTEMPTS.c
    old = (
        select(d.id)
        .where(d.state != DeliveryState.PENDING.value, d.finished_at < before)
        .scalar_subquery()
    )
    conn.execute(delete(WEBHOOK_ATTEMPTS).where(a.delivery_id.in_(old)))
    done = conn.execute(
        delete(WEBHOOK_DELIVERIES).where(
            d.state != DeliveryState.PENDING.value, d.finished_at < before
        )
    )
    return int(done.rowcount or 0)


# -- events in, deliveries out ----------------------------------------------------------------


def enqueue_event(
    conn: Connection,
    event: WebhookEvent,
    store_id: str,
    alert_id: int,
    alert: BaseModel,
    now: float,
) -> int:
    """Queue ``event`` about ``alert`` (of ``store_id``) for every webhook that wants it, in
    the caller's transaction; how many deliveries were queued. The body is fixed now: the
    alert as it is at this event."""
    c = WEBHOOKS.c
    hooks = conn.execute(
        select(c.id, c.events).where(
            c.deleted_at.is_(None), or_(c.store_id == store_id, c.store_id.is_(None))
        )
    ).all()
    targets = [h.id for h in hooks if event.value in h.events]
    if not targets:
        return 0
    event_id = uuid.uuid4().hex
    body = orjson.dumps(
        {
            "event_id": event_id,
            "event": event.value,
            "occurred_at": _utc(now).isoformat(),
            "store_id": store_id,
            "alert": alert.model_dump(mode="json"),
        }
    ).decode()
    rows = [
        {
            "webhook_id": hook_id,
            "event": event.value,
            "event_id": event_id,
            "alert_id": alert_id,
            "body": body,
            "state": DeliveryState.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for hook_id in targets
    ]
    conn.execute(insert(WEBHOOK_DELIVERIES), rows)
    return len(rows)


def deliver_due(
    engine: Engine,
    hub_key: str,
    policy: DeliveryPolicy,
    client: httpx.Client,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> DeliveryReport:
    """Send the deliveries that are due, oldest first (at most ``DELIVERIES_PER_RUN``); a
    webhook that failed once in this run is not tried again in it (its other deliveries wait
    for the next run, so one dead receiver does not hold the others up)."""
    rng = rng or random.Random()
    report = DeliveryReport()
    skip: set[int] = set()
    for due in _due(engine, clock()):
        if due["webhook_id"] in skip or not _lease(engine, due["id"], clock(), policy):
            continue
        attempt = due["attempts"] + 1
        started = clock()
        status, error = _send(due, hub_key, policy, client, clock)
        done = clock()
        ok = status is not None and 200 <= status < 300
        if ok:
            state = DeliveryState.DELIVERED
            report.delivered += 1
        elif attempt >= policy.max_attempts:
            state = DeliveryState.FAILED
            report.failed += 1
        else:
            state = DeliveryState.PENDING
            report.retrying += 1
        if not ok:
            skip.add(due["webhook_id"])
            log.warning(
                "webhook %d delivery %d (%s) attempt %d/%d failed: %s",
                due["webhook_id"], due["id"], due["event"], attempt, policy.max_attempts,
                error if status is None else f"HTTP {status}",
            )  # fmt: skip
        delay = 0.0 if state is not DeliveryState.PENDING else backoff_s(
            attempt, policy.backoff_s, policy.backoff_max_s, rng.random()
        )  # fmt: skip
        with engine.begin() as conn:
            _record(conn, due["id"], attempt, started, done, status, error, state, delay)
    return report


_DUE_COLUMNS = [
    *(WEBHOOK_DELIVERIES.c[n] for n in ("id", "webhook_id", "event", "event_id", "body")),
    WEBHOOK_DELIVERIES.c.attempts,
    *(WEBHOOKS.c[n] for n in ("url", "secret_salt", "key_check")),
]


def _due(engine: Engine, now: float) -> list[RowMapping]:
    d, w = WEBHOOK_DELIVERIES.c, WEBHOOKS.c
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(*_DUE_COLUMNS)
                .join_from(WEBHOOK_DELIVERIES, WEBHOOKS, w.id == d.webhook_id)
                .where(
                    d.state == DeliveryState.PENDING.value,
                    d.next_attempt_at <= now,
                    or_(d.lease_until.is_(None), d.lease_until < now),
                )
                .order_by(d.next_attempt_at, d.id)
                .limit(DELIVERIES_PER_RUN)
            ).mappings()
        )


def _lease(engine: Engine, delivery_id: int, now: float, policy: DeliveryPolicy) -> bool:
    """Take delivery ``delivery_id`` for this process unless another one holds it."""
    d = WEBHOOK_DELIVERIES.c
    with engine.begin() as conn:
        done = conn.execute(
            update(WEBHOOK_DELIVERIES)
            .where(
                d.id == delivery_id,
                d.state == DeliveryState.PENDING.value,
                or_(d.lease_until.is_(None), d.lease_until < now),
            )
            .values(lease_until=now + policy.timeout_s + LEASE_MARGIN_S)
        )
    return bool(done.rowcount)


def _send(
    due: RowMapping,
    hub_key: str,
    policy: DeliveryPolicy,
    client: httpx.Client,
    clock: Callable[[], float],
) -> tuple[int | None, str | None]:
    """POST one delivery; (status code or None, error text or None)."""
    if key_check(hub_key) != due["key_check"]:
        return None, (
            "this hub's RETAIL_HUB_WEBHOOK_KEY is not the one the webhook's secret was made "
            "with: set the old key back, or delete the webhook and create it again"
        )
    body = due["body"].encode()
    secret = derive_secret(hub_key, due["secret_salt"])
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "retail-hub-webhooks/1",
        "X-Retail-Event": due["event"],
        "X-Retail-Event-Id": due["event_id"],
        "X-Retail-Delivery": str(due["id"]),
        SIGNATURE_HEADER: signature_header(secret, int(clock()), body),
    }
    try:
        pinned = pin(due["url"], policy.allow_private)
    except DestinationRefused as exc:
        return None, str(exc)[:MAX_ERROR_CHARS]
    headers.update(pinned.headers)
    try:
        response = client.post(
            pinned.url,
            content=body,
            headers=headers,
            timeout=policy.timeout_s,
            extensions=pinned.extensions,
        )
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
    if 300 <= response.status_code < 400:
        return response.status_code, "redirects are not followed: register the final URL"
    if response.status_code >= 300:
        return response.status_code, response.text[:MAX_ERROR_CHARS] or None
    return response.status_code, None


def _record(
    conn: Connection,
    delivery_id: int,
    attempt: int,
    started: float,
    done: float,
    status: int | None,
    error: str | None,
    state: DeliveryState,
    delay_s: float,
) -> None:
    a = WEBHOOK_ATTEMPTS.c
    conn.execute(
        upsert(conn, WEBHOOK_ATTEMPTS)
        .values(
            delivery_id=delivery_id,
            attempt=attempt,
            started_at=started,
            status_code=status,
            error=error,
            duration_ms=(done - started) * 1000.0,
        )
        .on_conflict_do_nothing(index_elements=[a.delivery_id, a.attempt])
    )
    d = WEBHOOK_DELIVERIES.c
    finished = None if state is DeliveryState.PENDING else done
    conn.execute(
        update(WEBHOOK_DELIVERIES)
        .where(d.id == delivery_id, d.state == DeliveryState.PENDING.value)
        .values(
            attempts=attempt,
            state=state.value,
            next_attempt_at=done + delay_s,
            lease_until=None,
            last_status_code=status,
            last_error=error,
            finished_at=finished,
        )
    )


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _webhook_out(row: RowMapping | dict[str, Any]) -> WebhookOut:
    return WebhookOut(
        id=row["id"],
        url=row["url"],
        store_id=row["store_id"],
        events=[WebhookEvent(e) for e in row["events"]],
        description=row["description"],
        secret_prefix=row["secret_prefix"],
        created_at=_utc(row["created_at"]),
        created_by=row["created_by"],
    )
