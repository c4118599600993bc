"""Which rolled-out layout this box runs, kept on disk so that a restart runs it again.

One JSON file, ``applied-layout.json`` in the twin's staging folder, replaced atomically
(written beside, fsynced, renamed, folder fsynced), so a power cut leaves the old state or the
new one, never half of each. It holds:

* ``current``: the layout that passed its trial here (None: the box file's own layout);
* ``previous``: the one it replaced (for the installer: what ran before);
* ``trial``: set while a layout is on trial. Found at start, the agent stopped (a crash or a
  restart) during that trial: the box starts on ``current`` and the trial counts as failed;
* ``failed``: the last layout that failed here and why: it is not tried again while the hub
  keeps asking for it (its failure is reported instead).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.store_config.layout import StoreLayout

log = logging.getLogger(__name__)

STATE_FILE = "applied-layout.json"


class AppliedLayout(BaseModel):
    """A layout version from the hub, as this box keeps it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1, description="the store's layout version at the hub")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    rollout_id: int | None = Field(None, description="the config rollout that brought it")
    layout: StoreLayout


class LayoutTrial(BaseModel):
    """A switch under way: to ``target`` (None: back to the box file's layout)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: AppliedLayout | None
    rollout_id: int | None = None
    started_at: float = Field(description="UNIX seconds")


class FailedLayout(BaseModel):
    """A layout that failed here (version None: the box file's own layout)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int | None
    sha256: str | None
    reason: str


class LayoutState(BaseModel):
    """What ``applied-layout.json`` holds (see the module doc)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = 1
    current: AppliedLayout | None = None
    previous: AppliedLayout | None = None
    trial: LayoutTrial | None = None
    failed: FailedLayout | None = None

    @property
    def running_version(self) -> int | None:
        """The layout version the box runs outside a trial (None: its file's)."""
        return None if self.current is None else self.current.version

    def recovered(self) -> LayoutState:
        """The state after a restart: a trial left open failed (the agent stopped in it)."""
        if self.trial is None:
            return self
        target = self.trial.target
        what = "the box file's layout" if target is None else f"layout version {target.version}"
        back = "the file's" if self.current is None else f"version {self.current.version}"
        reason = (
            f"the agent stopped (crash or restart) during the trial of {what}: it runs {back} again"
        )
        failed = FailedLayout(
            version=None if target is None else target.version,
            sha256=None if target is None else target.sha256,
            reason=reason,
        )
        return self.model_copy(update={"trial": None, "failed": failed})


class LayoutStateFile:
    """Reads and atomically replaces ``folder/applied-layout.json``."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / STATE_FILE

    def load(self) -> LayoutState:
        """The saved state; an empty one when there is none. A file that does not parse (it is
        only ever replaced whole, so a broken disk or a hand edit) is moved aside to
        ``.corrupt`` with an error in the log, and the box runs its file's layout."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return LayoutState()
        try:
            return LayoutState.model_validate_json(text)
        except ValidationError as exc:
            aside = self.path.with_suffix(f".corrupt-{int(time.time())}")
            os.replace(self.path, aside)
            log.error(
                "twin: %s is not a valid layout state (%s): moved to %s; running the config "
                "file's layout until the hub's desired state is applied again",
                self.path,
                exc.errors()[0]["msg"],
                aside,
            )
            return LayoutState()

    def store(self, state: LayoutState) -> None:
        """Replace the file with ``state``: on disk (fsynced) when this returns."""
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w") as f:
            f.write(state.model_dump_json(indent=1))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)  # the rename itself is on disk too
        finally:
            os.close(fd)
