"""Hub database tables (SQLModel). Times are UNIX seconds UTC (float), as on the wire.

The ingest service writes these with Core bulk statements (``Model.__table__``), never one ORM
object per record; the API reads them. Alembic's migrations create them: keep
``cloud_hub/migrations/versions`` in step with this module (tests/cloud_hub check that
autogenerate finds no difference).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Index, LargeBinary, Table, Text
from sqlmodel import Field, SQLModel


class ReceivedRecord(SQLModel, table=True):
    """Ledger of every ``(device_id, seq)`` the hub has committed: the exactly-once key.

    A record whose key is already here is a duplicate (acknowledged again, applied never).
    Dead-lettered records are here too, so a re-send does not dead-letter twice.
    """

    __tablename__ = "received_records"

    device_id: str = Field(primary_key=True)
    seq: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    kind: str = Field(description="the record's kind as sent (may be unknown)")
    batch_id: str
    received_at: float = Field(sa_type=Float, description="hub clock, UNIX s")


class DeadLetter(SQLModel, table=True):
    """Something the hub could not ingest, kept with the reason (nothing is dropped silently).

    A record (``seq`` set; ``raw`` is the record as JSON) or a whole payload that did not decode
    (``seq`` null; ``raw`` is its text or base64, cut to a bound; ``raw_size`` is the full size).
    """

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_device_seq", "device_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    device_id: str | None = None
    store_id: str | None = None
    seq: int | None = Field(default=None, sa_type=BigInteger)
    batch_id: str | None = None
    received_at: float = Field(sa_type=Float)
    reason: str = Field(sa_type=Text)
    raw: str = Field(sa_type=Text)
    raw_encoding: str = Field(description="json, text or base64")
    raw_size: int = Field(sa_type=BigInteger, description="bytes of the full payload or record")


class RollupBucket(SQLModel, table=True):
    """One metric of one target over one time bucket, merged over every record that fed it.

    counter: ``count`` events. samples: ``count`` samples with ``sum``/``min``/``max`` and an
    optional histogram (bins ``[-inf, e0), [e0, e1), ... [eN, inf)``).
    """

    __tablename__ = "rollups"
    # Every reader selects a store's rollups of a few metrics over a time range; on
    # PostgreSQL the index carries what they add up, so they read the index alone (0009).
    __table_args__ = (
        Index(
            "ix_rollups_store_metric_bucket",
            "store_id",
            "metric",
            "bucket_start",
            postgresql_include=["camera_id", "target_id", "count", "sum", "min", "max"],
        ),
    )

    store_id: str = Field(primary_key=True)
    camera_id: str = Field(primary_key=True)
    target_id: str = Field(primary_key=True)
    metric: str = Field(primary_key=True)
    bucket_start: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    interval_s: int
    kind: str = Field(description="counter or samples")
    count: int = Field(sa_type=BigInteger)
    sum: float | None = Field(default=None, sa_type=Float)
    min: float | None = Field(default=None, sa_type=Float)
    max: float | None = Field(default=None, sa_type=Float)
    histogram_edges: list[float] | None = Field(default=None, sa_type=JSON)
    histogram: list[int] | None = Field(default=None, sa_type=JSON)
    updated_at: float = Field(sa_type=Float)


class RollupHour(SQLModel, table=True):
    """The merge of every ``rollups`` row of one key whose ``bucket_start`` lies in one UTC
    hour: counts and sums add, min/max take the extreme (``services.rollups_hourly``; ingest
    keeps it equal to the minute rows in the same transaction). Readers use it for whole hours
    inside a bucket (``services.rollup_sums``)."""

    __tablename__ = "rollups_hourly"

    # primary key in the readers' order: a store's metric over a range of hours is one seek
    store_id: str = Field(primary_key=True)
    metric: str = Field(primary_key=True)
    hour_start: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    camera_id: str = Field(primary_key=True)
    target_id: str = Field(primary_key=True)
    count: int = Field(sa_type=BigInteger, description="events or samples in the hour")
    sum: float | None = Field(default=None, sa_type=Float, description="null: counters only")
    min: float | None = Field(default=None, sa_type=Float)
    max: float | None = Field(default=None, sa_type=Float)


class HeatmapBucket(SQLModel, table=True):
    """Person-seconds per grid cell of one camera over one time bucket (row-major, seconds)."""

    __tablename__ = "heatmaps"

    store_id: str = Field(primary_key=True)
    camera_id: str = Field(primary_key=True)
    bucket_start: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    interval_s: int
    grid_w: int
    grid_h: int
    person_seconds: list[float] = Field(sa_type=JSON)
    updated_at: float = Field(sa_type=Float)


class StoredEvent(SQLModel, table=True):
    """An analytics event (line crossing, visit, alert) as the edge reported it."""

    __tablename__ = "events"

    device_id: str = Field(primary_key=True)
    seq: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    kind: str
    store_id: str
    camera_id: str
    target_id: str
    occurred_at: float = Field(sa_type=Float, index=True)
    track_id: int | None = Field(default=None, sa_type=BigInteger)
    payload: dict[str, Any] = Field(sa_type=JSON)


class OutboxDrop(SQLModel, table=True):
    """The edge discarded records on purpose (outbox bounds); which seqs and how many."""

    __tablename__ = "outbox_drops"

    device_id: str = Field(primary_key=True)
    seq: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    reason: str = Field(description="size or age")
    seq_ranges: list[list[int]] = Field(sa_type=JSON, description="inclusive [first, last]")
    counts: dict[str, int] = Field(sa_type=JSON, description="dropped records per kind")
    dropped_at: float = Field(sa_type=Float)


class Device(SQLModel, table=True):
    """Per-device sync totals, updated in each batch's transaction.

    ``last_seen`` is the hub clock at the last batch; ``last_batch_at`` the edge's ``sent_at``.
    ``records_received`` counts distinct records (dead letters included), ``max_seq`` the
    highest seq the hub holds: an edge that lost its outbox resumes above it.
    """

    __tablename__ = "devices"

    device_id: str = Field(primary_key=True)
    store_id: str
    first_seen: float = Field(sa_type=Float)
    last_seen: float = Field(sa_type=Float)
    last_batch_at: float = Field(sa_type=Float)
    records_received: int = Field(sa_type=BigInteger)
    duplicates_received: int = Field(sa_type=BigInteger)
    dead_lettered: int = Field(sa_type=BigInteger)
    dropped_at_edge: int = Field(sa_type=BigInteger)
    max_seq: int = Field(sa_type=BigInteger)


class StoredSnapshot(SQLModel, table=True):
    """A gated image from an edge (alert snapshot or heatmap image): faces and heads were
    hidden by the edge's privacy gate before it left the store. Deleted after the retention
    period (``retail-hub retention``)."""

    __tablename__ = "snapshots"
    __table_args__ = (Index("ix_snapshots_store_taken", "store_id", "taken_at"),)

    device_id: str = Field(primary_key=True)
    seq: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    store_id: str
    camera_id: str
    taken_at: float = Field(sa_type=Float, index=True)
    purpose: str = Field(description="alert_snapshot or heatmap")
    alert_rule: str | None = None
    media_type: str
    width: int
    height: int
    faces_blurred: int
    heads_blurred: int
    sha256: str
    size: int = Field(sa_type=BigInteger, description="bytes of the image")
    data: bytes = Field(sa_type=LargeBinary)
    received_at: float = Field(sa_type=Float)


class Store(SQLModel, table=True):
    """A store as HQ sees it: created on the first batch from one of its devices (name = id,
    time zone UTC) and edited by an HQ admin. ``timezone`` is an IANA name: analytics buckets
    (days, weeks) follow the store's local calendar."""

    __tablename__ = "stores"

    store_id: str = Field(primary_key=True)
    name: str
    timezone: str = Field(description="IANA time zone, e.g. Europe/Paris")
    group_name: str | None = Field(default=None, description="region, banner or other grouping")
    created_at: float = Field(sa_type=Float, description="hub clock, UNIX s")
    updated_at: float = Field(sa_type=Float, description="hub clock, UNIX s")


