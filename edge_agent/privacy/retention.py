"""Retention for image files on the edge: delete the oldest beyond an age or a total size.

``plan_retention`` is pure (files and time in, files to delete out); ``enforce_retention``
lists a folder and deletes. The job that calls it on a schedule is wired by the agent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"})


@dataclass(frozen=True, slots=True)
class StoredImage:
    """One image file: its path, modification time (UNIX s) and size (bytes)."""

    path: Path
    mtime: float
    size: int


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What a retention pass deleted and what it kept (files and bytes)."""

    deleted: list[Path]
    kept_files: int
    kept_bytes: int


def plan_retention(
    files: list[StoredImage], max_age_s: float, max_bytes: int, now: float
) -> list[StoredImage]:
    """The files to delete: every file older than ``max_age_s`` at ``now`` (UNIX s), then the
    oldest of the rest until the total is at most ``max_bytes``. Oldest first."""
    if max_age_s < 0 or max_bytes < 0:
        raise ValueError(f"max_age_s and max_bytes must be >= 0, got {max_age_s}, {max_bytes}")
    by_age = sorted(files, key=lambda f: (f.mtime, str(f.path)))
    total = sum(f.size for f in by_age)
    delete = []
    for f in by_age:
        if now - f.mtime > max_age_s or total > max_bytes:
            delete.append(f)
            total -= f.size
    return delete


def enforce_retention(
    directory: Path, max_age_s: float, max_bytes: int, now: float
) -> RetentionResult:
    """Delete image files under ``directory`` (recursively) older than ``max_age_s`` seconds at
    ``now`` (UNIX s), then the oldest until they total at most ``max_bytes``."""
    files = [
        StoredImage(p, st.st_mtime, st.st_size)
        for p in directory.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        for st in (p.stat(),)
    ]
    doomed = plan_retention(files, max_age_s, max_bytes, now)
    for f in doomed:
        f.path.unlink(missing_ok=True)
    if doomed:
        log.info("retention: deleted %d image file(s) from %s", len(doomed), directory)
    gone = {f.path for f in doomed}
    kept = [f for f in files if f.path not in gone]
    return RetentionResult([f.path for f in doomed], len(kept), sum(f.size for f in kept))
