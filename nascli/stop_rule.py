"""Stopping children that cannot win (`train.stop_rule`): the pure decision and the comparison curves.

A curve is a child's validation accuracy after each epoch (`curve[0]` after epoch 1). The driver
sends each queued child a comparison curve in its task (`train.stop_curve`): with `below-worst`
the curve of the worst living member of the child's destination island (island GA, mu+lambda),
with `median` the per-epoch median of the finished evaluations' curves. The worker checks after
every epoch and stops a child that is more than `stop_margin` below the comparison at the same
epoch, from epoch `stop_min_epochs` on. The comparison is a function of the driver's folded
state only, so the decision, recorded with the result, replays exactly. Stdlib only (no torch).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

STOP_RULES = ("off", "below-worst", "median")
# The task.train key that carries the comparison curve to the worker (not a config setting).
STOP_CURVE_KEY = "stop_curve"


def should_stop(curve: Sequence[float], comparison: Sequence[float] | None, margin: float, min_epochs: int) -> bool:
    """Whether a child whose curve so far is `curve` stops now: at epoch len(curve) >= min_epochs it
    is more than `margin` below the comparison at that epoch. No comparison there: go on."""
    epoch = len(curve)
    if comparison is None or epoch < max(1, min_epochs) or epoch > len(comparison):
        return False
    return curve[-1] < comparison[epoch - 1] - margin


def stop_epoch(curve: Sequence[float], comparison: Sequence[float] | None, margin: float, min_epochs: int, *,
               trained_to_end: bool) -> int | None:
    """The epoch at which a child with this curve stops (None: never). The last epoch of a child
    trained to the end was not checked (it ended by patience or the epoch limit first)."""
    last = len(curve) - 1 if trained_to_end else len(curve)
    return next((epoch for epoch in range(1, last + 1) if should_stop(curve[:epoch], comparison, margin, min_epochs)),
                None)


def median_curve(curves: Sequence[Sequence[float]]) -> list[float]:
    """The per-epoch median over the curves that reach each epoch (shorter curves drop out)."""
    longest = max((len(curve) for curve in curves), default=0)
    return [statistics.median(curve[epoch] for curve in curves if len(curve) > epoch) for epoch in range(longest)]


def stop_check(train: Mapping[str, Any]) -> Callable[[Sequence[float]], bool] | None:
    """The decision a worker applies to a task's curve after each epoch (None: the rule is off)."""
    if train.get("stop_rule", "off") == "off":
        return None
    comparison = train.get(STOP_CURVE_KEY)
    margin, min_epochs = float(train.get("stop_margin", 0.0)), int(train.get("stop_min_epochs", 1))
    return lambda curve: should_stop(curve, comparison, margin, min_epochs)


class StopCurves:
    """The driver's side: the curves of finished evaluations, folded in seq order, and the
    comparison curve each queued child gets (a function of that fold only, so resume repeats it)."""

    def __init__(self, train: Any, strategy: Any) -> None:
        self.rule, self.margin, self.min_epochs = train.stop_rule, train.stop_margin, train.stop_min_epochs
        self.strategy = strategy  # below-worst asks it for the destination island's worst member
        self.by_key: dict[Any, list[float]] = {}
        self.finished: list[list[float]] = []

    def tell(self, key: Any, result: Any) -> None:
        curve = result.extra.get("curve") if result.status == "done" else None
        if self.rule != "off" and curve:
            self.by_key[key] = list(curve)
            self.finished.append(self.by_key[key])

    def comparison(self, island: int) -> list[float] | None:
        if self.rule == "below-worst":
            worst = self.strategy.worst_living(island)
            return self.by_key.get(worst) if worst is not None else None
        if self.rule == "median":
            return median_curve(self.finished) or None
        return None

    def reusable(self, result: Any, island: int) -> bool:
        """Whether a finished evaluation of the same genome (same seed, so the same curve) is what
        training it again against this child's comparison would give: the same stop decision."""
        if self.rule == "off" or result.status != "done":
            return True
        curve = result.extra.get("curve")
        if not curve:
            return False
        stopped_at = result.extra.get("stopped_at_epoch")
        return stop_epoch(curve, self.comparison(island), self.margin, self.min_epochs,
                          trained_to_end=stopped_at is None) == stopped_at

    def attach(self, task: Any, island: int) -> Any:
        """`task` with its comparison curve in task.train (unchanged when there is none)."""
        comparison = self.comparison(island)
        if comparison is None:
            return task
        return dataclasses.replace(task, train={**task.train, STOP_CURVE_KEY: comparison})


def planned_stop(train: Mapping[str, Any], curve: Sequence[float]) -> int | None:
    """Where a child whose whole curve is known in advance (the synthetic evaluator) stops."""
    if train.get("stop_rule", "off") == "off":
        return None
    return stop_epoch(curve, train.get(STOP_CURVE_KEY), float(train.get("stop_margin", 0.0)),
                      int(train.get("stop_min_epochs", 1)), trained_to_end=True)


def train_settings(train: Mapping[str, Any]) -> dict[str, Any]:
    """A task's train dict as the [train] section it came from (without the comparison curve and the
    transfer donor, which the driver adds per child)."""
    from nascli.transfer import TRANSFER_DONOR_KEY

    return {key: value for key, value in train.items() if key not in (STOP_CURVE_KEY, TRANSFER_DONOR_KEY)}


__all__ = ["STOP_CURVE_KEY", "STOP_RULES", "StopCurves", "median_curve", "planned_stop", "should_stop", "stop_check",
           "stop_epoch", "train_settings"]