class ApiKey(SQLModel, table=True):
    """An API key for people and integrations (``Authorization: Bearer KEY``).

    Only ``key_hash`` (sha256 hex of the key) is stored; the key itself is shown once, when it
    is created. ``store_ids`` scopes store managers and integrators; ``all_stores`` is true for
    HQ admins and for integrators created with ``--all-stores``.
    """

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    name: str
    role: str = Field(description="hq_admin, store_manager or integrator")
    key_hash: str = Field(unique=True, description="sha256 hex of the key")
    key_prefix: str = Field(description="first characters of the key, to recognise it")
    all_stores: bool
    store_ids: list[str] = Field(sa_type=JSON)
    created_at: float = Field(sa_type=Float)
    revoked_at: float | None = Field(default=None, sa_type=Float)


class ShelfSlot(SQLModel, table=True):
    """The latest state of one shelf slot, as its edge last reported it (a ``ShelfStatus``).

    Ingest keeps the report with the newest ``observed_at`` (ties: the higher seq), so a late
    or re-sent status never overwrites a newer one. Times are UNIX seconds from the edge's
    clock, except ``updated_at`` (hub clock, when the row was last written).
    """

    __tablename__ = "shelf_slots"

    store_id: str = Field(primary_key=True)
    camera_id: str = Field(primary_key=True)
    shelf_id: str = Field(primary_key=True)
    slot_id: str = Field(primary_key=True)
    device_id: str = Field(description="the edge that reported it")
    seq: int = Field(sa_type=BigInteger, description="the record's seq at that edge")
    state: str = Field(description="stocked, empty or unknown")
    product: str | None = Field(default=None, description="product planned for the slot")
    seen_product: str | None = Field(default=None, description="product the classifier saw")
    state_since: float | None = Field(
        default=None, sa_type=Float, description="when the current state began"
    )
    empty_since: float | None = Field(default=None, sa_type=Float)
    observed_at: float = Field(sa_type=Float, description="the frame this state is from")
    updated_at: float = Field(sa_type=Float, description="hub clock")


