"""Webhook delivery against a real receiving HTTP server on loopback (SQLite and PostgreSQL):
signatures the receiver checks on its own, retries with exponential back-off and jitter, the
delivery log, a receiver that never comes back, and secrets that are never stored."""

from __future__ import annotations

import dataclasses
import json
import random
import time

import httpx
import pytest
from sqlalchemy import Engine, select, text

from cloud_hub.models import WEBHOOK_DELIVERIES
from cloud_hub.services.alerts import AlertFilter, acknowledge_alert, list_alerts
from cloud_hub.services.webhook_destinations import DestinationRefused, check_literal, pin
from cloud_hub.services.webhooks import (
    DeliveryPolicy,
    DeliveryState,
    WebhookCreate,
    WebhookKeyError,
    backoff_s,
    create_webhook,
    delete_webhook,
    deliver_due,
    list_deliveries,
    prune_deliveries,
)
from tests.cloud_hub.batches import T0, numbered
from tests.cloud_hub.test_alerts import alert_event, ingest
from tests.cloud_hub.webhook_receiver import WebhookReceiver
from tests.services import free_port

HUB_KEY = "hub-webhook-key-" + "x" * 24
# The test receiver listens on loopback, which a hub refuses unless it allows private addresses.
POLICY = DeliveryPolicy(
    max_attempts=4, backoff_s=10.0, backoff_max_s=15.0, timeout_s=5.0, allow_private=True
)


