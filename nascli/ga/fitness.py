"""Fitness of evaluated individuals: Klos's threshold rule, objective values, roulette weights.

Only validation metrics and cost metrics (params, flops, latency_ms) are read here; test metrics
are never looked at, so they cannot influence a decision (docs/design.md, principle 5).

Klos rule (seed 000, Sec. 3.1 and Table 5): an island selects on the primary metric (validation
accuracy, or 1 / validation loss) until its WORST individual exceeds `threshold`; from then on the
secondary metric (parameter count by default) decides, smaller being better. We make that
comparison lexicographic: in secondary mode an individual at or below the threshold is worse than
any above it, so a small but inaccurate child can never push the island back below the threshold.
Roulette weight in secondary mode is 1 / secondary: an individual with half the parameters is
twice as likely to be picked (scale-free, always positive).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nascli import metrics as metric_names
from nascli.metrics import COST_METRICS, PRIMARY_METRICS

_TINY = 1e-12


class MissingMetric(ValueError):
    """A 'done' outcome lacks a metric the strategy needs (treated like a failure by strategies)."""


def metric_value(metrics: Mapping[str, Any], name: str) -> float:
    """The value of an objective; `inverse_val_loss` is 1 / val_loss (Hajewski fitness)."""
    if name.startswith("test_"):
        raise ValueError(f"{name} is a test metric; selection never uses the test set")
    value = metric_names.value(metrics, name)
    if value is None:
        raise MissingMetric(metric_names.column_of(name))
    return value


def has_metrics(metrics: Mapping[str, Any], names: Sequence[str]) -> bool:
    try:
        for name in names:
            metric_value(metrics, name)
    except MissingMetric:
        return False
    return True


@dataclass(frozen=True)
class FitnessRule:
    primary: str = "val_accuracy"
    threshold: float | None = None
    secondary: str = "params"

    def __post_init__(self) -> None:
        if self.primary not in PRIMARY_METRICS:
            raise ValueError(f"fitness.primary must be one of {PRIMARY_METRICS}, not {self.primary!r}")
        if self.secondary not in COST_METRICS:
            raise ValueError(f"fitness.secondary must be one of {COST_METRICS}, not {self.secondary!r}")

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> FitnessRule:
        return cls(primary=section.get("primary", "val_accuracy"), threshold=section.get("threshold"),
                   secondary=section.get("secondary", "params"))

    @property
    def needed_metrics(self) -> tuple[str, ...]:
        return (self.primary,) if self.threshold is None else (self.primary, self.secondary)

    def primary_value(self, metrics: Mapping[str, Any]) -> float:
        return metric_value(metrics, self.primary)

    def secondary_mode(self, population: Sequence[Mapping[str, Any]]) -> bool:
        """True once the worst individual's primary value exceeds the threshold (Klos)."""
        if self.threshold is None or not population:
            return False
        return min(self.primary_value(m) for m in population) > self.threshold

    def key(self, metrics: Mapping[str, Any], secondary_mode: bool) -> tuple[float, ...]:
        """Sort key, larger is better, comparable within one mode."""
        primary = self.primary_value(metrics)
        if not secondary_mode:
            return (primary,)
        above = 1.0 if self.threshold is not None and primary > self.threshold else 0.0
        return (above, -metric_value(metrics, self.secondary))

    def weight(self, metrics: Mapping[str, Any], secondary_mode: bool) -> float:
        """Roulette weight (Klos Eq. 1): primary value, or 1 / secondary in secondary mode."""
        if not secondary_mode:
            value = self.primary_value(metrics)
            return value if value > 0 and math.isfinite(value) else 0.0
        return 1.0 / max(metric_value(metrics, self.secondary), _TINY)
