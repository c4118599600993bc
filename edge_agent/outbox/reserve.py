"""A reserve file beside the outbox: disk space set aside so a full disk can still be
recovered from.

When the disk fills, the outbox's newest committed pages sit in the WAL and moving them into
the database file needs the file to grow; so even deleting records (which writes more WAL)
fails. Releasing the reserve gives SQLite that room once: checkpoint, drop records by the
bounds policy, checkpoint, then the freed pages take new records without the file growing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

_CHUNK = b"\0" * 65536


class DiskReserve:
    """A file of ``size_bytes`` zero bytes (really allocated, not sparse) at ``path``."""

    def __init__(self, path: Path, size_bytes: int) -> None:
        if size_bytes < 0:
            raise ValueError(f"reserve size must be >= 0 bytes, got {size_bytes}")
        self.path = path
        self.size_bytes = size_bytes

    @property
    def held(self) -> bool:
        """Whether the reserve file exists at full size."""
        try:
            return self.path.stat().st_size >= self.size_bytes
        except FileNotFoundError:
            return False

    def ensure(self) -> bool:
        """Create the reserve if it is missing; False (and no partial file) when the disk has
        no room for it."""
        if self.size_bytes == 0 or self.held:
            return True
        try:
            with self.path.open("wb") as f:
                left = self.size_bytes
                while left > 0:
                    n = min(left, len(_CHUNK))
                    f.write(_CHUNK[:n])
                    left -= n
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            self.path.unlink(missing_ok=True)
            log.warning(
                "outbox reserve %s (%d bytes) could not be created: %s; a full disk will stop "
                "the outbox until space is freed",
                self.path,
                self.size_bytes,
                exc.strerror,
            )
            return False
        return True

    def release(self) -> bool:
        """Delete the reserve to free its space; False when there was none to release."""
        held = self.held
        self.path.unlink(missing_ok=True)
        return held
