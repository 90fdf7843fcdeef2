"""Run-level stopping rules beside the strategy's own budget (its generations): the pure decision.

- `run.max_evaluations`: stop once this many evaluations of the strategy's children have finished
  (done or failed, trained or answered by the cache; a migrant's copy is not an evaluation). No
  child is asked for once that many are issued and an asynchronous ask is cut to what is left; a
  synchronous strategy's generation is issued whole, so one that straddles the limit finishes
  (its queued children are cancelled, its running ones counted);
- `run.max_hours`: stop once the run's driving clock reaches this many hours. The clock counts the
  time drivers have driven the run, not the time it lay interrupted: each driver adds its own
  seconds to the total it found stored, and records the total (a `clock` event) at most every
  CLOCK_EVERY_SECONDS and when it stops, so a resumed run goes on from the last recorded total
  (a driver killed without warning loses at most that much of its time);
- `run.target`: stop once a ranked result's primary metric (`fitness.primary`) reaches the target.

Every input is what the database holds (finished evaluations, recorded clock, results), so a
resumed run decides as the uninterrupted one would have. When a rule fires the driver records it
(a `stopped` event: `StopReason.payload()`), asks for no more children, cancels the queued ones and
waits for the running ones, whose results it keeps; `nas report` shows the reason (`stop_reason`).
Stdlib only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

STOP_EVENT = "stopped"  # {"rule", "detail"}: the rule that ended the run
CLOCK_EVENT = "clock"  # {"seconds"}: the run's driving clock, total over every driver so far
CLOCK_EVERY_SECONDS = 60.0
RULES = ("target", "max_evaluations", "max_hours")  # checked in this order; the first that holds wins
BUDGET_SPENT = "generations: the strategy's budget is spent"


@dataclass(frozen=True)
class StopLimits:
    """The `[run]` limits (None: no such limit)."""

    max_evaluations: int | None = None
    max_hours: float | None = None
    target: float | None = None

    @classmethod
    def of_run_section(cls, run: Any) -> StopLimits:
        get = run.get if isinstance(run, Mapping) else lambda name: getattr(run, name, None)
        return cls(get("max_evaluations"), get("max_hours"), get("target"))

    @property
    def active(self) -> bool:
        return any(limit is not None for limit in (self.max_evaluations, self.max_hours, self.target))


@dataclass(frozen=True)
class RunState:
    """What the limits are compared with, all from the database."""

    evaluations: int  # finished evaluations of the strategy's children
    driving_seconds: float  # the run's driving clock
    best_primary: float | None  # the best ranked result's primary metric (None: none yet)


@dataclass(frozen=True)
class StopReason:
    rule: str  # one of RULES
    detail: str

    def payload(self) -> dict[str, str]:
        return {"rule": self.rule, "detail": self.detail}

    @classmethod
    def of_payload(cls, payload: Mapping[str, Any]) -> StopReason:
        return cls(str(payload.get("rule")), str(payload.get("detail", "")))

    def __str__(self) -> str:
        return f"run.{self.rule}: {self.detail}"


def stop_reason(limits: StopLimits, state: RunState) -> StopReason | None:
    """The first rule of RULES that holds for `state`, or None: keep going."""
    if limits.target is not None and state.best_primary is not None and state.best_primary >= limits.target:
        return StopReason("target", f"best primary metric {state.best_primary:.6g} reached the target "
                                    f"{limits.target:g}")
    if limits.max_evaluations is not None and state.evaluations >= limits.max_evaluations:
        return StopReason("max_evaluations", f"{state.evaluations} evaluations finished, the limit is "
                                             f"{limits.max_evaluations}")
    hours = state.driving_seconds / 3600.0
    if limits.max_hours is not None and hours >= limits.max_hours:
        return StopReason("max_hours", f"driven {hours:.4g} h, the limit is {limits.max_hours:g} h")
    return None


def children_allowed(limits: StopLimits, issued: int, wanted: int | None) -> int | None:
    """How many children the next ask may take so the run issues at most `max_evaluations`: none
    once `issued` reaches it; an asynchronous ask (`wanted` a number) is cut to what is left; a
    synchronous strategy's generation (`wanted` None: whatever is ready) is issued whole."""
    if limits.max_evaluations is None:
        return wanted
    left = max(0, limits.max_evaluations - issued)
    if wanted is None:
        return 0 if left == 0 else None
    return min(wanted, left)


def stored_clock(payloads: Iterable[Mapping[str, Any]]) -> float:
    """The driving seconds recorded so far: the largest total of the run's clock events."""
    return max((float(payload.get("seconds", 0.0)) for payload in payloads), default=0.0)


def describe_stop(status: str, stopped: Mapping[str, Any] | None) -> str | None:
    """Why a run ended, as `nas report` says it: the recorded rule, the spent budget of a finished
    run without one, `cancelled`, `failed`; None while it has not ended (running, interrupted)."""
    if stopped is not None:
        return str(StopReason.of_payload(stopped))
    return {"finished": BUDGET_SPENT, "cancelled": "cancelled (nas cancel)", "failed": "failed"}.get(status)
