"""Stopping children that cannot win (`train.stop_rule`): the pure decision and the comparison curves.

A curve is a child's validation accuracy after each epoch (`curve[0]` after epoch 1). The driver
sends each queued child comparison curves in its task: with `below-worst` the curve of the worst
living member of the child's destination island (island GA, mu+lambda), with `median` the per-epoch
median of the finished evaluations' curves. `below-worst` never asks for more than the island's
entry bar, the worst member's final accuracy (a child above it could still enter). Curves compare
like with like: a child that starts from transferred weights (`train.transfer`) begins near its
donor's accuracy, one trained from scratch does not, so each kind is compared only with evaluations
of its own kind (`train.stop_curve` for children trained from scratch,
`train.stop_curve_transferred` for the others; the worker picks the one that fits what it did). The
worker checks after every epoch and stops a child that is more than `stop_margin` below the
comparison at the same epoch, from epoch `stop_min_epochs` on. The comparison is a function of the
driver's folded state only, so the decision, recorded with the result, replays exactly. Stdlib only
(no torch).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

STOP_RULES = ("off", "below-worst", "median")
# The task.train keys that carry the comparison curves to the worker (not config settings): for a
# child trained from scratch, and for one that starts from transferred weights.
STOP_CURVE_KEY = "stop_curve"
STOP_CURVE_TRANSFERRED_KEY = "stop_curve_transferred"


def curve_key(transferred: bool) -> str:
    return STOP_CURVE_TRANSFERRED_KEY if transferred else STOP_CURVE_KEY


def started_from_transfer(extra: Mapping[str, Any]) -> bool:
    """Whether a result's training started from transferred weights (at least one layer)."""
    return bool((extra.get("transfer") or {}).get("layers"))


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


def stop_check(train: Mapping[str, Any], *, transferred: bool = False) -> Callable[[Sequence[float]], bool] | None:
    """The decision a worker applies to a task's curve after each epoch (None: the rule is off);
    `transferred`: the child starts from transferred weights."""
    if train.get("stop_rule", "off") == "off":
        return None
    comparison = train.get(curve_key(transferred))
    margin, min_epochs = float(train.get("stop_margin", 0.0)), int(train.get("stop_min_epochs", 1))
    return lambda curve: should_stop(curve, comparison, margin, min_epochs)


class StopCurves:
    """The driver's side: the curves of finished evaluations, folded in seq order, and the
    comparison curve each queued child gets (a function of that fold only, so resume repeats it)."""

    def __init__(self, train: Any, strategy: Any) -> None:
        self.rule, self.margin, self.min_epochs = train.stop_rule, train.stop_margin, train.stop_min_epochs
        self.strategy = strategy  # below-worst asks it for the destination island's worst member
        self.by_key: dict[Any, tuple[list[float], bool]] = {}  # key -> (curve, started from transfer)
        self.finished: dict[bool, list[list[float]]] = {False: [], True: []}
        self.final: dict[Any, float] = {}  # key -> final validation accuracy

    def tell(self, key: Any, result: Any) -> None:
        curve = result.extra.get("curve") if result.status == "done" else None
        if self.rule != "off" and curve:
            transferred = started_from_transfer(result.extra)
            self.by_key[key] = (list(curve), transferred)
            self.finished[transferred].append(self.by_key[key][0])
        if self.rule != "off" and result.status == "done" and result.val_accuracy is not None:
            self.final[key] = result.val_accuracy

    def comparison(self, island: int, transferred: bool = False) -> list[float] | None:
        """The curve a child of this kind is compared with (None: none, it trains to the end)."""
        if self.rule == "below-worst":
            def same_kind(key: Any) -> bool:
                known = self.by_key.get(key)
                return known is not None and known[1] == transferred

            worst = self.strategy.worst_living(island, among=same_kind)
            if worst is None:
                return None
            # A child already above the island's entry bar (its worst member's final accuracy)
            # could still enter: the comparison never asks for more than the bar.
            bar = self.final.get(self.strategy.worst_living(island))
            return [min(value, bar) for value in self.by_key[worst][0]] if bar is not None else self.by_key[worst][0]
        if self.rule == "median":
            return median_curve(self.finished[transferred]) or None
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
        comparison = self.comparison(island, started_from_transfer(result.extra))
        return stop_epoch(curve, comparison, self.margin, self.min_epochs,
                          trained_to_end=stopped_at is None) == stopped_at

    def attach(self, task: Any, island: int) -> Any:
        """`task` with its comparison curves in task.train (unchanged when there is none)."""
        curves = {curve_key(kind): curve for kind in (False, True)
                  if (curve := self.comparison(island, kind)) is not None}
        return dataclasses.replace(task, train={**task.train, **curves}) if curves else task


def planned_stop(train: Mapping[str, Any], curve: Sequence[float], *, transferred: bool = False) -> int | None:
    """Where a child whose whole curve is known in advance (the synthetic evaluator) stops."""
    if train.get("stop_rule", "off") == "off":
        return None
    return stop_epoch(curve, train.get(curve_key(transferred)), float(train.get("stop_margin", 0.0)),
                      int(train.get("stop_min_epochs", 1)), trained_to_end=True)


def train_settings(train: Mapping[str, Any]) -> dict[str, Any]:
    """A task's train dict as the [train] section it came from (without the comparison curves and the
    transfer donor, which the driver adds per child)."""
    from nascli.transfer import TRANSFER_DONOR_KEY

    added = (STOP_CURVE_KEY, STOP_CURVE_TRANSFERRED_KEY, TRANSFER_DONOR_KEY)
    return {key: value for key, value in train.items() if key not in added}


__all__ = ["STOP_CURVE_KEY", "STOP_CURVE_TRANSFERRED_KEY", "STOP_RULES", "StopCurves", "curve_key", "median_curve",
           "planned_stop", "should_stop", "started_from_transfer", "stop_check", "stop_epoch", "train_settings"]
