"""Build the reconciler that ``retail-edge run`` starts beside the agent (models, and with a
``LayoutAtStart`` the store layout too)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.errors import ConfigError
from edge_agent.twin.client import TwinClient
from edge_agent.twin.layout_follower import LayoutAtStart, LayoutFollower
from edge_agent.twin.reconciler import Reconciler

if TYPE_CHECKING:
    from edge_agent.agent import EdgeAgent
    from edge_agent.config import StoreConfig
    from edge_agent.detect.detector import Detector
    from edge_agent.settings import EdgeSecrets


def open_reconciler(
    config: StoreConfig,
    agent: EdgeAgent,
    secrets: EdgeSecrets | None = None,
    layouts: LayoutAtStart | None = None,
) -> Reconciler | None:
    """The reconciler of ``config.twin`` for ``agent`` (not started), or None when off. With
    ``layouts`` (``layout_at_start``: what ``retail-edge run`` started with) it also follows
    the desired store layout; ``config`` is then the config the agent started with.

    Raises:
        ConfigError: no hub URL, no credentials, or no trusted keys.
    """
    from edge_agent.process import open_detector
    from edge_agent.settings import EdgeSecrets
    from edge_agent.sync.enroll import load_credentials

    twin = config.twin
    if twin is None or not twin.enabled:
        return None
    hub_url = twin.hub_url or (config.sync.hub_url if config.sync is not None else None)
    if hub_url is None:
        raise ConfigError("twin: no hub URL; set twin.hub_url or sync.hub_url")
    headers = (secrets or EdgeSecrets()).http_headers()
    creds_file = config.sync.credentials_file if config.sync is not None else None
    if not headers and creds_file is not None:
        headers = load_credentials(creds_file, config.store_id, config.device_id).http_headers()
    if not headers:
        raise ConfigError(
            "twin: no device credentials; run `retail-edge enroll` (sync.credentials_file)"
        )
    cameras = sum(c.enabled for c in config.cameras)

    def opener(path: Path) -> Detector:
        model = config.model.model_copy(update={"path": path, "manifest": None})
        return open_detector(
            config.model_copy(update={"model": model}), throughput=True, max_batch=cameras
        )

    client = TwinClient(hub_url, config.device_id, headers, twin.request_timeout_s)
    follower = None
    if layouts is not None:
        follower = LayoutFollower(layouts, agent, client, twin.config_trial_s)
    return Reconciler(config, twin, agent.slot, agent.recent_frames, client, opener, follower)
