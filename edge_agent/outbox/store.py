"""The outbox: a SQLite file per device holding every record until the hub acknowledges it.

Each appended record gets the next ``seq`` in the same transaction that stores it
(``INTEGER PRIMARY KEY AUTOINCREMENT``: strictly increasing and never reused, even after the
rows are deleted, across restarts). Delivered records are deleted. The file is in WAL mode so
the sync thread reads while the pipeline appends.

Durability: ``synchronous=FULL`` (the default) makes every append durable before it returns,
at one fsync of the WAL per transaction (about one a second in a store: cheap, see
benchmarks/bench_outbox_size.py). ``NORMAL`` survives any crash of the process (the WAL is in
the OS page cache) but a power cut can lose the last transactions; since sync may already have
sent them, their seqs would then be handed out again to new records, which the hub's ledger
would take for duplicates. So NORMAL is only for boxes with a UPS or a battery-backed disk.

Bounds (``OutboxLimits``) are enforced on every append and by ``enforce``: too old, or over
the size bound, records are dropped lowest priority first (gated snapshots, raw events, heatmaps,
then rollups and alerts, then earlier drop notices), oldest first. Every drop appends an
``OutboxDropped`` record in the same transaction, bumps the persistent ``dropped_total``
counters and logs a warning: never silent.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from common.sync import OutboxDropped, SyncRecord
from edge_agent.outbox.errors import OutboxError, OutboxFullError
from edge_agent.outbox.policy import DroppedRow, OutboxLimits, drop_notices, take_until
from edge_agent.outbox.records import Codec, EncodedRecord, OutboxBody, Priority, decode, encode
from edge_agent.outbox.reserve import DiskReserve

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
# Stored bytes counted per row beyond its body: the row's other columns, cell pointer and its
# created_at index entry (measured: see benchmarks/bench_outbox_size.py).
ROW_OVERHEAD_BYTES = 48
_DELETE_CHUNK = 500
# Checkpoint the WAL into the database every this many pages (SQLite's default is 1000): the
# WAL, and so the reserve a full disk needs to recover, stays about 1 MiB.
WAL_AUTOCHECKPOINT_PAGES = 256
DEFAULT_RESERVE_BYTES = 4 * 1024 * 1024
RESERVE_RETRY_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    priority INTEGER NOT NULL,
    created_at REAL NOT NULL,
    codec INTEGER NOT NULL,
    json_size INTEGER NOT NULL,
    size INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS records_created_at ON records (created_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dropped_totals (
    kind TEXT PRIMARY KEY, count INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL, bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals (id, count, bytes) VALUES (1, 0, 0);
CREATE TRIGGER IF NOT EXISTS records_counted AFTER INSERT ON records BEGIN
    UPDATE totals SET count = count + 1, bytes = bytes + NEW.size WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS records_uncounted AFTER DELETE ON records BEGIN
    UPDATE totals SET count = count - 1, bytes = bytes - OLD.size WHERE id = 1;
END;
"""


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """What the outbox holds now.

    Attributes:
        pending_count: records not yet delivered.
        pending_bytes: their stored bytes (what ``OutboxLimits.max_bytes`` bounds).
        oldest_pending_age_s: seconds since the oldest pending record was created; None if empty.
        dropped_total: records dropped by the bounds policy since the file was created, per
            record kind.
        last_seq: the highest seq ever handed out (0 before the first append).
        file_bytes: size of the database file plus its WAL on disk.
        disk_full_bound_bytes: after the disk filled up, the pending bytes that fitted, used as
            the size bound until the reserve file can be re-created; None normally.
    """

    pending_count: int
    pending_bytes: int
    oldest_pending_age_s: float | None
    dropped_total: dict[str, int]
    last_seq: int
    file_bytes: int
    disk_full_bound_bytes: int | None = None


