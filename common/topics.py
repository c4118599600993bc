"""MQTT topics shared by the edge agent and the hub.

``retail/v1/{store}/{device}/`` is each device's prefix; the broker's ACL lets a device publish
only under its own prefix. ``ack`` is ours beyond ARCHITECTURE.md's list: the hub's
per-batch acknowledgement after its database commit, which the edge waits for before it marks
records delivered (QoS 1 PUBACK only says the broker has the message).
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "retail/v1"
HUB_SHARE_GROUP = "hub"


@dataclass(frozen=True, slots=True)
class DeviceTopics:
    """The topics of one device."""

    store_id: str
    device_id: str

    @property
    def base(self) -> str:
        """``retail/v1/{store}/{device}``."""
        return f"{PREFIX}/{self.store_id}/{self.device_id}"

    @property
    def telemetry(self) -> str:
        """Batches from the edge (QoS 1)."""
        return f"{self.base}/telemetry"

    @property
    def ack(self) -> str:
        """BatchAck / BatchRejected from the hub (QoS 1)."""
        return f"{self.base}/ack"

    @property
    def status(self) -> str:
        """``online`` / ``offline`` (retained; the last will sets ``offline``)."""
        return f"{self.base}/status"

    @property
    def state(self) -> str:
        """Reported state (retained)."""
        return f"{self.base}/state"

    @property
    def desired(self) -> str:
        """Desired state from the hub (retained)."""
        return f"{self.base}/desired"


def hub_telemetry_subscription(group: str = HUB_SHARE_GROUP) -> str:
    """The shared subscription hub ingest workers use to split telemetry between them."""
    return f"$share/{group}/{PREFIX}/+/+/telemetry"


def parse_device_topic(topic: str) -> tuple[str, str, str]:
    """``(store_id, device_id, leaf)`` of a ``retail/v1/{store}/{device}/{leaf}`` topic.

    Raises:
        ValueError: the topic is not under ``retail/v1`` with exactly three more levels.
    """
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != PREFIX:
        raise ValueError(f"not a device topic: {topic!r}")
    return parts[2], parts[3], parts[4]
