"""Sync: outbox records to the hub over MQTT or HTTP, delivered once the hub acks them.

``Syncer`` (syncer.py) is the loop; ``HttpTransport`` and ``MqttTransport`` implement the
``Transport`` protocol (transport.py); ``SyncConfig`` is the config section.
"""

from edge_agent.sync.config import SyncConfig, make_transport
from edge_agent.sync.errors import BatchRejectedError, SyncError, TransportError
from edge_agent.sync.http import HttpTransport
from edge_agent.sync.mqtt import MqttTransport
from edge_agent.sync.syncer import Syncer, SyncResult, full_jitter_delay
from edge_agent.sync.transport import Transport

__all__ = [
    "BatchRejectedError",
    "HttpTransport",
    "MqttTransport",
    "SyncConfig",
    "SyncError",
    "SyncResult",
    "Syncer",
    "Transport",
    "TransportError",
    "full_jitter_delay",
    "make_transport",
]
