"""The per-evaluation wall-clock limit (`train.max_seconds`) and the watchdog that enforces it.

A training that hangs (a GPU stuck in a kernel, a deadlocked data loader) would otherwise keep its
worker's heartbeat thread beating: the lease never expires, the task is never re-queued, the run
never ends. So every evaluation has a limit, and a watchdog thread watches it:

- At the limit the watchdog stops the claim's heartbeat and marks the evaluation expired; the
  evaluator's `should_stop()` answers True, the evaluation returns, and the worker records the
  attempt as a `timeout` failure (terminal and fenced, like any other failure kind).
- If the evaluation has not returned `grace` seconds later (half the lease, so the claim's lease
  is still running), the training ignores stop requests: the watchdog logs one line and ends the
  worker process with `EXIT_HUNG_EVALUATION`. The lease then expires and the queue gives the task
  to another worker (the normal expiry path; after `worker.max_lease_expiries` expiries it is
  failed as `timeout`). `nas run`'s local workers and `nas worker --gpus` start the worker again.

Training stays in the worker's main thread: a subprocess per evaluation would pay the interpreter
start, the torch import, the CUDA context and the data load on every task, on the happy path too.
Only the exit of the whole process is certain to free a thread stuck in a device call (Python
cannot interrupt it), and the watchdog touches no device, so this works the same on every device.

The default limit (`train.max_seconds = none`) follows the task's budget: 60 s plus four times
`task.synthetic_seconds` for a synthetic task; otherwise 600 s of start-up (data load, model build,
first kernels) plus 600 s per epoch of the budget (`train.epochs`, or one for `train.mode = proxy`),
times `train.kfolds`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nascli.task import Result, Task

log = logging.getLogger("nascli.worker")

# A worker that ended itself because its training ignored the time limit exits with this (EX_PROTOCOL
# is 76; 72 sits next to the device fault's 71): its launcher starts it again.
EXIT_HUNG_EVALUATION = 72
SYNTHETIC_BASE_SECONDS = 60.0
SYNTHETIC_FACTOR = 4.0
STARTUP_SECONDS = 600.0
SECONDS_PER_EPOCH = 600.0
# A test seam, like NASCLI_INJECT_DEVICE_FAULT: the first evaluation of any process that creates
# this file (O_EXCL: one process of a fleet) hangs, ignoring the limit, as a stuck device would.
INJECT_HANG_ENV = "NASCLI_INJECT_HANG_ONCE"


def limit_seconds(task: Task) -> float:
    """The wall-clock limit of one evaluation of `task` (see the module docstring for the default)."""
    configured = task.train.get("max_seconds")
    return float(configured) if configured else default_limit_seconds(task.task, task.train)


def default_limit_seconds(task: Mapping[str, Any], train: Mapping[str, Any]) -> float:
    """`train.max_seconds = none`: derived from the task's budget."""
    if task.get("kind") == "synthetic":
        return SYNTHETIC_BASE_SECONDS + SYNTHETIC_FACTOR * float(task.get("synthetic_seconds") or 0.0)
    epochs = 1 if train.get("mode") == "proxy" else int(train.get("epochs") or 100)
    return (STARTUP_SECONDS + SECONDS_PER_EPOCH * epochs) * max(1, int(train.get("kfolds") or 1))


def grace_seconds(lease_seconds: float) -> float:
    """How long past the limit a training may take to return: half the lease, which the last
    heartbeat (at most a third of a lease before the limit) still covers."""
    return lease_seconds / 2.0


def timeout_result(result: Result | None, limit: float, elapsed: float) -> Result:
    """The `timeout` failure that replaces whatever an evaluation returned past its limit."""
    return Result.failure("timeout", f"the evaluation ran {elapsed:.1f} s, past its limit of {limit:g} s "
                          "(train.max_seconds)", epochs_run=result.epochs_run if result else None,
                          params=result.params if result else None, flops=result.flops if result else None,
                          train_seconds=round(elapsed, 6))


@dataclass(eq=False)
class Limit:
    """One evaluation's limit, as armed on a Watchdog. `expired` is set at the limit."""

    evaluation_id: int | None
    seconds: float
    grace: float
    on_expired: Callable[[], None]  # the worker stops the claim's heartbeat here
    started: float = field(default_factory=time.monotonic)
    expired: threading.Event = field(default_factory=threading.Event)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def due(self) -> float:
        """When the watchdog acts next: at the limit, then at the end of the grace."""
        return self.started + self.seconds + (self.grace if self.expired.is_set() else 0.0)


class Watchdog:
    """One daemon thread per worker, watching one evaluation's Limit at a time (`arm` / `disarm`).
    `exit_process` ends the process when a training does not return (os._exit: a thread stuck in
    a device call cannot be interrupted, and at-exit handlers could wait on it).

    Neither call wakes the thread in the steady state (a task after a task): it sleeps until the
    earlier evaluation's limit, finds a later one armed (or none) and sleeps on; a wake-up per task
    would cost context switches on short tasks, as the heartbeat thread's docstring measures."""

    def __init__(self, exit_process: Callable[[int], None] = os._exit) -> None:
        self._changed = threading.Condition()
        self._armed: Limit | None = None
        self._thread: threading.Thread | None = None
        self._wakes_at: float | None = None  # when the thread's current wait ends (None: when notified)
        self._exit_process = exit_process

    def arm(self, evaluation_id: int | None, seconds: float, grace: float, on_expired: Callable[[], None]) -> Limit:
        limit = Limit(evaluation_id, seconds, grace, on_expired)
        with self._changed:
            self._armed = limit
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="time-limit", daemon=True)
                self._thread.start()
            elif self._wakes_at is None or limit.due() < self._wakes_at:
                self._changed.notify()
        return limit

    def disarm(self, limit: Limit) -> None:
        """The evaluation returned: nothing more happens to it (the thread finds out when it wakes)."""
        with self._changed:
            if self._armed is limit:
                self._armed = None

    def _loop(self) -> None:
        while True:
            with self._changed:
                limit = self._armed
                if limit is None:
                    self._wakes_at = None
                    self._changed.wait()
                    continue
                self._wakes_at = due = limit.due()
                if due > time.monotonic():
                    self._changed.wait(due - time.monotonic())
                    continue
                if limit.expired.is_set():  # under the lock: a disarm racing with this cannot be lost
                    self._hung(limit)
                    return
                limit.expired.set()
            log.warning("evaluation %s passed its time limit of %g s (train.max_seconds): stopping it; the attempt "
                        "is recorded as timeout", limit.evaluation_id, limit.seconds)
            limit.on_expired()

    def _hung(self, limit: Limit) -> None:
        log.error("evaluation %s does not return %.1f s past its time limit of %g s (train.max_seconds; a hung "
                  "device?): the worker exits, the task goes to another worker when its lease expires",
                  limit.evaluation_id, limit.elapsed - limit.seconds, limit.seconds)
        for handler in logging.getLogger().handlers + log.handlers:
            handler.flush()
        self._exit_process(EXIT_HUNG_EVALUATION)


def hang_if_asked() -> None:
    """The NASCLI_INJECT_HANG_ONCE test seam (see INJECT_HANG_ENV); nothing when unset."""
    path = os.environ.get(INJECT_HANG_ENV)
    if not path:
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except FileExistsError:
        return  # another evaluation hung already
    while True:  # ignores should_stop, as a training stuck in a device call does
        time.sleep(3600)


__all__ = ["EXIT_HUNG_EVALUATION", "INJECT_HANG_ENV", "Limit", "Watchdog", "default_limit_seconds", "grace_seconds",
           "hang_if_asked", "limit_seconds", "timeout_result"]
