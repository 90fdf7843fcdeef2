"""Metric names, their directions, derived metrics and the one ranking rule of a run's results.

Pure (standard library only): the strategies (nascli.ga.fitness), the driver's progress line, the
report, the store's report queries and `nas export latest` all rank through `Ranking.key`, so rank 1
is the same evaluation everywhere.

`Ranking.key` implements the run's own fitness rule (`[fitness]`, Klos et al., seed 000, Sec. 3.1):
without a threshold, the primary metric decides (fewer `secondary` breaks ties). With a threshold,
the ranking is the rule in its final mode: a result above the threshold ranks above every result at
or below it, and among those above, the smaller secondary metric (parameters by default) wins, as
an island ranks once its worst individual exceeds the threshold; results at or below the threshold
rank by the primary metric. `--rank-by METRIC` ranks by one metric in its direction instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ACCURACIES = ("train_accuracy", "val_accuracy", "test_accuracy")
# What a finished evaluation reports, as stored in its columns (nascli.task.Result).
METRIC_COLUMNS = ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "train_accuracy", "train_loss",
                  "params", "flops", "latency_ms", "epochs_run", "best_epoch", "train_seconds", "peak_memory_bytes")
# The metrics a strategy is told (an Outcome's metrics).
OUTCOME_METRICS = ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "train_accuracy", "train_loss",
                   "params", "flops", "latency_ms", "epochs_run", "train_seconds")
PRIMARY_METRICS = ("val_accuracy", "inverse_val_loss")
COST_METRICS = ("params", "flops", "latency_ms")
# Derived metric -> the column it is computed from.
DERIVED = {"inverse_val_loss": "val_loss"}
MAXIMISED = frozenset({*ACCURACIES, "inverse_val_loss"})
# What `--rank-by` accepts: validation and cost metrics (selection and ranking never use test metrics).
RANKABLE = ("val_accuracy", "inverse_val_loss", "val_loss", "params", "flops", "latency_ms")
_TINY = 1e-12
# A result the stop rule ended before its last epoch (nascli.stop_rule): never ranked, never a best.
STOPPED = "stopped_at_epoch"


def column_of(name: str) -> str:
    """The stored column a metric is read from (`inverse_val_loss` -> `val_loss`)."""
    return DERIVED.get(name, name)


def is_maximised(name: str) -> bool:
    return name in MAXIMISED


def value(metrics: Mapping[str, Any], name: str) -> float | None:
    """The metric's value (derived ones computed), None when missing or NaN."""
    raw = metrics.get(column_of(name))
    if raw is None:
        return None
    number = float(raw)
    if number != number:
        return None
    if name == "inverse_val_loss":
        return 1.0 / max(number, _TINY)
    return number


def oriented(name: str, number: float) -> float:
    """Larger is better: maximised metrics as they are, minimised ones negated."""
    return number if is_maximised(name) else -number


@dataclass(frozen=True)
class Ranking:
    """How a run's results rank, best first. `rank_by` (a RANKABLE metric) overrides the fitness rule."""

    primary: str = "val_accuracy"
    threshold: float | None = None
    secondary: str = "params"
    rank_by: str | None = None

    def __post_init__(self) -> None:
        if self.primary not in PRIMARY_METRICS:
            raise ValueError(f"primary must be one of {PRIMARY_METRICS}, not {self.primary!r}")
        if self.secondary not in COST_METRICS:
            raise ValueError(f"secondary must be one of {COST_METRICS}, not {self.secondary!r}")
        if self.rank_by is not None and self.rank_by not in RANKABLE:
            raise ValueError(f"rank_by must be one of {RANKABLE}, not {self.rank_by!r}")

    @classmethod
    def of_config(cls, config: Mapping[str, Any] | None, rank_by: str | None = None) -> Ranking:
        """The ranking of a run from its stored configuration (a dict of sections)."""
        fitness = (config or {}).get("fitness")
        fitness = fitness if isinstance(fitness, Mapping) else {}
        return cls(primary=fitness.get("primary") or "val_accuracy", threshold=fitness.get("threshold"),
                   secondary=fitness.get("secondary") or "params", rank_by=rank_by)

    @property
    def deciding(self) -> str:
        """The metric a result must have to be ranked at all."""
        return self.rank_by or self.primary

    @property
    def columns(self) -> tuple[str, ...]:
        """The stored columns the key reads."""
        names = (self.primary, self.secondary) + ((self.rank_by,) if self.rank_by else ())
        return tuple(dict.fromkeys(column_of(name) for name in names))

    def describe(self) -> str:
        """One phrase for reports: what rank 1 means."""
        if self.rank_by:
            return f"{self.rank_by} ({'highest' if is_maximised(self.rank_by) else 'lowest'} first)"
        if self.threshold is None:
            return f"{self.primary} (highest first)"
        return (f"{self.primary} > {self.threshold:g} first, then fewest {self.secondary}; "
                f"below the threshold highest {self.primary}")

    def key(self, metrics: Mapping[str, Any]) -> tuple[float, ...] | None:
        """Sort key, larger is better; None when the result lacks the deciding metric, or when the
        stop rule ended its training (`stopped_at_epoch`): neither is ranked."""
        deciding = value(metrics, self.deciding)
        if deciding is None or metrics.get(STOPPED) is not None:
            return None
        primary = value(metrics, self.primary)
        secondary = value(metrics, self.secondary)
        primary_key = -math.inf if primary is None else primary
        fewer = -math.inf if secondary is None else -secondary
        if self.rank_by is not None:
            return (oriented(self.rank_by, deciding), primary_key, fewer)
        if self.threshold is None:
            return (primary_key, fewer)
        if primary_key > self.threshold:
            return (1.0, fewer, primary_key)
        return (0.0, primary_key, fewer)
