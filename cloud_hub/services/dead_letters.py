"""The dead-letter table: what the hub could not ingest, kept with the reason and the raw data."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from cloud_hub.models import DEAD_LETTERS
from common.sync import DeadLetterNotice, SyncRecord, TelemetryBatch

RAW_LIMIT_BYTES = 64 * 1024  # raw data kept per dead letter; raw_size keeps the full size


def _raw_fields(data: bytes, text_encoding: str) -> dict[str, str]:
    """``raw`` (the first RAW_LIMIT_BYTES) and how it is encoded: as text when it is UTF-8,
    else base64."""
    head = data[:RAW_LIMIT_BYTES]
    try:
        return {"raw": head.decode("utf-8"), "raw_encoding": text_encoding}
    except UnicodeDecodeError:
        return {"raw": base64.b64encode(head).decode("ascii"), "raw_encoding": "base64"}


def store_payload_dead_letter(
    conn: Connection,
    payload: bytes,
    reason: str,
    received_at: float,
    *,
    batch_id: str | None = None,
    store_id: str | None = None,
    device_id: str | None = None,
) -> int:
    """Keep a whole payload the hub refused (first ``RAW_LIMIT_BYTES`` of it); returns its id.

    ``received_at`` is UNIX seconds. Binary payloads (gzip) are kept base64-encoded.
    """
    row = {
        "device_id": device_id,
        "store_id": store_id,
        "seq": None,
        "batch_id": batch_id,
        "received_at": received_at,
        "reason": reason,
        "raw_size": len(payload),
        **_raw_fields(payload, "text"),
    }
    new_id = conn.execute(insert(DEAD_LETTERS).values(row).returning(DEAD_LETTERS.c.id)).scalar()
    assert isinstance(new_id, int)
    return new_id


def store_record_dead_letters(
    conn: Connection,
    batch: TelemetryBatch,
    notices: Sequence[DeadLetterNotice],
    received_at: float,
) -> None:
    """Keep each record named in ``notices`` (as JSON) with its reason, in one statement."""
    if not notices:
        return
    by_seq: dict[int, SyncRecord] = {r.seq: r for r in batch.records}
    rows = []
    for n in notices:
        data = json.dumps(by_seq[n.seq].model_dump(mode="json")).encode()
        rows.append(
            {
                "device_id": batch.device_id,
                "store_id": batch.store_id,
                "seq": n.seq,
                "batch_id": batch.batch_id,
                "received_at": received_at,
                "reason": n.reason,
                "raw_size": len(data),
                **_raw_fields(data, "json"),
            }
        )
    conn.execute(insert(DEAD_LETTERS), rows)


def earlier_dead_letters(
    conn: Connection, device_id: str, seqs: Sequence[int]
) -> list[DeadLetterNotice]:
    """Notices for those of ``seqs`` that an earlier batch dead-lettered (so a re-send gets the
    same answer as the first send)."""
    if not seqs:
        return []
    c = DEAD_LETTERS.c
    rows = conn.execute(
        select(c.seq, c.reason)
        .where(c.device_id == device_id, c.seq.in_(list(seqs)))
        .order_by(c.seq, c.id)
    ).all()
    seen: dict[int, str] = {}
    for seq, reason in rows:
        seen.setdefault(int(seq), str(reason))
    return [DeadLetterNotice(seq=s, reason=r) for s, r in seen.items()]
