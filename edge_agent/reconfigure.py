"""Reconfiguring the running agent's cameras from another thread, with a trial.

Another thread (the twin's reconciler) asks with ``EdgeAgent.request_reconfigure(config,
trial_s)`` and waits on the returned ``Reconfiguration``; the agent's own loop picks it up
between two steps, switches its cameras (readers, trackers, analytics) to the new config and
keeps its detector, outbox and privacy gate. Then the trial: for ``trial_s`` seconds every
step must run without an exception and at least one enabled camera must reach ``streaming``;
otherwise the loop switches back to the config it replaced, the same way, and the request
ends with the reason.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from edge_agent.sources.health import CameraHealth, CameraState

if TYPE_CHECKING:
    from edge_agent.config import StoreConfig


class Reconfiguration:
    """One request to run ``config``: created by the asking thread, finished by the loop."""

    def __init__(self, config: StoreConfig, trial_s: float) -> None:
        self.config = config
        self.trial_s = trial_s
        self._lock = threading.Lock()
        self._taken = False
        self._cancelled = False
        self._done = threading.Event()
        self._error: str | None = None

    def take(self) -> bool:
        """The loop starts on it; False if it was cancelled first."""
        with self._lock:
            if self._cancelled:
                return False
            self._taken = True
            return True

    def cancel(self) -> bool:
        """Withdraw it before the loop takes it; False when the loop has it already (it then
        finishes within its trial)."""
        with self._lock:
            if self._taken:
                return False
            self._cancelled = True
            self._done.set()
            self._error = "cancelled before the agent applied it"
            return True

    def finish(self, error: str | None) -> None:
        """Called by the loop: None when the config passed its trial and runs; otherwise why
        it did not apply or failed its trial (the previous config runs)."""
        self._error = error
        self._done.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until it is finished; False on timeout."""
        return self._done.wait(timeout_s)

    @property
    def done(self) -> bool:
        """Finished (applied and trial over, failed, or cancelled)."""
        return self._done.is_set()

    @property
    def error(self) -> str | None:
        """Why it failed, once finished (None: it runs)."""
        return self._error


class ConfigTrial:
    """Judges a new config over its trial from the cameras' health (times in seconds of the
    same monotonic clock, passed in)."""

    def __init__(self, request: Reconfiguration, previous: StoreConfig, start_s: float) -> None:
        self.request = request
        self.previous = previous
        self.deadline_s = start_s + request.trial_s
        self.streamed: set[str] = set()
        self.error: str | None = None

    def observe(self, now_s: float, health: Sequence[CameraHealth]) -> bool:
        """Note which cameras stream now; True once the trial is over, and then ``error`` is
        None (a camera streamed) or why it failed."""
        self.streamed.update(h.camera_id for h in health if h.state is CameraState.STREAMING)
        if now_s < self.deadline_s:
            return False
        if not self.streamed:
            states = "; ".join(
                f"{h.camera_id}: {h.state}" + (f" ({h.last_error})" if h.last_error else "")
                for h in health
            )
            self.error = (
                f"no enabled camera streamed within the {self.request.trial_s:g} s trial "
                f"[{states or 'no enabled camera'}]"
            )
        return True
