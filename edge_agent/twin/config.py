"""The ``twin:`` section of the store config: how the box follows the hub's desired state."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class TwinConfig(BaseModel):
    """Model and layout rollouts from the hub: poll the desired state; install, smoke-test and
    switch models; validate, try and keep store layouts (``edge_agent.twin.layout_follower``).

    Needs the hub's address (``hub_url`` or ``sync.hub_url``), this box's credentials
    (``sync.credentials_file`` from ``retail-edge enroll``, or ``RETAIL_EDGE_HUB_TOKEN``) and
    ``model.trusted_keys``: only bundles signed by a trusted key are ever loaded.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    hub_url: str | None = Field(None, description="the hub's base URL; default sync.hub_url")
    poll_interval_s: float = Field(30.0, gt=0, description="seconds between desired-state polls")
    staging_dir: Path = Field(
        Path("twin"),
        description="where downloaded bundles are kept (relative to the config file); the "
        "running and the previous bundle stay here for restarts and switching back, and the "
        "applied store layout (applied-layout.json)",
    )
    smoke_frames: int = Field(
        4, ge=1, le=64, description="latest frames the smoke test runs both models on"
    )
    smoke_wait_s: float = Field(
        60.0, gt=0, description="how long the smoke test waits for that many frames"
    )
    request_timeout_s: float = Field(30.0, gt=0, description="HTTP timeout per request, s")
    config_trial_s: float = Field(
        30.0,
        gt=0,
        description="seconds a rolled-out store layout runs on trial: every step without an "
        "error and at least one enabled camera streaming, or the previous layout runs again",
    )
