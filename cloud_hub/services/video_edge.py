"""What a video job hands the edge agent, and what it reads back. Pure: no processes, no files.

The hub never imports ``edge_agent``: it writes a store config the edge CLI validates and runs
(``edge_config``), and reads the CLI's progress bar and error lines (``progress_of``,
``edge_failure``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# tqdm's bar: "... 123/456 [00:05<00:12, 24.6frame/s]"; the last one on the line wins.
_PROGRESS = re.compile(r"(\d+)/(\d+) \[")
_NOT_INSTALLED = re.compile(r"No module named '?edge_agent")


@dataclass(frozen=True)
class EdgeModels:
    """The models a job's edge config names (absolute paths on the worker's host)."""

    detector: Path
    trusted_keys: Path | None = None
    face: Path | None = None


@dataclass(frozen=True)
class JobFiles:
    """Where one job keeps its files: config, outbox, credentials, report."""

    folder: Path

    @property
    def config(self) -> Path:
        """The generated store config."""
        return self.folder / "store.yaml"

    @property
    def outbox(self) -> Path:
        """The virtual device's outbox for this job."""
        return self.folder / "outbox.sqlite3"

    @property
    def credentials(self) -> Path:
        """The virtual device's credentials (written by ``retail-edge enroll``, mode 0600)."""
        return self.folder / "credentials.json"

    @property
    def report(self) -> Path:
        """The edge's JSON report of the clip."""
        return self.folder / "report.json"


def edge_config(
    *,
    store_id: str,
    device_id: str,
    timezone: str,
    camera: Mapping[str, Any],
    clip: Path,
    models: EdgeModels,
    files: JobFiles,
    hub_url: str,
) -> dict[str, Any]:
    """The store config of a job's virtual device: the requested camera reading ``clip``, the
    hub's detector, an outbox of its own, HTTP sync to ``hub_url`` with enrolled credentials."""
    model: dict[str, Any] = {"path": str(models.detector)}
    if models.trusted_keys is not None:
        model["trusted_keys"] = str(models.trusted_keys)
    config: dict[str, Any] = {
        "store_id": store_id,
        "device_id": device_id,
        "timezone": timezone,
        "model": model,
        "cameras": [{**camera, "source": str(clip)}],
        "outbox": {"path": str(files.outbox)},
        "sync": {
            "transport": "http",
            "hub_url": hub_url,
            "credentials_file": str(files.credentials),
        },
    }
    if models.face is not None:
        config["privacy"] = {"face_model": str(models.face)}
    return config


def progress_of(stderr_text: str) -> float | None:
    """Fraction of frames done (0-1) from the newest progress bar in ``stderr_text``; None
    when it shows none (or no total)."""
    found = _PROGRESS.findall(stderr_text)
    if not found:
        return None
    done, total = (int(x) for x in found[-1])
    if total <= 0:
        return None
    return min(1.0, done / total)


def edge_failure(step: str, returncode: int, stderr_text: str) -> str:
    """A readable reason from a failed edge CLI step: from its ``error:`` line on (the message
    the edge meant for people), else the last line it wrote (a crash), with the step named."""
    if _NOT_INSTALLED.search(stderr_text):
        return (
            "the edge agent is not installed where the job worker runs: install it there "
            "(pip install 'retail-cv[edge]') or set RETAIL_HUB_VIDEO_EDGE_PYTHON to a Python "
            "that has it"
        )
    lines = [ln.strip() for ln in stderr_text.replace("\r", "\n").splitlines() if ln.strip()]
    first = next((i for i, ln in enumerate(lines) if ln.startswith("error:")), None)
    if first is not None:  # the message and the lines that go with it (one per problem)
        return f"{step}: {' '.join(lines[first:]).removeprefix('error:').strip()}"
    tail = lines[-1] if lines else "(no output)"
    return f"{step} exited with code {returncode}: {tail}"
