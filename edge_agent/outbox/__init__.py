"""The edge outbox: every record the analytics produce, kept on disk until the hub has it.

``Outbox`` (store.py) is the SQLite file; ``OutboxLimits`` and the drop notices are in
policy.py; how a row stores a record (kind, priority, compressed body) is records.py.
"""

from edge_agent.outbox.errors import OutboxError, OutboxFullError
from edge_agent.outbox.policy import OutboxLimits
from edge_agent.outbox.records import Priority, classify
from edge_agent.outbox.store import Outbox, OutboxStats

__all__ = [
    "Outbox",
    "OutboxError",
    "OutboxFullError",
    "OutboxLimits",
    "OutboxStats",
    "Priority",
    "classify",
]
