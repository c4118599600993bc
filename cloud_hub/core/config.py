"""Hub settings from the environment: one pydantic-settings object, validated once at start.

``DATABASE_URL`` is read without a prefix (the name every PaaS and compose file uses); every
other setting is ``RETAIL_HUB_<FIELD>`` (for example ``RETAIL_HUB_MQTT_HOST``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.sync import MAX_BATCH_BYTES, MAX_COMPRESSED_BATCH_BYTES
from common.topics import HUB_SHARE_GROUP

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class HubSettings(BaseSettings):
    """Everything the hub API, the MQTT ingest worker and ``retail-hub migrate`` read."""

    model_config = SettingsConfigDict(
        env_prefix="RETAIL_HUB_", validate_by_name=True, validate_by_alias=True, extra="ignore"
    )

    database_url: str = Field(
        "sqlite:///./hub.db",
        validation_alias="DATABASE_URL",
        description=(
            "SQLAlchemy URL of the hub database (env DATABASE_URL, no prefix). SQLite "
            "(sqlite:///path.db) needs nothing installed; PostgreSQL for production: "
            "postgresql+psycopg://user:pass@host:5432/db (postgresql:// and postgres:// are "
            "taken to mean psycopg 3, the only PostgreSQL driver the hub ships)."
        ),
    )
    mqtt_host: str = Field("localhost", description="MQTT broker host name or address")
    mqtt_port: int = Field(1883, ge=1, le=65535, description="MQTT broker TCP port")
    mqtt_username: str | None = Field(None, description="MQTT user name; None = anonymous")
    mqtt_password: SecretStr | None = Field(None, description="MQTT password (with username)")
    mqtt_tls_ca_file: Path | None = Field(
        None, description="CA bundle (PEM) that signed the broker's certificate; set = use TLS"
    )
    mqtt_tls_cert_file: Path | None = Field(
        None, description="client certificate (PEM) for mutual TLS; needs mqtt_tls_key_file"
    )
    mqtt_tls_key_file: Path | None = Field(None, description="client private key (PEM)")
    mqtt_keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keepalive, seconds")
    mqtt_session_expiry_s: int = Field(
        7 * 24 * 3600,
        ge=60,
        description=(
            "seconds the broker keeps a stopped worker's session and queued batches; a worker "
            "that stays away longer than this loses what the broker queued for it"
        ),
    )
    mqtt_share_group: str = Field(
        HUB_SHARE_GROUP, pattern=r"^[A-Za-z0-9_-]+$", description="shared-subscription group"
    )
    mqtt_receive_maximum: int = Field(
        16, ge=1, le=65535, description="batches a worker holds unacknowledged at once"
    )
    worker_name: str = Field(
        "1",
        pattern=r"^[A-Za-z0-9_-]{1,40}$",
        description=(
            "stable name of this MQTT ingest worker; client id hub-ingest-{name}. Keep it the "
            "same across restarts so the broker hands back the worker's queued batches"
        ),
    )
    max_body_bytes: int = Field(
        MAX_COMPRESSED_BATCH_BYTES,
        gt=0,
        description="largest HTTP ingest body or MQTT payload accepted as sent, bytes",
    )
    max_batch_bytes: int = Field(
        MAX_BATCH_BYTES, gt=0, description="largest batch accepted once decompressed, bytes"
    )
    db_retry_max_s: float = Field(
        30.0, gt=0, description="longest wait between retries while the database is down, s"
    )
    device_auth: Literal["required", "open"] = Field(
        "required",
        description=(
            "required: every ingest and device call needs the device secret from enrollment "
            "(`retail-edge enroll`), and a device writes only its own store's data. open: a "
            "call without one is trusted to be the device its batch names (development and "
            "closed test networks only; the hub logs a warning at start)"
        ),
    )
    enrollment_token_ttl_s: float = Field(
        24 * 3600.0,
        gt=0,
        le=30 * 24 * 3600.0,
        description="default lifetime of enrollment tokens, s",
    )
    max_request_bytes: int = Field(
        64 * 1024,
        gt=0,
        description="largest request body of every API route but telemetry ingest, bytes",
    )
    rate_limit_per_minute: int = Field(
        1200,
        ge=0,
        description="requests a minute per caller (API key, device secret or address) on "
        "every route but health and ingest, per API process; 0: no limit",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="browser origins allowed to call the API (CORS), e.g. "
        '["https://bi.example.com"]; empty: none (the built-in dashboard is same-origin)',
    )
    ready_checks: tuple[Literal["database", "broker"], ...] = Field(
        ("database",),
        description="what /api/v1/health/ready checks: the database, and the MQTT broker "
        'where the deployment has one (["database", "broker"])',
    )
    jwt_issuer: str | None = Field(
        None, description="people's JWTs: the identity provider's issuer (iss), required"
    )
    jwt_audience: str | None = Field(None, description="people's JWTs: this hub's audience (aud)")
    jwt_public_key_file: Path | None = Field(
        None, description="people's JWTs: the provider's public key (PEM; RS256, ES256, EdDSA)"
    )
    jwt_secret: SecretStr | None = Field(
        None, description="people's JWTs signed HS256 with a shared secret (instead of a key file)"
    )
    worker_metrics_port: int | None = Field(
        None, ge=1, le=65535, description="`retail-hub worker` serves /metrics on this port"
    )
    worker_metrics_addr: str = Field(
        "127.0.0.1", description="address the worker's metrics listen on (0.0.0.0: all)"
    )
    log_level: LogLevel = Field("INFO", description="logging level of hub processes")
    snapshot_retention_days: float = Field(
        30.0, gt=0, description="snapshots (gated images) older than this are deleted"
    )
    rollup_retention_days: float = Field(
        0.0,
        ge=0,
        description="minute rollups and their hourly sums older than this are deleted, whole "
        "UTC hours at a time (0: kept for ever)",
    )
    retention_interval_s: float = Field(
        3600.0,
        ge=0,
        description="how often the retention job runs (0: never; then run "
        "`retail-hub retention` from a timer)",
    )
    run_jobs: bool = Field(
        True,
        description="run the periodic jobs (retention, device offline check, store "
        "thresholds, webhook delivery) in this process; each runs once per period across "
        "every hub process that has this on",
    )
    job_runs_keep_days: float = Field(
        7.0, gt=0, description="the job_runs ledger keeps this many days (pruned by retention)"
    )
    offline_after_s: float = Field(
        300.0,
        gt=0,
        description="a device that sent no batch for this long is offline (alert device_offline)",
    )
    offline_check_interval_s: int = Field(
        30, ge=0, description="how often the device offline check runs, s (0: never)"
    )
    threshold_interval_s: int = Field(
        60, ge=0, description="how often store threshold rules are evaluated, s (0: never)"
    )
    threshold_lag_s: float = Field(
        120.0,
        ge=0,
        description="threshold windows end this long before now: the edges' last minutes of "
        "rollups may still be on their way",
    )
    webhook_key: SecretStr | None = Field(
        None,
        min_length=32,
        description="hub secret (32+ characters) from which each webhook's signing secret is "
        "derived; the database holds only a random salt per webhook. Webhooks cannot be "
        "created without it; changing it invalidates every webhook's secret",
    )
    webhook_interval_s: int = Field(
        5, ge=0, description="how often pending webhook deliveries are sent, s (0: never)"
    )
    webhook_max_attempts: int = Field(
        8, ge=1, le=100, description="attempts per webhook delivery before it is marked failed"
    )
    webhook_backoff_s: float = Field(
        10.0, gt=0, description="delay before the first retry, s (doubles each time, jittered)"
    )
    webhook_backoff_max_s: float = Field(
        3600.0, gt=0, description="longest delay between two attempts of a delivery, s"
    )
    alert_keep_days: float = Field(
        400.0,
        gt=0,
        description="resolved alerts are deleted this long after they were resolved, days "
        "(open and acknowledged ones stay)",
    )
    webhook_log_keep_days: float = Field(
        30.0, gt=0, description="finished webhook deliveries and their attempts are kept this long"
    )
    webhook_timeout_s: float = Field(
        10.0, gt=0, le=120, description="how long one webhook request may take, s"
    )
    webhook_allow_private: bool = Field(
        False,
        description="let webhooks reach loopback, private and link-local addresses (receivers "
        "on the internal network; development). Off: only public addresses, checked at each "
        "delivery against the address actually connected to (no request forgery into the "
        "hub's own network)",
    )
    models_dir: Path = Field(
        Path("./hub-models"),
        description="where uploaded model bundles are kept, one {sha256}.tar each (share it "
        "between API replicas: a volume, or a mounted bucket)",
    )
    trusted_keys_dir: Path | None = Field(
        None,
        description="folder of Ed25519 public keys (*.pub) a model bundle may be signed with; "
        "no bundle can be uploaded without it",
    )
    model_max_bytes: int = Field(
        512 * 1024 * 1024, gt=0, description="largest model bundle upload, bytes"
    )
    rollout_gate_interval_s: int = Field(
        10, ge=0, description="how often rollout wave gates are evaluated, s (0: only on reports)"
    )
    desired_publish_interval_s: int = Field(
        2,
        ge=0,
        description="how often `retail-hub worker` publishes changed desired states as the "
        "devices' retained MQTT `desired` messages, s (0: never; boxes then follow by HTTP "
        "polling only)",
    )

    video_data_dir: Path = Field(
        Path("./hub-data/video"),
        description="where uploaded clips wait for their job and jobs keep their work files; "
        "the API processes that take uploads and the workers that run jobs must share it",
    )
    video_max_upload_bytes: int = Field(
        2 * 1024**3, gt=0, description="largest clip `POST /api/v1/video/upload` accepts, bytes"
    )
    video_upload_retention_s: float = Field(
        24 * 3600.0,
        gt=0,
        description="an uploaded clip no job has taken is deleted after this long, s (clips are "
        "deleted as soon as their job ends, success or failure)",
    )
    video_retention_interval_s: int = Field(
        600, ge=0, description="how often expired clips and job leftovers are removed, s (0: never)"
    )
    video_jobs: bool = Field(
        True, description="`retail-hub worker` runs uploaded-clip processing jobs"
    )
    video_jobs_in_serve: bool = Field(
        False, description="`retail-hub serve` also runs uploaded-clip processing jobs"
    )
    video_hub_url: str = Field(
        "http://127.0.0.1:8000",
        pattern=r"^https?://",
        description="base URL of the hub API as seen from the job worker: a job's virtual "
        "device enrolls and syncs its results through it, like a store box",
    )
    video_model: Path | None = Field(
        None,
        description="detector model the jobs run (ONNX, OpenVINO .xml or a signed bundle, as "
        "an edge config's model.path); jobs fail until it is set",
    )
    video_model_trusted_keys: Path | None = Field(
        None, description="folder of Ed25519 public keys when video_model is a signed bundle"
    )
    video_face_model: Path | None = Field(
        None,
        description="YuNet face model: with it, jobs also send gated alert snapshots and "
        "heatmap images, as an edge does; without it, numbers only",
    )
    video_edge_python: Path | None = Field(
        None,
        description="Python interpreter that has the edge agent installed (runs `-m "
        "edge_agent.cli`); default: the hub's own",
    )
    video_poll_s: float = Field(
        2.0, gt=0, le=60, description="how often an idle job runner looks for queued jobs, s"
    )
    video_job_lease_s: float = Field(
        60.0,
        ge=5,
        description="a running job's lease, renewed every third of it; a job whose runner "
        "stopped renewing is taken again after this long, s",
    )
    video_job_max_attempts: int = Field(
        3, ge=1, le=20, description="takes of a job (runners that died on it) before it fails"
    )
    video_job_timeout_s: float = Field(
        4 * 3600.0, gt=0, description="longest one edge step of a job may run, s"
    )

    @field_validator("database_url")
    @classmethod
    def _psycopg3(cls, url: str) -> str:
        for legacy in ("postgres://", "postgresql://"):
            if url.startswith(legacy):
                return "postgresql+psycopg://" + url[len(legacy) :]
        if not url.startswith(("sqlite://", "postgresql+psycopg://")):
            raise ValueError(
                f"DATABASE_URL {url!r} is neither SQLite (sqlite:///hub.db) nor PostgreSQL "
                "through psycopg 3 (postgresql+psycopg://user@host/db)"
            )
        return url

    @model_validator(mode="after")
    def _tls_pairs(self) -> HubSettings:
        if (self.mqtt_tls_cert_file is None) != (self.mqtt_tls_key_file is None):
            raise ValueError(
                "RETAIL_HUB_MQTT_TLS_CERT_FILE and RETAIL_HUB_MQTT_TLS_KEY_FILE come together"
            )
        jwt_keys = (self.jwt_public_key_file is not None) + (self.jwt_secret is not None)
        if jwt_keys > 1:
            raise ValueError(
                "set RETAIL_HUB_JWT_PUBLIC_KEY_FILE or RETAIL_HUB_JWT_SECRET, not both"
            )
        if jwt_keys and (not self.jwt_issuer or not self.jwt_audience):
            raise ValueError("JWTs need RETAIL_HUB_JWT_ISSUER and RETAIL_HUB_JWT_AUDIENCE")
        if self.mqtt_password is not None and self.mqtt_username is None:
            raise ValueError("RETAIL_HUB_MQTT_PASSWORD is set but RETAIL_HUB_MQTT_USERNAME is not")
        return self


def configure_logging(level: LogLevel) -> None:
    """Log to stderr with time, level, logger and message (hub processes call this once)."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