class Alert(SQLModel, table=True):
    """An alert at the hub: raised by an edge rule (``source`` edge) or by a hub rule (device
    offline, store threshold), then acknowledged and resolved by people or resolved by its rule.

    ``dedup_key`` names the occurrence (an edge's device, camera, rule and raise time; a hub
    rule's subject and when its condition began), so a replayed raise never opens a second
    alert. ``active_key`` is set while a hub rule's alert is open or acknowledged and cleared
    when it resolves: one live alert per subject (NULLs never collide in a unique index).
    Times are UNIX seconds UTC; ``raised_at`` and ``cleared_at`` come from the clock of whoever
    saw the condition (the edge for edge rules), the others from the hub's.
    """

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_store_raised", "store_id", "raised_at"),)

    id: int | None = Field(default=None, primary_key=True)
    store_id: str
    camera_id: str | None = None
    device_id: str | None = None
    target_id: str | None = None
    source: str = Field(description="edge or hub")
    kind: str = Field(description="edge_rule, device_offline or store_threshold")
    rule_id: str
    metric: str | None = None
    op: str | None = None
    threshold: float | None = Field(default=None, sa_type=Float)
    value: float | None = Field(default=None, sa_type=Float)
    message: str = Field(sa_type=Text)
    state: str = Field(index=True, description="open, acknowledged or resolved")
    raised_at: float = Field(sa_type=Float)
    dedup_key: str = Field(unique=True)
    active_key: str | None = Field(default=None, unique=True)
    cleared_at: float | None = Field(default=None, sa_type=Float)
    acknowledged_at: float | None = Field(default=None, sa_type=Float)
    acknowledged_by: str | None = None
    acknowledged_by_key_id: int | None = None
    resolved_at: float | None = Field(default=None, sa_type=Float)
    resolved_by: str | None = Field(default=None, description="a key's name, edge or hub")
    resolved_by_key_id: int | None = None
    updated_at: float = Field(sa_type=Float)


