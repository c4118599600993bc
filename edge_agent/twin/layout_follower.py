"""The config part of the device twin: follow the hub's desired layout on this box.

``layout_at_start`` picks the config ``retail-edge run`` starts with: the box's file merged
with the layout that last passed its trial here (``applied-layout.json`` in the twin staging
folder, see ``layout_state``), or the file alone. A trial the agent did not finish (it crashed
or was restarted in it) counts as failed.

``LayoutFollower.follow`` runs in each round of the reconciler, before the model part: when the
desired layout (or None: the box file's own) differs from the one running, it is checked (the
sha256 the hub gave, then merged with the file and validated here: ``twin.layout``) and
reported ``validated``; the agent switches its cameras between two steps and tries it for
``twin.config_trial_s``; it is then reported ``applied`` and kept on disk, or ``failed`` with
the reason, the previous layout running again. A layout that failed here is not tried again
while the hub asks for it (its failure is reported again once per desired revision); once the
hub asks for another one, it may be tried again later.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from common.twin import ConfigReport, ConfigStep, DesiredConfig, DesiredState
from edge_agent.config import StoreConfig
from edge_agent.detect.detector import Detector
from edge_agent.errors import ConfigError
from edge_agent.reconfigure import Reconfiguration
from edge_agent.twin.client import TwinClient, TwinError
from edge_agent.twin.layout import check_on_box, layout_config
from edge_agent.twin.layout_state import (
    AppliedLayout,
    FailedLayout,
    LayoutState,
    LayoutStateFile,
    LayoutTrial,
)

log = logging.getLogger(__name__)

Key = tuple[int | None, str | None]  # (version, sha256) of a layout; (None, None): the file's


class ReconfigurableAgent(Protocol):
    """What the follower needs of the agent (``edge_agent.agent.EdgeAgent``)."""

    @property
    def detector(self) -> Detector: ...

    def request_reconfigure(self, config: StoreConfig, trial_s: float = 0.0) -> Reconfiguration:
        """Run ``config``'s cameras from the next step on, on trial for ``trial_s``."""
        ...


@dataclass
class LayoutAtStart:
    """The box's file config, where its layout state lives, and what the agent starts with."""

    file_config: StoreConfig
    base_dir: Path  # relative paths in a layout resolve against it: the config file's folder
    states: LayoutStateFile
    state: LayoutState
    config: StoreConfig  # the file merged with ``state.current``, or the file alone


def layout_at_start(file_config: StoreConfig, base_dir: Path) -> LayoutAtStart:
    """The config to start the agent with (see the module doc); the state on disk is updated
    when a trial was left open or the kept layout no longer fits the file.

    Raises:
        ConfigError: the config has no ``twin`` section.
    """
    if file_config.twin is None:
        raise ConfigError("no twin section: this box does not follow the hub's layouts")
    states = LayoutStateFile(file_config.twin.staging_dir)
    saved = states.load()
    state = saved.recovered()
    if state is not saved:
        log.error("twin: %s", state.failed.reason if state.failed else "trial left open")
    config = file_config
    current = state.current
    if current is not None:
        try:
            config = layout_config(
                file_config, current.layout, base_dir, f"layout version {current.version}"
            )
            check_on_box(config)
            log.info("twin: running layout version %d (kept in %s)", current.version, states.path)
        except ConfigError as exc:
            reason = f"it no longer fits this box's config file: {exc}"
            log.error("twin: layout version %d not run, %s", current.version, reason)
            failed = FailedLayout(version=current.version, sha256=current.sha256, reason=reason)
            state = state.model_copy(
                update={"current": None, "previous": current, "failed": failed}
            )
            config = file_config
    if state != saved:
        states.store(state)
    return LayoutAtStart(file_config, base_dir, states, state, config)


def _key(want: DesiredConfig | AppliedLayout | FailedLayout | None) -> Key:
    return (None, None) if want is None else (want.version, want.sha256)


