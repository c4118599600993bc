"""The edge's reconciler: moves the running detector towards the hub's desired model.

On its own thread, every ``twin.poll_interval_s``: read the desired state; if it names a
model other than the running one, download it with resume into the staging folder, verify it
(sha256 of the archive, then the bundle's signature and every file's hash against
``model.trusted_keys``), load it beside the running detector, smoke-test both on the agent's
latest frames, and switch the agent's ``DetectorSlot`` (the next step runs the new model).
Each step is reported to the hub; any failure is reported with its reason and the running
model stays. The replaced detector is kept: when the desired state goes back to it (the hub
rolled the wave back) the switch back needs no download (it is smoke-tested again, so a model
the gates refused is measured again when it is rolled out again); a desired model of None means the
store config's own model, which is kept for the whole run. A model that failed here is not
tried again (its failure is reported again instead) until the hub asks for another one.

With a ``LayoutFollower`` the same round first follows the desired store layout
(``layout_follower``: validate, switch the agent's cameras, trial, keep or go back), then the
model, so that each change is tried on its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from common.twin import DesiredModel, DesiredState, ReportedState, SmokeMetrics, TwinStep
from edge_agent.config import StoreConfig
from edge_agent.detect.bundle import BundleRejected, verified_bundle
from edge_agent.detect.detector import Detector
from edge_agent.detect.slot import DetectorSlot, ModelLabel
from edge_agent.errors import ConfigError, RetailCVError
from edge_agent.shelf.classes import DetectorClasses
from edge_agent.twin.client import TwinClient, TwinError
from edge_agent.twin.config import TwinConfig
from edge_agent.twin.layout_follower import LayoutFollower
from edge_agent.twin.smoke import smoke_test

log = logging.getLogger(__name__)

FrameSource = Callable[[], Sequence[npt.NDArray[np.uint8]]]
DetectorOpener = Callable[[Path], Detector]


class StepFailed(RetailCVError):
    """A step of installing a model failed; ``reason`` is what the hub is told."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Reconciler:
    """Follows one device's desired state; ``start()`` / ``stop()`` its thread, or call
    ``reconcile_once()`` directly."""

    def __init__(
        self,
        config: StoreConfig,
        twin: TwinConfig,
        slot: DetectorSlot,
        frames: FrameSource,
        client: TwinClient,
        open_detector: DetectorOpener,
        layouts: LayoutFollower | None = None,
    ) -> None:
        if config.model.trusted_keys is None:
            raise ConfigError(
                "twin: model.trusted_keys must be set: only signed bundles are installed"
            )
        self.config = config
        self.twin = twin
        self.slot = slot
        self.frames = frames
        self.client = client
        self.open_detector = open_detector
        self.layouts = layouts  # the config part of the desired state; None: models only
        self.trusted_keys = config.model.trusted_keys
        self.baseline = slot.current  # the store config's own model: desired None
        self._kept: dict[ModelLabel, Detector] = {ModelLabel.of(self.baseline): self.baseline}
        self._failed: dict[tuple[ModelLabel, str], str] = {}  # (label, sha256) → reason
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._pushed: DesiredState | None = None  # the newest desired state pushed over MQTT
        self._pushed_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._acked_revision = -1

    # -- thread --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start polling on a background thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="twin", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop polling (an install under way finishes its current step first)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def wake(self) -> None:
        """Run the next round now instead of at the end of the poll interval."""
        self._wake.set()

    def offer(self, desired: DesiredState) -> None:
        """A desired state pushed to the box (the retained MQTT ``desired`` message): the next
        round uses it unless the hub's answer over HTTP is newer (higher ``revision``); wakes
        the thread. One for another device is ignored."""
        if desired.device_id != self.client.device_id:
            log.warning("twin: pushed desired state is for device %s: ignored", desired.device_id)
            return
        with self._pushed_lock:
            if self._pushed is None or desired.revision >= self._pushed.revision:
                self._pushed = desired
        self.wake()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.reconcile_once()
            except TwinError as exc:
                log.warning("twin: %s (retrying in %.0f s)", exc, self.twin.poll_interval_s)
            self._wake.wait(self.twin.poll_interval_s)

    def _desired(self) -> DesiredState:
        """The newest desired state known: the hub's over HTTP, or the pushed one when the hub
        cannot be reached or is behind it.

        Raises:
            TwinError: the hub could not be read and nothing was pushed.
        """
        with self._pushed_lock:
            pushed = self._pushed
        try:
            polled = self.client.desired()
        except TwinError:
            if pushed is None:
                raise
            return pushed
        return pushed if pushed is not None and pushed.revision > polled.revision else polled

    # -- one round -----------------------------------------------------------------------------

    def reconcile_once(self) -> None:
        """Read the desired state and act on it once (see the module doc).

        Raises:
            TwinError: the hub could not be read (and no desired state was pushed).
        """
        desired = self._desired()
        if self.layouts is not None:
            # The layout first (it is quick next to a download), then the model: each change
            # is tried alone, on what already runs.
            self.layouts.follow(desired, self._stop)
        failure = self.slot.take_failure()
        if failure is not None:
            reason = f"inference failed after the switch, switched back: {failure.error}"
            log.error("twin: model %s %s %s", failure.label.name, failure.label.version, reason)
            want = desired.model
            if want is not None and (want.name, want.version) == (
                failure.label.name,
                failure.label.version,
            ):
                self._failed[(failure.label, want.sha256)] = reason
            self._report(desired, failure.label, TwinStep.FAILED, reason)
        want = desired.model
        if want is None:
            if self.slot.current is not self.baseline:
                self._switch(desired, self.baseline, None)
            return
        label = ModelLabel(want.name, want.version)
        if self.slot.label == label:
            if self._acked_revision != desired.revision:
                # Already running it (e.g. the config's own bundle): nothing to install.
                self._report(desired, label, TwinStep.SWITCHED)
            self._acked_revision = desired.revision
            return
        earlier = self._failed.get((label, want.sha256))
        if earlier is not None:
            self._report(desired, label, TwinStep.FAILED, f"failed here before: {earlier}")
            return
        kept = self._kept.get(label)
        try:
            if kept is not None:  # loaded already (it ran before): smoke-test it again
                self._smoke_and_switch(desired, label, kept)
            else:
                self._install(desired, want, label)
        except StepFailed as exc:
            log.error("twin: model %s %s not installed: %s", want.name, want.version, exc.reason)
            self._failed[(label, want.sha256)] = exc.reason
            self._report(desired, label, TwinStep.FAILED, exc.reason)

    def _install(self, desired: DesiredState, want: DesiredModel, label: ModelLabel) -> None:
        staging = self.twin.staging_dir
        try:
            path = self.client.download(want, staging)
        except TwinError as exc:
            if exc.reason == "download":
                raise  # the hub or network: try again at the next poll, nothing failed here
            raise StepFailed(f"{exc.reason}: {exc}") from exc
        self._report(desired, label, TwinStep.DOWNLOADED)
        try:
            with verified_bundle(path, self.trusted_keys) as bundle:
                signed = ModelLabel(bundle.manifest.name, bundle.manifest.version)
        except BundleRejected as exc:
            path.unlink(missing_ok=True)
            raise StepFailed(f"{exc.reason}: {exc}") from exc
        if signed != label:
            raise StepFailed(
                f"bundle_mismatch: the signed manifest is {signed.name} {signed.version}, "
                f"not the desired {label.name} {label.version}"
            )
        self._report(desired, label, TwinStep.VERIFIED)
        try:
            candidate = self.open_detector(path)
            self._check_classes(candidate)
        except RetailCVError as exc:  # ModelError, BundleRejected, ConfigError
            raise StepFailed(f"load: {exc}") from exc
        self._report(desired, label, TwinStep.LOADED)
        self._smoke_and_switch(desired, label, candidate)

    def _smoke_and_switch(
        self, desired: DesiredState, label: ModelLabel, candidate: Detector
    ) -> None:
        frames = self._wait_frames()
        try:
            metrics = smoke_test(self.slot.current, candidate, frames)
        except Exception as exc:  # any failure of the candidate's inference fails the test
            raise StepFailed(f"smoke: {type(exc).__name__}: {exc}") from exc
        self._report(desired, label, TwinStep.SMOKE_PASSED, metrics=metrics)
        self._switch(desired, candidate, metrics)

    def _check_classes(self, candidate: Detector) -> None:
        """The classes the store uses must sit at the same indices (trackers and shelves keep
        class ids)."""
        wanted = self.baseline.settings.classes
        if wanted is None:
            same = candidate.manifest.classes == self.baseline.manifest.classes
        else:
            ids = DetectorClasses(self.baseline.manifest.classes).ids(wanted)
            same = np.array_equal(DetectorClasses(candidate.manifest.classes).ids(wanted), ids)
        if not same:
            raise ConfigError(
                f"model {candidate.manifest.name} numbers the store's classes differently from "
                "the config's model"
            )

    def _wait_frames(self) -> list[npt.NDArray[np.uint8]]:
        deadline = time.monotonic() + self.twin.smoke_wait_s
        frames: list[npt.NDArray[np.uint8]] = []
        while time.monotonic() < deadline and not self._stop.is_set():
            frames = list(self.frames())[-self.twin.smoke_frames :]
            if len(frames) >= self.twin.smoke_frames:
                return frames
            time.sleep(0.2)
        if not frames:
            raise StepFailed(f"smoke: no camera frame within {self.twin.smoke_wait_s:.0f} s")
        return frames

    def _switch(
        self, desired: DesiredState, detector: Detector, metrics: SmokeMetrics | None
    ) -> None:
        old = self.slot.swap(detector)
        label = ModelLabel.of(detector)
        log.info(
            "twin: switched from model %s %s to %s %s",
            old.manifest.name, old.manifest.version, label.name, label.version,
        )  # fmt: skip
        # Keep the config's model, the one running and the one before it.
        self._kept = {ModelLabel.of(d): d for d in (self.baseline, old, detector)}
        self._acked_revision = desired.revision
        self._report(desired, label, TwinStep.SWITCHED, metrics=metrics)

    def _report(
        self,
        desired: DesiredState,
        label: ModelLabel,
        step: TwinStep,
        reason: str | None = None,
        metrics: SmokeMetrics | None = None,
    ) -> None:
        running = self.slot.label
        report = ReportedState(
            rollout_id=desired.rollout_id,
            model_name=label.name,
            model_version=label.version,
            step=step,
            reason=None if reason is None else reason[:2000],
            metrics=metrics,
            running_name=running.name,
            running_version=running.version,
        )
        try:
            self.client.report(report)
        except TwinError as exc:
            # The hub's gate times the wave out without it; the next poll goes on.
            log.warning("twin: report %s of %s %s lost: %s", step, label.name, label.version, exc)