class Outbox:
    """Durable, bounded queue of one device's records, keyed by a per-device seq.

    Thread-safe: the pipeline appends while the sync thread reads and marks. Open with
    ``Outbox.open``; close with ``close()`` or a ``with`` block.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        device_id: str,
        store_id: str,
        limits: OutboxLimits,
        reserve: DiskReserve,
        codec: Codec = Codec.DEFLATE_DICT_V1,
    ) -> None:
        self._conn = conn
        self.path = path
        self.device_id = device_id
        self.store_id = store_id
        self.limits = limits
        self.codec = codec
        self._lock = threading.Lock()
        self._reserve = reserve
        self._reserve_retry_at: float | None = None  # UNIX s; None: reserve held
        # After a full disk: the pending bytes that fitted, a size bound until the reserve is
        # back, so new records reuse the pages of dropped ones instead of growing the file.
        self._disk_ceiling: int | None = None

    @classmethod
    def open(
        cls,
        path: Path,
        device_id: str,
        store_id: str,
        limits: OutboxLimits | None = None,
        synchronous: Literal["full", "normal"] = "full",
        reserve_bytes: int = DEFAULT_RESERVE_BYTES,
        codec: Codec = Codec.DEFLATE_DICT_V1,
    ) -> Outbox:
        """Open (creating if needed) the outbox file of ``device_id`` at ``path``.

        ``synchronous`` is SQLite's durability level (see the module docstring);
        ``reserve_bytes`` of disk are set aside beside the file to recover from a full disk
        (0: none). ``codec`` is how new bodies are stored (plain JSON makes the file readable
        with the sqlite3 shell, at about twice the size); rows of any codec stay readable.

        Raises:
            OutboxError: the file is not an outbox database, or belongs to another device or
                store (one file per device: a copied file would reuse seqs).
        """
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"cannot open outbox {path}: {exc}") from None
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise OutboxError(f"outbox {path}: SQLite refused WAL mode (got {mode!r})")
            conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            conn.executescript(_SCHEMA)
            _claim(conn, path, device_id, store_id)
        except sqlite3.Error as exc:
            conn.close()
            raise OutboxError(f"outbox {path} is not usable: {exc}") from None
        except OutboxError:
            conn.close()
            raise
        reserve = DiskReserve(path.with_name(path.name + "-reserve"), reserve_bytes)
        outbox = cls(conn, path, device_id, store_id, limits or OutboxLimits(), reserve, codec)
        if not reserve.ensure():
            outbox._reserve_retry_at = 0.0  # retry on the first append
        return outbox

    def close(self) -> None:
        """Close the database (pending records stay in the file)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- writing --------------------------------------------------------------------------

    def append(self, records: Sequence[OutboxBody], now: float) -> list[int]:
        """Store ``records`` in one transaction and return their seqs (ascending).

        ``now`` (UNIX seconds) is their ``created_at`` and the time the bounds are checked
        at; this same transaction drops what is over the bounds (possibly some of these records
        when they are the lowest priority).

        Raises:
            OutboxFullError: the disk is full even after dropping records to make room; none
                of ``records`` was stored and the outbox is intact.
            OutboxError: any other database failure.
        """
        encoded = [encode(r, self.codec) for r in records]
        if not encoded:
            return []
        with self._lock:
            try:
                seqs = self._append_locked(encoded, now)
            except sqlite3.Error as exc:
                if not _is_full(exc):
                    raise OutboxError(f"cannot write outbox {self.path}: {exc}") from exc
            else:
                self._restore_reserve(now)
                return seqs
            self._make_room_locked(sum(_row_size(e) for e in encoded), now)
            try:
                seqs = self._append_locked(encoded, now)
            except sqlite3.Error as exc:
                if _is_full(exc):
                    raise OutboxFullError(
                        f"outbox {self.path}: the disk is full even after dropping records; "
                        "free space on that disk or lower outbox.max_bytes"
                    ) from exc
                raise OutboxError(f"cannot write outbox {self.path}: {exc}") from exc
            self._restore_reserve(now)
            return seqs

    def enforce(self, now: float) -> list[OutboxDropped]:
        """Drop what is over the bounds at UNIX time ``now``; returns the drop notices added.

        Raises:
            OutboxError: the database cannot be written.
        """
        with self._lock:
            try:
                with self._transaction() as conn:
                    return self._enforce_in(conn, now)
            except sqlite3.Error as exc:
                raise OutboxError(f"cannot enforce outbox bounds on {self.path}: {exc}") from exc

    def mark_delivered(self, seqs: Sequence[int]) -> int:
        """Delete the records with these seqs (the hub holds them now); returns how many were
        still pending. Idempotent: unknown or already delivered seqs are ignored.

        Raises:
            OutboxError: the database cannot be written.
        """
        unique = sorted(set(seqs))
        if not unique:
            return 0
        with self._lock:
            try:
                with self._transaction() as conn:
                    return _delete(conn, unique)
            except sqlite3.Error as exc:
                raise OutboxError(f"cannot mark records delivered in {self.path}: {exc}") from exc

    def resume_above(self, hub_max_seq: int) -> bool:
        """Number new records above ``hub_max_seq``, the highest seq the hub holds of this
        device (``GET /api/v1/devices/{id}/sync``); True when the next seq moved.

        Call it at start, before appending, whenever the hub can be asked: a new or restored
        outbox file would otherwise hand out seqs the hub already holds, and the hub would
        take the new records for duplicates of the old ones.

        Raises:
            OutboxError: the database cannot be written.
        """
        with self._lock:
            try:
                with self._transaction() as conn:
                    last = _last_seq(conn)
                    if hub_max_seq <= last:
                        return False
                    if (
                        last == 0
                        and not conn.execute(
                            "SELECT 1 FROM sqlite_sequence WHERE name = 'records'"
                        ).fetchone()
                    ):
                        conn.execute(
                            "INSERT INTO sqlite_sequence (name, seq) VALUES ('records', ?)",
                            (hub_max_seq,),
                        )
                    else:
                        conn.execute(
                            "UPDATE sqlite_sequence SET seq = ? WHERE name = 'records'",
                            (hub_max_seq,),
                        )
                    below = conn.execute(
                        "SELECT COUNT(*) FROM records WHERE seq <= ?", (hub_max_seq,)
                    ).fetchone()[0]
            except sqlite3.Error as exc:
                raise OutboxError(f"cannot move the seq of outbox {self.path}: {exc}") from exc
        log.warning(
            "outbox %s: the hub holds seqs of device %s up to %d but this file had only reached "
            "%d (a new or restored file); new records continue from %d%s",
            self.path,
            self.device_id,
            hub_max_seq,
            last,
            hub_max_seq + 1,
            f"; {below} pending records at or below it will be acked as duplicates if the hub "
            "holds their seqs"
            if below
            else "",
        )
        return True

    # -- reading --------------------------------------------------------------------------

    def pending(self, limit: int, max_bytes: int) -> list[SyncRecord]:
        """Up to ``limit`` undelivered records, ascending seq, whose JSON bodies add up to at
        most ``max_bytes`` (always at least one record when any is pending).

        Raises:
            OutboxError: a stored body cannot be decoded (the message names its seq).
        """
        return self.pending_sized(limit, max_bytes)[0]

    def pending_sized(self, limit: int, max_bytes: int) -> tuple[list[SyncRecord], int]:
        """``pending``, and the JSON bytes of those records' bodies.

        Raises:
            OutboxError: a stored body cannot be decoded (the message names its seq).
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        try:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT seq, kind, created_at, codec, json_size, body FROM records "
                    "ORDER BY seq LIMIT ?",
                    (limit,),
                ).fetchall()
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot read outbox {self.path}: {exc}") from exc
        out: list[SyncRecord] = []
        total = 0
        for seq, kind, created_at, codec, json_size, body in rows:
            if out and total + json_size > max_bytes:
                break
            total += json_size
            try:
                decoded = decode(body, codec)
            except ValueError as exc:
                raise OutboxError(
                    f"outbox {self.path}: record seq {seq} is unreadable: {exc}"
                ) from exc
            out.append(SyncRecord(seq=seq, kind=kind, created_at=created_at, body=decoded))
        return out, total

    def stats(self, now: float) -> OutboxStats:
        """Counts and sizes at UNIX time ``now`` (for health reports and the CLI)."""
        with self._lock:
            conn = self._conn
            count, nbytes = conn.execute("SELECT count, bytes FROM totals WHERE id = 1").fetchone()
            oldest = conn.execute("SELECT MIN(created_at) FROM records").fetchone()[0]
            dropped = dict(conn.execute("SELECT kind, count FROM dropped_totals").fetchall())
            last_seq = _last_seq(conn)
        wal = self.path.with_name(self.path.name + "-wal")
        size = sum(p.stat().st_size for p in (self.path, wal) if p.exists())
        return OutboxStats(
            pending_count=count,
            pending_bytes=nbytes,
            oldest_pending_age_s=None if oldest is None else now - oldest,
            dropped_total=dropped,
            last_seq=last_seq,
            file_bytes=size,
            disk_full_bound_bytes=self._disk_ceiling,
        )

    # -- internals ------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; ROLLBACK on any error (commit failures included)."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _append_locked(self, encoded: list[EncodedRecord], now: float) -> list[int]:
        with self._transaction() as conn:
            seqs = [_insert(conn, e, now) for e in encoded]
            self._enforce_in(conn, now)
        return seqs

    def _enforce_in(self, conn: sqlite3.Connection, now: float) -> list[OutboxDropped]:
        """Age and size drops inside the caller's transaction. Both victim sets are chosen
        before either notice is inserted, so a notice is never dropped by its own pass."""
        lim = self.limits
        age: list[DroppedRow] = []
        over_age = conn.execute(
            "SELECT 1 FROM records WHERE created_at < ? LIMIT 1", (lim.age_cutoff(now),)
        ).fetchone()
        if over_age:
            age = [
                DroppedRow(*r)
                for r in conn.execute(
                    "SELECT seq, kind, size FROM records WHERE created_at < ? ORDER BY seq",
                    (lim.age_drop_cutoff(now),),
                )
            ]
        nbytes = conn.execute("SELECT bytes FROM totals WHERE id = 1").fetchone()[0]
        nbytes -= sum(r.size for r in age)
        size: list[DroppedRow] = []
        max_bytes = lim.max_bytes if self._disk_ceiling is None else self._disk_ceiling
        if nbytes > max_bytes:
            aged = {r.seq for r in age}
            cur = conn.execute("SELECT seq, kind, size FROM records ORDER BY priority, seq")
            candidates = (DroppedRow(*r) for r in cur if r[0] not in aged)
            size = take_until(candidates, nbytes - int(max_bytes * lim.drop_to_fraction))
            cur.close()
        notices = self._drop_in(conn, age, "age", now)
        notices += self._drop_in(conn, size, "size", now)
        return notices

    def _drop_in(
        self,
        conn: sqlite3.Connection,
        rows: list[DroppedRow],
        reason: Literal["size", "age"],
        now: float,
    ) -> list[OutboxDropped]:
        if not rows:
            return []
        _delete(conn, [r.seq for r in rows])
        notices = drop_notices(rows, reason, now)
        total: dict[str, int] = {}
        for n in notices:
            _insert(conn, encode(n, self.codec), now)
            for kind, c in n.counts.items():
                total[kind] = total.get(kind, 0) + c
        conn.executemany(
            "INSERT INTO dropped_totals (kind, count) VALUES (?, ?) "
            "ON CONFLICT (kind) DO UPDATE SET count = count + excluded.count",
            sorted(total.items()),
        )
        first = notices[0].seq_ranges[0][0]
        last = notices[-1].seq_ranges[-1][1]
        log.warning(
            "outbox %s (device %s): dropped %d records over the %s bound, seqs %d-%d, per kind %s",
            self.path,
            self.device_id,
            len(rows),
            reason,
            first,
            last,
            dict(sorted(total.items())),
        )
        return notices

    def _make_room_locked(self, need_bytes: int, now: float) -> None:
        """Disk full: release the reserve, then drop by priority at least twice ``need_bytes``
        (and a tenth of the outbox) so the retry fits in the pages freed. Drop notices are
        kept: they are how the hub learns about the drop. Until the reserve can be re-created,
        the pending bytes that fitted are the size bound.

        The checkpoint before the drop moves the WAL into the database file (into the space
        the reserve gave back), so the drop rewrites WAL space the file already has; the one
        after lets the retry reuse the freed pages without growing either file.

        Raises:
            OutboxFullError: nothing left to drop, or no space even for the drop (no reserve).
        """
        conn = self._conn
        released = self._reserve.release()
        self._reserve_retry_at = now
        log.warning(
            "outbox %s: disk full appending %d bytes; %s, dropping records by priority to make "
            "room",
            self.path,
            need_bytes,
            "reserve released" if released else "no reserve left to release",
        )
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            with self._transaction():
                nbytes = conn.execute("SELECT bytes FROM totals WHERE id = 1").fetchone()[0]
                want = max(2 * need_bytes, nbytes // 10)
                cur = conn.execute(
                    "SELECT seq, kind, size FROM records WHERE priority < ? ORDER BY priority, seq",
                    (int(Priority.DROP_NOTICE),),
                )
                rows = take_until((DroppedRow(*r) for r in cur), want)
                cur.close()
                self._disk_ceiling = min(nbytes, self._disk_ceiling or nbytes)
                if not rows:
                    raise OutboxFullError(
                        f"outbox {self.path}: the disk is full and the outbox holds nothing "
                        "it may drop (only drop notices); free space on that disk"
                    )
                self._drop_in(conn, rows, "size", now)
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            if _is_full(exc):
                raise OutboxFullError(
                    f"outbox {self.path}: the disk is full and there is no space even to drop "
                    "records (its reserve is used up); free space on that disk"
                ) from exc
            raise OutboxError(f"cannot make room in outbox {self.path}: {exc}") from exc

    def _restore_reserve(self, now: float) -> None:
        """Re-create a released reserve, at most once a minute (UNIX seconds ``now``)."""
        if self._reserve_retry_at is None or now < self._reserve_retry_at:
            return
        if self._reserve.ensure():
            self._reserve_retry_at = None
            self._disk_ceiling = None
            log.info("outbox %s: reserve restored; size bound back to max_bytes", self.path)
        else:
            self._reserve_retry_at = now + RESERVE_RETRY_S


def _row_size(e: EncodedRecord) -> int:
    return len(e.blob) + ROW_OVERHEAD_BYTES


def _insert(conn: sqlite3.Connection, e: EncodedRecord, now: float) -> int:
    row = conn.execute(
        "INSERT INTO records (kind, priority, created_at, codec, json_size, size, body) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
        (e.kind.value, int(e.priority), now, int(e.codec), e.json_size, _row_size(e), e.blob),
    ).fetchone()
    return int(row[0])


def _delete(conn: sqlite3.Connection, seqs: list[int]) -> int:
    deleted = 0
    for i in range(0, len(seqs), _DELETE_CHUNK):
        chunk = seqs[i : i + _DELETE_CHUNK]
        marks = ",".join("?" * len(chunk))
        deleted += conn.execute(f"DELETE FROM records WHERE seq IN ({marks})", chunk).rowcount
    return deleted


def _last_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
    return 0 if row is None else int(row[0])


def _claim(conn: sqlite3.Connection, path: Path, device_id: str, store_id: str) -> None:
    """Record (first open) or check (later opens) which device and store own this file."""
    want = {"schema_version": SCHEMA_VERSION, "device_id": device_id, "store_id": store_id}
    conn.execute("BEGIN IMMEDIATE")
    try:
        have = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if not have:
            log.info("outbox %s created for store %s device %s", path, store_id, device_id)
        for key, value in want.items():
            if key not in have:
                conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
            elif have[key] != value:
                raise OutboxError(
                    f"outbox {path} has {key} {have[key]!r}, not {value!r}: each device needs "
                    "its own outbox file (point outbox.path elsewhere, or drain and delete this "
                    "one)"
                )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _is_full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
