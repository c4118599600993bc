"""Retention of image files: nothing older than the age limit, total under the size limit,
and always the oldest go first."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.privacy import enforce_retention, plan_retention
from edge_agent.privacy.retention import StoredImage

NOW = 1_700_000_000.0

files_st = st.lists(st.tuples(st.floats(0, 10_000), st.integers(0, 5_000)), max_size=40).map(
    lambda rows: [
        StoredImage(Path(f"img{i}.jpg"), NOW - age, size) for i, (age, size) in enumerate(rows)
    ]
)


@given(files_st, st.floats(0, 10_000), st.integers(0, 100_000))
def test_plan_keeps_only_young_files_within_the_budget_and_drops_the_oldest(
    files: list[StoredImage], max_age_s: float, max_bytes: int
) -> None:
    doomed = plan_retention(files, max_age_s, max_bytes, NOW)
    gone = {f.path for f in doomed}
    kept = [f for f in files if f.path not in gone]
    assert sum(f.size for f in kept) <= max_bytes
    assert all(NOW - f.mtime <= max_age_s for f in kept)
    # Nothing is deleted while an older file survives.
    if doomed and kept:
        assert max(f.mtime for f in doomed) <= min(f.mtime for f in kept)
    # Nothing is deleted needlessly: putting back the youngest deleted file would break a limit.
    if doomed:
        youngest = max(doomed, key=lambda f: (f.mtime, str(f.path)))
        too_old = NOW - youngest.mtime > max_age_s
        assert too_old or sum(f.size for f in kept) + youngest.size > max_bytes


def test_enforce_deletes_old_then_oldest_image_files_only(tmp_path: Path) -> None:
    def make(name: str, age_s: float, size: int) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x" * size)
        os.utime(p, (NOW - age_s, NOW - age_s))
        return p

    expired = make("a/expired.jpg", 8 * 86400, 100)
    oldest = make("a/oldest.png", 3000, 400)
    middle = make("b/middle.jpg", 2000, 400)
    newest = make("b/newest.jpg", 10, 400)
    manifest = make("manifest.jsonl", 9 * 86400, 50)  # not an image: retention leaves it
    result = enforce_retention(tmp_path, max_age_s=7 * 86400, max_bytes=900, now=NOW)
    assert result.deleted == [expired, oldest]
    assert [p.exists() for p in (expired, oldest, middle, newest, manifest)] == [
        False, False, True, True, True,
    ]  # fmt: skip
    assert (result.kept_files, result.kept_bytes) == (2, 800)