class LayoutFollower:
    """Moves the agent's layout towards the desired one, one ``follow`` per reconciler round."""

    def __init__(
        self,
        start: LayoutAtStart,
        agent: ReconfigurableAgent,
        client: TwinClient,
        trial_s: float,
    ) -> None:
        self.start = start
        self.agent = agent
        self.client = client
        self.trial_s = trial_s
        self.state = start.state
        self._acked_revision = -1  # the desired revision whose outcome the hub has

    @property
    def running_version(self) -> int | None:
        """The layout version the agent runs (None: the box file's)."""
        return self.state.running_version

    def follow(self, desired: DesiredState, stopping: threading.Event) -> None:
        """Act on the desired layout once (see the module doc); returns when its trial is
        over, or early when ``stopping`` is set before the agent took the new config."""
        want = desired.config
        target = _key(want)
        failed = self.state.failed
        if target == _key(self.state.current):
            if failed is not None:  # the hub asks for another one: it may be tried again
                self._save(self.state.model_copy(update={"failed": None}))
            if want is not None and self._acked_revision != desired.revision:
                self._report(desired, ConfigStep.APPLIED)  # again: it may have been lost
            return
        if failed is not None and _key(failed) == target:
            if self._acked_revision != desired.revision:
                self._report(desired, ConfigStep.FAILED, f"failed here before: {failed.reason}")
            return
        self._apply(desired, want, stopping)

    def _apply(
        self, desired: DesiredState, want: DesiredConfig | None, stopping: threading.Event
    ) -> None:
        what = "the box file's layout" if want is None else f"layout version {want.version}"
        try:
            config = self._validated(want)
        except ConfigError as exc:
            self._fail(desired, want, f"validation: {exc}")
            return
        self._report(desired, ConfigStep.VALIDATED, ack=False)
        target = None
        if want is not None:
            target = AppliedLayout(
                version=want.version,
                sha256=want.sha256,
                rollout_id=desired.config_rollout_id,
                layout=want.layout,
            )
        trial = LayoutTrial(
            target=target, rollout_id=desired.config_rollout_id, started_at=time.time()
        )
        before = self.state
        self._save(before.model_copy(update={"trial": trial, "failed": None}))
        log.info("twin: applying %s, trial of %.0f s", what, self.trial_s)
        try:
            request = self.agent.request_reconfigure(config, self.trial_s)
        except RuntimeError as exc:  # the agent is stopping: nothing was switched
            log.warning("twin: %s not applied: %s", what, exc)
            self._save(before)
            return
        while not request.wait(0.5):
            if stopping.is_set() and request.cancel():
                self._save(before)
                return
        if request.error is not None:
            self._fail(desired, want, request.error)
            return
        log.info("twin: %s applied and passed its trial", what)
        self._save(
            before.model_copy(
                update={
                    "current": target,
                    "previous": before.current,
                    "trial": None,
                    "failed": None,
                }
            )
        )
        self._report(desired, ConfigStep.APPLIED)

    def _validated(self, want: DesiredConfig | None) -> StoreConfig:
        if want is None:
            config = self.start.file_config
        else:
            digest = want.layout.sha256()
            if digest != want.sha256:
                raise ConfigError(
                    f"the layout's sha256 {digest[:12]}… is not the desired {want.sha256[:12]}… "
                    "(changed on the way): not applied"
                )
            config = layout_config(
                self.start.file_config,
                want.layout,
                self.start.base_dir,
                f"layout version {want.version}",
            )
        check_on_box(config, self.agent.detector)
        return config

    def _fail(self, desired: DesiredState, want: DesiredConfig | None, reason: str) -> None:
        what = "the box file's layout" if want is None else f"layout version {want.version}"
        log.error("twin: %s failed: %s", what, reason)
        failed = FailedLayout(version=_key(want)[0], sha256=_key(want)[1], reason=reason)
        self._save(self.state.model_copy(update={"trial": None, "failed": failed}))
        self._report(desired, ConfigStep.FAILED, reason)

    def _save(self, state: LayoutState) -> None:
        # Memory follows even when the disk refuses, so the agent and the reports agree; the
        # error is logged (a restart would then run the last state that reached the disk).
        self.state = state
        try:
            self.start.states.store(state)
        except OSError as exc:
            log.error("twin: cannot write %s: %s", self.start.states.path, exc)

    def _report(
        self, desired: DesiredState, step: ConfigStep, reason: str | None = None, ack: bool = True
    ) -> None:
        want = desired.config
        report = ConfigReport(
            rollout_id=desired.config_rollout_id,
            version=None if want is None else want.version,
            step=step,
            reason=None if reason is None else reason[:2000],
            running_version=self.state.running_version,
        )
        try:
            self.client.report_config(report)
        except TwinError as exc:
            # The hub's wave times out without it; the next round reports the outcome again.
            log.warning("twin: report %s of layout %s lost: %s", step, report.version, exc)
            return
        if ack:
            self._acked_revision = desired.revision
