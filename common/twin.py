"""The device twin on the wire: what the hub wants a device to run, and what the device did.

The hub owns one *desired state* per device (``GET /api/v1/devices/{id}/desired``); the edge's
reconciler (``edge_agent.twin``) moves towards it and reports every step (``POST
/api/v1/devices/{id}/reported``, and ``.../reported/config`` for layout steps). Where the box
uses MQTT, the desired state also reaches it as the retained message on its ``desired`` topic;
HTTP polling stays as the fallback. A desired model of ``None`` means "run the model of your
own store config", and a desired config of ``None`` "run the layout of your own config file".
Latencies are milliseconds per frame; detection rates are boxes per frame, both measured by the
edge on the same recent frames with the model it ran before and the new one.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from common.store_config.layout import StoreLayout

TWIN_SCHEMA_VERSION = 1


class DesiredModel(BaseModel):
    """A model bundle in the hub's registry that the device should run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the bundle .tar")
    size: int = Field(ge=0, description="bytes of the bundle .tar")
    download_path: str = Field(description="API path of the bundle (HTTP Range supported)")


class DesiredConfig(BaseModel):
    """A version of the store's layout (``common.store_config.layout``) the device should run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1, description="the store's layout version at the hub")
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="sha256 of the layout's canonical JSON"
    )
    layout: StoreLayout


class DesiredState(BaseModel):
    """What the hub wants one device to run. ``revision`` grows with every change.

    Unknown fields are ignored, so a box running older code still follows the parts it knows
    (a rollout of a part it ignores times out at the hub's gate and rolls back)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: int = TWIN_SCHEMA_VERSION
    device_id: str
    store_id: str
    model: DesiredModel | None = Field(
        None, description="null: the model of the device's own store config"
    )
    rollout_id: int | None = Field(None, description="the rollout that set it, if any")
    config: DesiredConfig | None = Field(
        None, description="null: the layout of the device's own store config file"
    )
    config_rollout_id: int | None = Field(
        None, description="the config rollout that set ``config``, if any"
    )
    revision: int = Field(0, ge=0)


class TwinStep(StrEnum):
    """A step of installing a desired model at the edge, in order; ``failed`` ends it."""

    DOWNLOADED = "downloaded"
    VERIFIED = "verified"
    LOADED = "loaded"
    SMOKE_PASSED = "smoke_passed"
    SWITCHED = "switched"
    FAILED = "failed"


class SmokeMetrics(BaseModel):
    """The smoke test: the running model and the candidate on the same recent frames."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    frames: int = Field(ge=1, description="frames both models ran on")
    latency_ms_before: float = Field(ge=0, description="median ms per frame, running model")
    latency_ms_after: float = Field(ge=0, description="median ms per frame, candidate")
    detections_per_frame_before: float = Field(ge=0)
    detections_per_frame_after: float = Field(ge=0)


class ReportedState(BaseModel):
    """One step the device took towards (or away from) a desired model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = TWIN_SCHEMA_VERSION
    rollout_id: int | None = Field(None, description="the desired state's rollout")
    model_name: str | None = Field(description="the model the step is about (null: config's)")
    model_version: str | None
    step: TwinStep
    reason: str | None = Field(None, max_length=2000, description="why it failed")
    metrics: SmokeMetrics | None = None
    running_name: str = Field(description="the model the agent runs after this step")
    running_version: str


class ConfigStep(StrEnum):
    """A step of applying a desired layout at the edge; ``failed`` ends it."""

    VALIDATED = "validated"  # merged with the box's file, it passed the edge's validation
    APPLIED = "applied"  # the agent runs with it and stayed healthy through the trial
    FAILED = "failed"  # refused, or the agent could not run with it: the previous one runs


class ConfigReport(BaseModel):
    """One step the device took towards (or away from) a desired layout."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = TWIN_SCHEMA_VERSION
    rollout_id: int | None = Field(None, description="the desired state's config rollout")
    version: int | None = Field(description="the layout version the step is about (null: file's)")
    step: ConfigStep
    reason: str | None = Field(None, max_length=2000, description="why it failed")
    running_version: int | None = Field(
        description="the layout version the agent runs after this step (null: its file's)"
    )