class AlertThreshold(SQLModel, table=True):
    """A store-level threshold rule the hub evaluates on the stored rollups (e.g. footfall in
    the last hour below 20). ``breached_since`` is set while the condition holds (UNIX s, the
    end of the first window that breached it)."""

    __tablename__ = "alert_thresholds"

    store_id: str = Field(primary_key=True)
    rule_id: str = Field(primary_key=True)
    metric: str
    op: str
    threshold: float = Field(sa_type=Float)
    window_s: int
    active_from_hour: int | None = None
    active_to_hour: int | None = None
    breached_since: float | None = Field(default=None, sa_type=Float)
    created_at: float = Field(sa_type=Float)
    updated_at: float = Field(sa_type=Float)


class DevicePresence(SQLModel, table=True):
    """A device's last MQTT status (``online``/``offline``, retained; the last will says
    offline) and since when the hub has seen it say so (hub clock, UNIX s)."""

    __tablename__ = "device_presence"

    device_id: str = Field(primary_key=True)
    store_id: str
    status: str
    status_at: float = Field(sa_type=Float)
    updated_at: float = Field(sa_type=Float)


class Webhook(SQLModel, table=True):
    """An outgoing webhook endpoint (HQ admins): alert events of one store (``store_id``) or of
    all (null) are POSTed to ``url``, signed with a secret derived from the hub's webhook key
    and ``secret_salt`` (the secret itself is never stored). ``key_check`` identifies the hub
    key the secret came from, so a changed key fails loudly instead of signing wrongly.
    Deleting keeps the row (``deleted_at``) so its delivery log stays for the record."""

    __tablename__ = "webhooks"

    id: int | None = Field(default=None, primary_key=True)
    store_id: str | None = None
    url: str = Field(sa_type=Text)
    events: list[str] = Field(sa_type=JSON)
    description: str | None = None
    secret_salt: str
    secret_prefix: str = Field(description="first characters of the secret, to recognise it")
    key_check: str
    created_at: float = Field(sa_type=Float)
    created_by: str
    deleted_at: float | None = Field(default=None, sa_type=Float)


