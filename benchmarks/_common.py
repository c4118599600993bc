"""Helpers shared by the benchmark programs: machine description and BENCHMARKS.md output."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def assets_dir() -> Path:
    """$RETAIL_CV_ASSETS, else ../shared/assets beside the repo."""
    env = os.environ.get("RETAIL_CV_ASSETS")
    return Path(env) if env else REPO.parent / "shared" / "assets"


def machine() -> str:
    """One line describing this machine."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores{mem}, {system}, Python {platform.python_version()}"


def git_rev() -> str:
    """Short commit id of the code measured (with +dirty when uncommitted changes exist)."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def append_section(title: str, body: str) -> None:
    """Append a dated section with machine and command to BENCHMARKS.md."""
    command = "python " + " ".join([os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])
    text = (
        f"\n## {title}\n\n"
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}\n"
        f"- machine: {machine()}\n"
        f"- code: {git_rev()}\n"
        f"- command: `{command}`\n\n{body.rstrip()}\n"
    )
    path = REPO / "BENCHMARKS.md"
    if not path.exists():
        path.write_text("# Benchmarks\n\nEach section is appended by a program in `benchmarks/`.\n")
    with path.open("a") as f:
        f.write(text)
    print(text)
