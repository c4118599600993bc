"""The pure part of rollouts: which stores, in which waves, and whether a wave may advance.

No database, no clock: stores, device progress and times (UNIX s) come in as arguments, so
the gate logic is tested exhaustively and fast (tests/cloud_hub/test_rollout_gates.py).
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.twin import TwinStep


class PlanError(ValueError):
    """Targets or a wave plan that cannot be carried out (the message says why)."""


class Gates(BaseModel):
    """What every device of a wave must show before the next wave starts.

    ``max_latency_ratio``: the new model's median ms per frame at most this many times the
    previous model's, measured by the edge on the same frames. ``min_detection_ratio``: its
    detections per frame at least this fraction of the previous model's. A wave that has not
    passed after ``wave_timeout_s`` seconds fails.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_latency_ratio: float = Field(2.0, ge=1.0, le=100.0)
    min_detection_ratio: float = Field(0.5, ge=0.0, le=1.0)
    wave_timeout_s: float = Field(1800.0, gt=0, le=7 * 86400.0)


class Targets(BaseModel):
    """The stores a rollout reaches: a list, a store group, or a percentage of every store
    that has an enrolled device (exactly one of the three)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store_ids: list[str] | None = Field(None, min_length=1)
    group: str | None = Field(None, min_length=1, description="stores.group_name")
    percent: float | None = Field(None, gt=0, le=100)

    @model_validator(mode="after")
    def _one(self) -> Targets:
        given = [x for x in (self.store_ids, self.group, self.percent) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of store_ids, group or percent")
        return self


class WavePlan(BaseModel):
    """How the target stores are cut into waves: ``canary_stores`` first, then all the rest;
    or ``percentages``, cumulative (e.g. [10, 50, 100]); neither: one wave."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    canary_stores: list[str] = Field(default_factory=list)
    percentages: list[float] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> WavePlan:
        if self.canary_stores and self.percentages is not None:
            raise ValueError("give canary_stores or percentages, not both")
        p = self.percentages
        if p is not None:
            if any(not 0 < x <= 100 for x in p) or any(a >= b for a, b in itertools.pairwise(p)):
                raise ValueError("percentages must rise strictly, each in (0, 100]")
            if p[-1] != 100:
                raise ValueError("the last percentage must be 100 (every target store)")
        return self


def _rank(salt: str, store_id: str) -> str:
    return hashlib.sha256(f"{salt}\0{store_id}".encode()).hexdigest()


def select_stores(
    stores: Sequence[tuple[str, str | None]], targets: Targets, salt: str
) -> list[str]:
    """The target stores, from ``stores`` = (store id, group) of every candidate store.

    A percentage takes the first ceil(p% of n) stores in an order shuffled by ``salt`` (the
    rollout's model and version): stable for the rollout, different between models.

    Raises:
        PlanError: an unknown store, an empty group, or no store at all.
    """
    known = {s for s, _ in stores}
    if targets.store_ids is not None:
        unknown = sorted(set(targets.store_ids) - known)
        if unknown:
            raise PlanError(f"stores {unknown} have no enrolled device")
        chosen = list(dict.fromkeys(targets.store_ids))
    elif targets.group is not None:
        chosen = sorted(s for s, g in stores if g == targets.group)
        if not chosen:
            raise PlanError(f"no store with an enrolled device in group {targets.group!r}")
    else:
        assert targets.percent is not None
        ordered = sorted(known, key=lambda s: _rank(salt, s))
        chosen = ordered[: math.ceil(len(ordered) * targets.percent / 100.0)]
    if not chosen:
        raise PlanError("the targets hold no store with an enrolled device")
    return chosen


def plan_waves(stores: Sequence[str], plan: WavePlan) -> list[list[str]]:
    """The waves (store ids each, none empty) that cover ``stores`` once, in order.

    Raises:
        PlanError: a canary store that is not a target.
    """
    if plan.canary_stores:
        outside = sorted(set(plan.canary_stores) - set(stores))
        if outside:
            raise PlanError(f"canary stores {outside} are not among the target stores")
        canary = list(dict.fromkeys(plan.canary_stores))
        rest = [s for s in stores if s not in set(canary)]
        return [canary, rest] if rest else [canary]
    if plan.percentages is None:
        return [list(stores)]
    waves: list[list[str]] = []
    start = 0
    for p in plan.percentages:
        end = math.ceil(len(stores) * p / 100.0)
        if end > start:
            waves.append(list(stores[start:end]))
            start = end
    return waves


@dataclass(frozen=True, slots=True)
class DeviceProgress:
    """Where one device of a wave stands: its last step and its smoke test's numbers
    (ms per frame, detections per frame; None until reported)."""

    device_id: str
    step: str
    reason: str | None = None
    latency_ms_before: float | None = None
    latency_ms_after: float | None = None
    detections_before: float | None = None
    detections_after: float | None = None


class Outcome(StrEnum):
    """What a wave's gate says."""

    PASS = "pass"
    FAIL = "fail"
    WAIT = "wait"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A gate's outcome and, for a failure, why (naming the device and the numbers)."""

    outcome: Outcome
    reason: str | None = None


def device_problem(d: DeviceProgress, gates: Gates) -> str | None:
    """Why this device fails the gates, or None (it passes, or has not got far enough)."""
    if d.step == TwinStep.FAILED:
        return f"device {d.device_id} failed: {d.reason or 'no reason given'}"
    lb, la = d.latency_ms_before, d.latency_ms_after
    if lb is not None and la is not None and lb > 0 and la > gates.max_latency_ratio * lb:
        return (
            f"device {d.device_id}: latency {la:.1f} ms per frame vs {lb:.1f} ms before "
            f"(x{la / lb:.2f} > max_latency_ratio {gates.max_latency_ratio})"
        )
    db, da = d.detections_before, d.detections_after
    if db is not None and da is not None and db > 0 and da < gates.min_detection_ratio * db:
        return (
            f"device {d.device_id}: {da:.2f} detections per frame vs {db:.2f} before "
            f"(x{da / db:.2f} < min_detection_ratio {gates.min_detection_ratio})"
        )
    return None


def evaluate_wave(
    devices: Sequence[DeviceProgress], gates: Gates, started_at: float, now: float
) -> Verdict:
    """The gate of one wave: FAIL as soon as one device failed a step or a bound; PASS once
    every device switched within the bounds (a wave without devices passes); FAIL once
    ``wave_timeout_s`` has passed without that; WAIT otherwise."""
    for d in sorted(devices, key=lambda d: d.device_id):
        problem = device_problem(d, gates)
        if problem is not None:
            return Verdict(Outcome.FAIL, problem)
    behind = sorted(d.device_id for d in devices if d.step != TwinStep.SWITCHED)
    if not behind:
        return Verdict(Outcome.PASS)
    if now - started_at >= gates.wave_timeout_s:
        return Verdict(
            Outcome.FAIL,
            f"wave timed out after {gates.wave_timeout_s:.0f} s; not switched: {behind}",
        )
    return Verdict(Outcome.WAIT)
