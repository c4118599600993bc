"""The detector the agent runs, as a slot another thread can swap between frames.

The agent loop reads ``slot.current`` once per step and runs that detector on the step's
frames, so a swap is a reference change the next step picks up: no frame is dropped and no
frame sees half of two models. The slot keeps the detector it replaced (``previous``): if the
new one raises while the agent runs it, the loop calls ``revert`` and goes on with the
previous one, and the failure waits in ``take_failure`` for the twin to report it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from edge_agent.detect.detector import Detector


@dataclass(frozen=True, slots=True)
class ModelLabel:
    """Which model a detector is: its manifest's name and version."""

    name: str
    version: str

    @classmethod
    def of(cls, detector: Detector) -> ModelLabel:
        """The label of a loaded detector."""
        return cls(detector.manifest.name, detector.manifest.version)


@dataclass(frozen=True, slots=True)
class SwitchFailure:
    """A model that failed after it was switched in, and why."""

    label: ModelLabel
    error: str


class DetectorSlot:
    """Holds the running detector and the one it replaced; thread-safe."""

    def __init__(self, detector: Detector) -> None:
        self._lock = threading.Lock()
        self._current = detector
        self._previous: Detector | None = None
        self._failure: SwitchFailure | None = None

    @property
    def current(self) -> Detector:
        """The detector to run now."""
        return self._current

    @property
    def label(self) -> ModelLabel:
        """The running model's label."""
        return ModelLabel.of(self._current)

    @property
    def previous(self) -> Detector | None:
        """The detector the last swap replaced (None after a revert)."""
        return self._previous

    def swap(self, detector: Detector) -> Detector:
        """Run ``detector`` from the next step on; returns the one it replaces (kept as
        ``previous``)."""
        with self._lock:
            old = self._current
            self._previous = old
            self._current = detector
            return old

    def revert(self, failed: Detector, error: str) -> bool:
        """``failed`` raised while running: go back to the previous detector. False (nothing
        changed) when ``failed`` is not the current one or there is no previous one."""
        with self._lock:
            if failed is not self._current or self._previous is None:
                return False
            self._failure = SwitchFailure(ModelLabel.of(failed), error)
            self._current = self._previous
            self._previous = None
            return True

    def take_failure(self) -> SwitchFailure | None:
        """The failure of the last revert, once (None if there was none since)."""
        with self._lock:
            failure, self._failure = self._failure, None
            return failure