class WebhookDelivery(SQLModel, table=True):
    """One event to send to one webhook: the exact JSON body, its state (pending, delivered,
    failed, cancelled) and when to try next. Pending rows live here, not in memory, so a hub
    restart loses none; ``lease_until`` keeps two hub processes from sending the same one."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(foreign_key="webhooks.id")
    event: str
    event_id: str
    alert_id: int | None = None
    body: str = Field(sa_type=Text)
    state: str
    attempts: int
    next_attempt_at: float = Field(sa_type=Float)
    lease_until: float | None = Field(default=None, sa_type=Float)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: float = Field(sa_type=Float)
    finished_at: float | None = Field(default=None, sa_type=Float)


class WebhookAttempt(SQLModel, table=True):
    """One HTTP attempt of a delivery: when, the status code (null: no answer), the error and
    how long it took (ms)."""

    __tablename__ = "webhook_attempts"

    delivery_id: int = Field(primary_key=True, foreign_key="webhook_deliveries.id")
    attempt: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    started_at: float = Field(sa_type=Float)
    status_code: int | None = None
    error: str | None = Field(default=None, sa_type=Text)
    duration_ms: float = Field(sa_type=Float)


class JobRun(SQLModel, table=True):
    """The claim of one period of one periodic job: inserted before the job runs, so the
    primary key lets one hub process, and only one, run each period."""

    __tablename__ = "job_runs"

    job: str = Field(primary_key=True)
    period_start: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    runner: str = Field(description="host:pid of the hub process that claimed it")
    claimed_at: float = Field(sa_type=Float)
    finished_at: float | None = Field(default=None, sa_type=Float)
    outcome: str | None = Field(default=None, description="ok or failed; null while running")
    error: str | None = Field(default=None, sa_type=Text)


class EnrollmentToken(SQLModel, table=True):
    """A one-time token that lets one new store box enroll into ``store_id``.

    Only ``token_hash`` (sha256 hex) is kept. ``used_at``/``device_id`` are set by the one
    enrollment that consumed it; an expired or used token enrolls nothing.
    """

    __tablename__ = "enrollment_tokens"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, description="sha256 hex of the token")
    store_id: str
    created_by: str = Field(description="name of the API key (or CLI) that issued it")
    created_at: float = Field(sa_type=Float)
    expires_at: float = Field(sa_type=Float)
    used_at: float | None = Field(default=None, sa_type=Float)
    device_id: str | None = None


class DeviceCredential(SQLModel, table=True):
    """A device's own credential, issued at enrollment: the device is bound to ``store_id``
    and may write only that store's data. The secret itself is never kept: ``secret_hash``
    (sha256 hex) finds the device of an HTTP request, ``broker_password_hash`` lets the broker
    check the same secret as the device's MQTT password."""

    __tablename__ = "device_credentials"

    device_id: str = Field(primary_key=True)
    store_id: str
    secret_hash: str = Field(unique=True, description="sha256 hex of the device secret")
    broker_password_hash: str = Field(
        description="the secret as Mosquitto's password file holds it ($7$ PBKDF2-SHA512): the "
        "device's MQTT password, user name = device id (`retail-hub broker-config`)"
    )
    enrolled_at: float = Field(sa_type=Float)
    revoked_at: float | None = Field(default=None, sa_type=Float)


class ModelBundle(SQLModel, table=True):
    """A signed model bundle in the registry (``POST /api/v1/models``). The ``.tar`` itself is
    stored content-addressed as ``{models_dir}/{sha256}.tar``; ``manifest`` is its signed
    manifest (verified at upload against the hub's trusted keys)."""

    __tablename__ = "model_bundles"

    name: str = Field(primary_key=True)
    version: str = Field(primary_key=True)
    sha256: str = Field(description="sha256 hex of the bundle .tar")
    size: int = Field(sa_type=BigInteger, description="bytes of the bundle .tar")
    key_id: str = Field(description="id of the trusted key that signed it")
    manifest: dict[str, Any] = Field(sa_type=JSON)
    uploaded_by: str
    uploaded_at: float = Field(sa_type=Float)


class Rollout(SQLModel, table=True):
    """A model rollout over stores in waves (``waves``: store ids per wave), gated on the
    edges' reports. ``state``: running, paused, completed, rolled_back or aborted."""

    __tablename__ = "rollouts"

    id: int | None = Field(default=None, primary_key=True)
    model_name: str
    model_version: str
    state: str = Field(index=True)
    waves: list[list[str]] = Field(sa_type=JSON)
    current_wave: int
    wave_started_at: float | None = Field(default=None, sa_type=Float)
    max_latency_ratio: float = Field(sa_type=Float)
    min_detection_ratio: float = Field(sa_type=Float)
    wave_timeout_s: float = Field(sa_type=Float)
    reason: str | None = Field(default=None, sa_type=Text)
    created_by: str
    created_at: float = Field(sa_type=Float)
    updated_at: float = Field(sa_type=Float)
    finished_at: float | None = Field(default=None, sa_type=Float)