class Clock:
    """A hand-moved hub clock (UNIX s)."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _deliveries(engine: Engine, webhook_id: int) -> list[dict[str, object]]:
    with engine.connect() as conn:
        page = list_deliveries(conn, webhook_id, None, 100, 0)
    return [d.model_dump() for d in page.items]


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    assert [backoff_s(n, 10, 100, 0.0) for n in range(1, 7)] == [5, 10, 20, 40, 50, 50]
    assert [backoff_s(n, 10, 100, 0.999999) for n in (1, 2, 5)] == pytest.approx([10, 20, 100])
    with pytest.raises(ValueError):
        backoff_s(0, 10, 100, 0.5)


def test_failed_attempts_are_retried_with_backoff_logged_and_signed(hub_db: Engine) -> None:
    clock = Clock(1_800_000_000.0)
    with WebhookReceiver() as receiver, httpx.Client() as client:
        with hub_db.begin() as conn:
            hook = create_webhook(
                conn, WebhookCreate(url=receiver.url, store_id="s1"), HUB_KEY, "ops", clock.t
            )
            other = create_webhook(
                conn,
                WebhookCreate(url=receiver.url, store_id="s2", events=["alert.opened"]),
                HUB_KEY, "ops", clock.t,
            )  # fmt: skip
        receiver.secret = hook.secret
        receiver.script.extend([500, 503])
        ingest(hub_db, numbered([alert_event("alert_raised", T0 + 1.0)]), at=clock.t)
        times = []

        def run() -> None:
            deliver_due(hub_db, HUB_KEY, POLICY, client, clock, random.Random(7))

        run()
        times.append(clock.t)
        [d] = _deliveries(hub_db, hook.id)
        assert (d["state"], d["attempts"], d["last_status_code"]) == ("pending", 1, 500)
        wait = d["next_attempt_at"].timestamp() - clock.t  # type: ignore[union-attr]
        assert 5.0 <= wait <= 10.0  # first retry: half of 10 s plus up to half again
        clock.t += wait - 0.5
        run()  # not due yet: nothing sent
        assert len(receiver.received()) == 1
        clock.t += 0.5
        run()
        times.append(clock.t)
        [d] = _deliveries(hub_db, hook.id)
        wait = d["next_attempt_at"].timestamp() - clock.t  # type: ignore[union-attr]
        assert 7.5 <= wait <= 15.0  # second retry: 20 s capped at 15, jittered
        clock.t += wait
        run()
        times.append(clock.t)

    got = receiver.received()
    assert [r.answered for r in got] == [500, 503, 200]
    assert all(r.signature_ok for r in got)  # checked by the receiver with plain hmac
    assert [r.timestamp for r in got] == [int(t) for t in times]  # signed at each attempt
    assert len({r.body for r in got}) == 1  # the same event each time
    body = json.loads(got[0].body)
    assert body["event"] == "alert.opened" and body["alert"]["rule_id"] == "long_queue"
    assert body["store_id"] == "s1" and body["alert"]["state"] == "open"
    headers = {k.lower(): v for k, v in got[0].headers.items()}
    assert headers["x-retail-event"] == "alert.opened"
    assert headers["x-retail-event-id"] == body["event_id"]
    [d] = _deliveries(hub_db, hook.id)
    assert (d["state"], d["attempts"], d["last_status_code"]) == ("delivered", 3, 200)
    assert headers["x-retail-delivery"] == str(d["id"])
    log = d["attempt_log"]
    assert [(a["attempt"], a["status_code"]) for a in log] == [(1, 500), (2, 503), (3, 200)]  # type: ignore[index]
    assert [a["started_at"].timestamp() for a in log] == times  # type: ignore[index]
    assert _deliveries(hub_db, other.id) == []  # another store's webhook got nothing


def test_a_receiver_down_for_good_ends_failed_after_max_attempts(hub_db: Engine) -> None:
    clock = Clock(1_800_000_000.0)
    dead = f"http://127.0.0.1:{free_port()}/gone"  # nothing listens there
    with hub_db.begin() as conn:
        hook = create_webhook(conn, WebhookCreate(url=dead), HUB_KEY, "ops", clock.t)
    ingest(hub_db, numbered([alert_event("alert_raised", T0 + 1.0)]), at=clock.t)
    with hub_db.begin() as conn:  # a second event for the same dead receiver
        [alert] = list_alerts(conn, AlertFilter(None), 10, 0).items
        acknowledge_alert(conn, alert.id, "ops", 1, clock.t)
    runs = 0
    with httpx.Client() as client:
        while runs < 20:
            report = deliver_due(hub_db, HUB_KEY, POLICY, client, clock)
            runs += 1
            # One dead receiver costs one attempt per run, not one per pending delivery.
            assert report.delivered == 0 and report.retrying + report.failed <= 1
            states = {d["state"] for d in _deliveries(hub_db, hook.id)}
            if states == {"failed"}:
                break
            clock.t += POLICY.backoff_max_s
    assert runs == 2 * POLICY.max_attempts
    for d in _deliveries(hub_db, hook.id):
        assert d["attempts"] == POLICY.max_attempts and d["finished_at"] is not None
        log = d["attempt_log"]
        assert [a["status_code"] for a in log] == [None] * POLICY.max_attempts  # type: ignore[index]
        assert all("ConnectError" in a["error"] for a in log)  # type: ignore[index]
    finished = sorted(d["finished_at"].timestamp() for d in _deliveries(hub_db, hook.id))  # type: ignore[union-attr]
    with hub_db.begin() as conn:  # retention: finished deliveries go, with their attempts
        assert prune_deliveries(conn, finished[0]) == 0
        assert prune_deliveries(conn, finished[-1] + 1) == 2
        assert conn.execute(text("SELECT count(*) FROM webhook_attempts")).scalar() == 0
    assert _deliveries(hub_db, hook.id) == []


def test_secrets_are_derived_not_stored_and_a_changed_key_fails_loudly(hub_db: Engine) -> None:
    with WebhookReceiver() as receiver, httpx.Client() as client:
        with hub_db.begin() as conn:
            hook = create_webhook(conn, WebhookCreate(url=receiver.url), HUB_KEY, "a", 1.0)
            gone = create_webhook(conn, WebhookCreate(url=receiver.url), HUB_KEY, "a", 1.0)
        assert hook.secret.startswith("whsec_") and len(hook.secret) > 40
        assert hook.secret_prefix == hook.secret[: len(hook.secret_prefix)]
        with hub_db.connect() as conn:
            rows = conn.execute(text("SELECT * FROM webhooks")).all()
        dump = " ".join(str(v) for r in rows for v in r)
        assert hook.secret not in dump and hook.secret[6:20] not in dump
        assert HUB_KEY not in dump
        ingest(hub_db, numbered([alert_event("alert_raised", T0 + 1.0)]))  # one per webhook
        with hub_db.begin() as conn:
            assert delete_webhook(conn, gone.id, 2.0) and not delete_webhook(conn, gone.id, 3.0)
        deliver_due(hub_db, "another-hub-key-" + "y" * 24, POLICY, client, Clock(time.time() + 1))
        assert receiver.received() == []  # nothing signed with a wrong secret went out
    [d] = _deliveries(hub_db, hook.id)
    assert d["state"] == "pending" and d["attempts"] == 1
    assert "RETAIL_HUB_WEBHOOK_KEY" in str(d["last_error"])
    with hub_db.connect() as conn:
        states = conn.execute(
            select(WEBHOOK_DELIVERIES.c.state).where(WEBHOOK_DELIVERIES.c.webhook_id == gone.id)
        ).scalars().all()  # fmt: skip
    assert states == [DeliveryState.CANCELLED.value]  # deleting cancelled what was pending
    with pytest.raises(WebhookKeyError, match="RETAIL_HUB_WEBHOOK_KEY"), hub_db.begin() as conn:
        create_webhook(conn, WebhookCreate(url="http://127.0.0.1:9/z"), None, "a", time.time())


def test_private_destinations_are_refused_unless_allowed(hub_db: Engine) -> None:
    """No request forgery into the hub's own network: with private addresses not allowed, a
    webhook to loopback (by IP or by a name that resolves there) is never sent; the attempt
    log says why and how to allow it. Allowed, a name is sent to the address it resolved to,
    with the name kept in the Host header."""
    clock = Clock(1_800_000_000.0)
    strict = dataclasses.replace(POLICY, allow_private=False)
    with WebhookReceiver() as by_ip, WebhookReceiver() as by_name, httpx.Client() as client:
        receivers = (by_ip, by_name)
        urls = (by_ip.url, by_name.url.replace("127.0.0.1", "localhost"))
        hook_ids = []
        with hub_db.begin() as conn:
            for receiver, url in zip(receivers, urls, strict=True):
                hook = create_webhook(conn, WebhookCreate(url=url), HUB_KEY, "ops", clock.t)
                receiver.secret = hook.secret
                hook_ids.append(hook.id)
        ingest(hub_db, numbered([alert_event("alert_raised", T0 + 1.0)]), at=clock.t)
        report = deliver_due(hub_db, HUB_KEY, strict, client, clock)
        assert (report.delivered, report.retrying) == (0, 2)
        hosts = ("127.0.0.1", "localhost")
        for receiver, hook_id, host in zip(receivers, hook_ids, hosts, strict=True):
            assert receiver.received() == []
            [attempt] = _deliveries(hub_db, hook_id)[0]["attempt_log"]  # type: ignore[misc]
            assert f"webhook host {host} resolves to" in attempt["error"]
            assert "RETAIL_HUB_WEBHOOK_ALLOW_PRIVATE" in attempt["error"]

        clock.t += POLICY.backoff_max_s
        report = deliver_due(hub_db, HUB_KEY, POLICY, client, clock)
        assert report.delivered == 2
        for receiver, url in zip(receivers, urls, strict=True):
            [got] = receiver.received()
            assert got.signature_ok
            assert got.headers["Host"] == url.split("/")[2]


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("http://127.0.0.1:8080/x", False),
        ("http://10.1.2.3/x", False),
        ("http://192.168.0.10/x", False),
        ("http://169.254.169.254/latest/meta-data", False),  # cloud metadata
        ("http://100.64.0.1/x", False),  # carrier-grade NAT, shared
        ("http://[::1]/x", False),
        ("http://[::ffff:127.0.0.1]/x", False),  # IPv4-mapped loopback
        ("http://[fd00::1]/x", False),
        ("http://localhost:9000/x", False),
        ("http://8.8.8.8/x", True),
        ("https://[2606:4700:4700::1111]/x", True),
        ("https://hooks.example.com/x", True),  # a name: checked when a delivery resolves it
    ],
)
def test_literal_destinations_are_judged_without_dns(url: str, public: bool) -> None:
    if public:
        check_literal(url)
    else:
        with pytest.raises(DestinationRefused, match="RETAIL_HUB_WEBHOOK_ALLOW_PRIVATE"):
            check_literal(url)


def test_a_pinned_destination_keeps_the_name_for_host_and_tls() -> None:
    pinned = pin("https://localhost:8443/hooks?x=1", allow_private=True)
    assert pinned.url == "https://127.0.0.1:8443/hooks?x=1"
    assert pinned.headers == {"Host": "localhost:8443"}
    assert pinned.extensions == {"sni_hostname": "localhost"}
    with pytest.raises(DestinationRefused, match=r"localhost resolves to .*127\.0\.0\.1"):
        pin("https://localhost:8443/hooks")
