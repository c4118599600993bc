"""Threshold alerts over metric samples, with hold time, clear hysteresis and cooldown.

A rule raises when its condition (``value op threshold``) has held on every sample of its
(metric, target) for at least ``for_s`` seconds, and not within ``cooldown_s`` after its last
clear (if the condition still holds when the cooldown ends, it raises on the next sample). A
raised rule clears on the first sample where ``value op clear_threshold`` no longer holds.
Anything published as a metric can be alerted on, ``camera_offline`` included.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from edge_agent.analytics.config import AlertRule

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """An alert rule changed state at media time ``t_s`` on sample ``value``."""

    rule: AlertRule
    kind: Literal["raised", "cleared"]
    t_s: float
    value: float


@dataclass(slots=True)
class _RuleState:
    holding_since: float | None = None
    active: bool = False
    cleared_at: float | None = None


class AlertEngine:
    """Evaluates alert rules on metric samples; time is passed in, media seconds."""

    def __init__(self, rules: Sequence[AlertRule]) -> None:
        self.rules = list(rules)
        self._state = {r.id: _RuleState() for r in self.rules}
        self._by_key: dict[tuple[str, str], list[AlertRule]] = {}
        for r in self.rules:
            self._by_key.setdefault((r.metric, r.target), []).append(r)

    def watches(self, metric: str, target: str) -> bool:
        """Whether any rule uses this (metric, target), so callers can skip the sample."""
        return (metric, target) in self._by_key

    def is_active(self, rule_id: str) -> bool:
        """Whether the rule is raised now."""
        return self._state[rule_id].active

    def observe(self, metric: str, target: str, value: float, t_s: float) -> list[AlertEvent]:
        """Feed one sample; returns the raises and clears it causes."""
        rules = self._by_key.get((metric, target))
        if not rules:
            return []
        if not math.isfinite(value):
            raise ValueError(f"metric {metric!r} of {target!r} at {t_s} s is not finite: {value}")
        out: list[AlertEvent] = []
        for rule in rules:
            st = self._state[rule.id]
            op = _OPS[rule.op]
            if st.active:
                if not op(value, rule.clear_at):
                    st.active, st.cleared_at, st.holding_since = False, t_s, None
                    out.append(AlertEvent(rule, "cleared", t_s, value))
                continue
            if not op(value, rule.threshold):
                st.holding_since = None
                continue
            if st.holding_since is None:
                st.holding_since = t_s
            held = t_s - st.holding_since >= rule.for_s
            cooled = st.cleared_at is None or t_s - st.cleared_at >= rule.cooldown_s
            if held and cooled:
                st.active = True
                out.append(AlertEvent(rule, "raised", t_s, value))
        return out