class RolloutDevice(SQLModel, table=True):
    """One device of a rollout: its wave, the model it ran before (``from_*``; null: its
    config's) and the last step it reported with the smoke test's numbers."""

    __tablename__ = "rollout_devices"

    rollout_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    device_id: str = Field(primary_key=True)
    store_id: str
    wave: int
    from_name: str | None = None
    from_version: str | None = None
    step: str = Field(description="pending, a TwinStep, or reverted")
    reason: str | None = Field(default=None, sa_type=Text)
    latency_ms_before: float | None = Field(default=None, sa_type=Float)
    latency_ms_after: float | None = Field(default=None, sa_type=Float)
    detections_before: float | None = Field(default=None, sa_type=Float)
    detections_after: float | None = Field(default=None, sa_type=Float)
    updated_at: float = Field(sa_type=Float)


class RolloutEvent(SQLModel, table=True):
    """The audit trail of a rollout: who (a key's name, a device id, or ``hub``) did what,
    when (hub clock, UNIX s)."""

    __tablename__ = "rollout_events"
    __table_args__ = (Index("ix_rollout_events_rollout", "rollout_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    rollout_id: int
    at: float = Field(sa_type=Float)
    actor: str
    action: str
    detail: str | None = Field(default=None, sa_type=Text)


class DeviceTwin(SQLModel, table=True):
    """A device's desired model (null name: its config's) and store layout (null version: its
    file's), and what it last reported of each. ``revision`` grows on every desired change."""

    __tablename__ = "device_twins"

    device_id: str = Field(primary_key=True)
    store_id: str
    desired_name: str | None = None
    desired_version: str | None = None
    desired_rollout_id: int | None = None
    revision: int
    desired_at: float = Field(sa_type=Float)
    reported_name: str | None = None
    reported_version: str | None = None
    reported_step: str | None = None
    reported_at: float | None = Field(default=None, sa_type=Float)
    desired_config_version: int | None = Field(
        default=None, description="store_configs.version of the device's store; null: its file's"
    )
    desired_config_rollout_id: int | None = None
    reported_config_version: int | None = Field(
        default=None, description="the layout version the device says it runs (null: its file's)"
    )
    reported_config_step: str | None = None
    reported_config_rollout_id: int | None = None
    reported_config_at: float | None = Field(default=None, sa_type=Float)
    published_revision: int | None = Field(
        default=None,
        description="the revision the MQTT broker retains on the device's desired topic (the "
        "broker acknowledged it); null: none retained",
    )


class StoreConfig(SQLModel, table=True):
    """One version of a store's layout (``common.store_config.layout.StoreLayout``), numbered
    1, 2, 3... per store and never changed once stored. ``layout`` is the validated layout as
    JSON (defaults filled in); ``sha256`` hashes its canonical JSON."""

    __tablename__ = "store_configs"

    store_id: str = Field(primary_key=True)
    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    layout: dict[str, Any] = Field(sa_type=JSON)
    sha256: str
    note: str | None = Field(default=None, sa_type=Text)
    created_by: str
    created_at: float = Field(sa_type=Float)


class ConfigRollout(SQLModel, table=True):
    """A store layout version rolled out to the store's devices: the canary device, then the
    rest (``waves``: device ids per wave). ``state``: running, completed, rolled_back or
    aborted. ``running_store`` is the store id while running, null after: its unique index
    lets one config rollout run per store."""

    __tablename__ = "config_rollouts"
    __table_args__ = (Index("ix_config_rollouts_store", "store_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    store_id: str
    version: int
    from_version: int | None = Field(default=None, description="the store's current version")
    state: str = Field(index=True)
    running_store: str | None = Field(default=None, unique=True)
    waves: list[list[str]] = Field(sa_type=JSON)
    current_wave: int
    wave_started_at: float | None = Field(default=None, sa_type=Float)
    wave_timeout_s: float = Field(sa_type=Float)
    reason: str | None = Field(default=None, sa_type=Text)
    created_by: str
    created_at: float = Field(sa_type=Float)
    updated_at: float = Field(sa_type=Float)
    finished_at: float | None = Field(default=None, sa_type=Float)


class ConfigRolloutDevice(SQLModel, table=True):
    """One device of a config rollout: its wave, the layout version it was to run before
    (``from_version``; null: its file's) and the last step it reported for the rollout's."""

    __tablename__ = "config_rollout_devices"

    rollout_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    device_id: str = Field(primary_key=True)
    wave: int
    from_version: int | None = None
    step: str = Field(description="pending, or a ConfigStep")
    reason: str | None = Field(default=None, sa_type=Text)
    updated_at: float = Field(sa_type=Float)


class ConfigRolloutEvent(SQLModel, table=True):
    """The audit trail of a config rollout: who (a key's name, ``device:ID`` or ``hub``) did
    what, when (hub clock, UNIX s)."""

    __tablename__ = "config_rollout_events"
    __table_args__ = (Index("ix_config_rollout_events_rollout", "rollout_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    rollout_id: int
    at: float = Field(sa_type=Float)
    actor: str
    action: str
    detail: str | None = Field(default=None, sa_type=Text)


class VideoUpload(SQLModel, table=True):
    """A recorded clip uploaded for processing (``POST /api/v1/video/upload``). The file is
    ``{video_data_dir}/uploads/{id}{ext}``: a random name, never the client's. ``deleted_at`` is
    set when the file is removed (after its job, or on the retention age); the row stays."""

    __tablename__ = "video_uploads"

    id: str = Field(primary_key=True, description="random hex id, also the file's name")
    store_id: str
    container: str = Field(description="mp4, avi or matroska, from the file's first bytes")
    size: int = Field(sa_type=BigInteger, description="bytes of the clip")
    sha256: str = Field(description="sha256 hex of the clip")
    recorded_at: float = Field(sa_type=Float, description="UNIX s of the clip's first frame")
    created_by: str = Field(description="name of the API key that uploaded it")
    created_at: float = Field(sa_type=Float)
    deleted_at: float | None = Field(default=None, sa_type=Float)


class VideoJob(SQLModel, table=True):
    """A hub-side processing job of one uploaded clip: the edge pipeline run by a job worker as
    the store's virtual upload device (``device_id``). ``state``: queued, running, succeeded or
    failed. A runner holds a running job while ``lease_until`` (hub clock) is ahead; a job whose
    lease ran out is taken again (``attempts`` counts the takes). ``processed_at`` is set once
    the clip was processed into the job's outbox, so a retry only syncs what is left."""

    __tablename__ = "video_jobs"
    __table_args__ = (Index("ix_video_jobs_store", "store_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    upload_id: str = Field(unique=True, foreign_key="video_uploads.id")
    store_id: str
    camera_id: str
    camera: dict[str, Any] = Field(sa_type=JSON, description="the camera config as requested")
    state: str = Field(index=True)
    progress: float = Field(sa_type=Float, description="0-1")
    error: str | None = Field(default=None, sa_type=Text)
    attempts: int
    runner: str | None = Field(default=None, description="host:pid of the runner holding it")
    lease_until: float | None = Field(default=None, sa_type=Float)
    device_id: str | None = None
    records_appended: int | None = Field(default=None, sa_type=BigInteger)
    records_delivered: int | None = Field(default=None, sa_type=BigInteger)
    report: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    created_by: str
    created_at: float = Field(sa_type=Float)
    started_at: float | None = Field(default=None, sa_type=Float)
    processed_at: float | None = Field(default=None, sa_type=Float)
    finished_at: float | None = Field(default=None, sa_type=Float)
    updated_at: float = Field(sa_type=Float)


def table(model: type[SQLModel]) -> Table:
    """The Core ``Table`` of a table model (for bulk statements)."""
    t = model.__table__  # type: ignore[attr-defined]
    assert isinstance(t, Table)
    return t


RECEIVED: Table = table(ReceivedRecord)
DEAD_LETTERS: Table = table(DeadLetter)
ROLLUPS: Table = table(RollupBucket)
ROLLUPS_HOURLY: Table = table(RollupHour)
HEATMAPS: Table = table(HeatmapBucket)
EVENTS: Table = table(StoredEvent)
OUTBOX_DROPS: Table = table(OutboxDrop)
DEVICES: Table = table(Device)
STORES: Table = table(Store)
API_KEYS: Table = table(ApiKey)
SNAPSHOTS: Table = table(StoredSnapshot)
ALERTS: Table = table(Alert)
ALERT_THRESHOLDS: Table = table(AlertThreshold)
DEVICE_PRESENCE: Table = table(DevicePresence)
WEBHOOKS: Table = table(Webhook)
WEBHOOK_DELIVERIES: Table = table(WebhookDelivery)
WEBHOOK_ATTEMPTS: Table = table(WebhookAttempt)
JOB_RUNS: Table = table(JobRun)
SHELF_SLOTS: Table = table(ShelfSlot)
ENROLLMENT_TOKENS: Table = table(EnrollmentToken)
DEVICE_CREDENTIALS: Table = table(DeviceCredential)
MODEL_BUNDLES: Table = table(ModelBundle)
ROLLOUTS: Table = table(Rollout)
ROLLOUT_DEVICES: Table = table(RolloutDevice)
ROLLOUT_EVENTS: Table = table(RolloutEvent)
DEVICE_TWINS: Table = table(DeviceTwin)
STORE_CONFIGS: Table = table(StoreConfig)
CONFIG_ROLLOUTS: Table = table(ConfigRollout)
CONFIG_ROLLOUT_DEVICES: Table = table(ConfigRolloutDevice)
CONFIG_ROLLOUT_EVENTS: Table = table(ConfigRolloutEvent)
VIDEO_UPLOADS: Table = table(VideoUpload)
VIDEO_JOBS: Table = table(VideoJob)

__all__ = [
    "ALERTS",
    "ALERT_THRESHOLDS",
    "API_KEYS",
    "CONFIG_ROLLOUTS",
    "CONFIG_ROLLOUT_DEVICES",
    "CONFIG_ROLLOUT_EVENTS",
    "DEAD_LETTERS",
    "DEVICES",
    "DEVICE_CREDENTIALS",
    "DEVICE_PRESENCE",
    "DEVICE_TWINS",
    "ENROLLMENT_TOKENS",
    "EVENTS",
    "HEATMAPS",
    "JOB_RUNS",
    "MODEL_BUNDLES",
    "OUTBOX_DROPS",
    "RECEIVED",
    "ROLLOUTS",
    "ROLLOUT_DEVICES",
    "ROLLOUT_EVENTS",
    "ROLLUPS",
    "ROLLUPS_HOURLY",
    "SHELF_SLOTS",
    "SNAPSHOTS",
    "STORE_CONFIGS",
    "VIDEO_JOBS",
    "VIDEO_UPLOADS",
    "WEBHOOKS",
    "WEBHOOK_ATTEMPTS",
    "WEBHOOK_DELIVERIES",
    "Alert",
    "AlertThreshold",
    "ConfigRollout",
    "ConfigRolloutDevice",
    "ConfigRolloutEvent",
    "DeadLetter",
    "Device",
    "DevicePresence",
    "DeviceTwin",
    "HeatmapBucket",
    "JobRun",
    "ModelBundle",
    "OutboxDrop",
    "ReceivedRecord",
    "Rollout",
    "RolloutDevice",
    "RolloutEvent",
    "RollupBucket",
    "RollupHour",
    "ShelfSlot",
    "StoreConfig",
    "StoredEvent",
    "StoredSnapshot",
    "VideoJob",
    "VideoUpload",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
]
