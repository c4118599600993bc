"""From raw bytes (an HTTP body or an MQTT payload) to a committed ack or a rejection.

The one entry point both transports use. The answer is returned only after the transaction
commits, so an ack never names a record the database does not hold. Database outages
(``sqlalchemy.exc.OperationalError``) propagate: the transport answers "retry later" and
acknowledges nothing.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from cloud_hub.core.metrics import observe_ack, observe_rejected
from cloud_hub.services.dead_letters import store_payload_dead_letter
from cloud_hub.services.ingest import ingest_batch
from common.sync import (
    MAX_BATCH_BYTES,
    BatchAck,
    BatchDecodeError,
    BatchRejected,
    decode_batch_checked,
)
from common.topics import DeviceTopics

log = logging.getLogger(__name__)

DEADLOCK_RETRIES = 3
_PG_DEADLOCK = "40P01"
_PG_SERIALIZATION = "40001"


def ingest_payload(
    engine: Engine,
    payload: bytes,
    received_at: float,
    *,
    source: DeviceTopics | None = None,
    max_batch_bytes: int = MAX_BATCH_BYTES,
) -> BatchAck | BatchRejected:
    """Decode and ingest one payload in one transaction; the ack once committed.

    ``source`` is the device the transport says sent it (an MQTT topic's store and device);
    a batch naming another device is rejected. A payload that is not a readable batch is kept
    as a dead letter and answered with ``BatchRejected``. ``received_at`` is UNIX seconds.

    A batch holding a value the database refuses (an integer beyond its range) is kept whole
    as a dead letter and rejected, so it cannot block the device's outbox by failing for ever.

    Raises:
        sqlalchemy.exc.OperationalError: the database is unreachable (nothing was committed).
    """
    try:
        batch, strict_json = decode_batch_checked(payload, max_batch_bytes)
    except BatchDecodeError as exc:
        return reject_payload(engine, payload, exc.reason, received_at, exc.batch_id, source)
    if source is not None and (source.store_id, source.device_id) != (
        batch.store_id,
        batch.device_id,
    ):
        reason = (
            f"batch from store {batch.store_id!r} device {batch.device_id!r} was sent on the "
            f"topic or with the credentials of store {source.store_id!r} device "
            f"{source.device_id!r}"
        )
        return reject_payload(engine, payload, reason, received_at, batch.batch_id, source)
    for attempt in range(1, DEADLOCK_RETRIES + 1):
        try:
            with engine.begin() as conn:
                ack = ingest_batch(conn, batch, received_at, strict_json=strict_json)
            observe_ack(batch, ack, received_at)
            return ack
        except (DataError, IntegrityError, OverflowError) as exc:
            # A value the database cannot hold (a seq beyond BIGINT, say). Retrying cannot
            # help and would block the device's outbox for ever: keep the payload instead.
            detail = exc.orig if isinstance(exc, DBAPIError) else exc
            reason = f"the database refused the batch: {' '.join(str(detail).split())}"
            log.error("device %s batch %s: %s", batch.device_id, batch.batch_id, reason)
            return reject_payload(engine, payload, reason, received_at, batch.batch_id, source)
        except DBAPIError as exc:
            code = getattr(exc.orig, "sqlstate", None)
            if code not in (_PG_DEADLOCK, _PG_SERIALIZATION) or attempt == DEADLOCK_RETRIES:
                raise
            log.warning(
                "device %s batch %s: %s on attempt %d, retrying the transaction",
                batch.device_id, batch.batch_id, code, attempt,
            )  # fmt: skip
    raise AssertionError("unreachable")  # the loop returns or raises


def reject_payload(
    engine: Engine,
    payload: bytes,
    reason: str,
    received_at: float,
    batch_id: str | None,
    source: DeviceTopics | None,
) -> BatchRejected:
    """Keep ``payload`` as a dead letter with ``reason`` (committed) and say so.

    Raises:
        sqlalchemy.exc.OperationalError: the database is unreachable.
    """
    with engine.begin() as conn:
        dead_id = store_payload_dead_letter(
            conn,
            payload,
            reason,
            received_at,
            batch_id=batch_id,
            store_id=source.store_id if source else None,
            device_id=source.device_id if source else None,
        )
    observe_rejected()
    log.warning(
        "payload of %d bytes rejected (dead letter %d, batch %s): %s",
        len(payload), dead_id, batch_id, reason,
    )  # fmt: skip
    return BatchRejected(batch_id=batch_id, reason=reason, dead_letter_id=dead_id)
