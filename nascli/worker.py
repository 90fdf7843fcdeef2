"""The worker loop: claim -> evaluate -> complete, repeat, until idle, told to stop, or done.

A worker holds at most one claim. While it evaluates, a heartbeat thread (`nascli.heartbeat`)
extends the lease; if the claim is lost the evaluation is told to stop (`should_stop`) and its
result discarded, because another worker owns the task now (the store's fencing token, `attempt`,
would reject the write anyway). SIGTERM / SIGINT stop claiming at once and give the current task
back (`release`, which does not count as an attempt), then exit 0.

Evaluation never takes the worker down: an exception becomes a failed Result with a typed kind.
The exceptions are host faults, whatever the genome: `DatasetError` (this host has not got the
data) and `DeviceError` (the GPU is missing, or faulted mid-training: illegal memory access,
device-side assert, any non-OOM CUDA error; `nascli.devices.is_device_fault`). The task is released
(no attempt consumed; another host or a restarted worker can do it), the worker marks itself
unhealthy (`unhealthy`, it claims nothing more) and the error ends it (`nas worker` prints it on
one line and exits 2, or `nascli.devices.EXIT_DEVICE_FAULT` for a fault, which its launcher restarts).
A database role that lacks a GRANT to claim or to write a result (`StorePrivilegeError`) ends the
worker the same way: retrying cannot help, and every result it trained would be lost.

Each evaluation has a wall-clock limit (`train.max_seconds`; `nascli.train.time_limit`): past it
the heartbeat stops and `should_stop` answers True, and the attempt is recorded as `timeout`; a
training that does not return within half a lease more ends the process (exit 72), so the task
goes to another worker when its lease expires.

While a task trains, the heartbeat thread also refreshes the worker's `last_seen_at`, so the
driver's count of live workers does not lose a worker in the middle of a long evaluation.

Idle workers wait on a `nascli.store.notify.Waiter`: on PostgreSQL a LISTEN connection wakes them
as soon as work is queued; polling with jittered backoff remains underneath (and is all SQLite has).
`nascli.train.evaluate` (imported with this module, torch-free) sends synthetic tasks to
`nascli.train.synthetic`, so a synthetic-only worker never imports torch, and imports the trainer
for every other kind on first use.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from nascli.devices import inject_fault_if_asked, is_device_fault
from nascli.errors import (
    DatasetError,
    DeviceError,
    DeviceFault,
    GenomeError,
    NascliError,
    StorePrivilegeError,
)
from nascli.heartbeat import Heartbeat, HeartbeatThread, heartbeat_interval
from nascli.task import Result, Task

# Imported now, not at the first task: it is torch-free (so is the synthetic evaluator it imports), and
# otherwise every worker of a fleet pays for the import (and the genome parser's) while its first task
# waits, all at once (0.5 s on 2 cores with 32 workers; see benchmarks/scaling.py).
from nascli.train.evaluate import evaluate
from nascli.train.time_limit import Watchdog, grace_seconds, hang_if_asked, limit_seconds, timeout_result
from nascli.transfer import TRANSFER_DONOR_KEY

if TYPE_CHECKING:
    from nascli.store.notify import Waiter
    from nascli.store.records import Claim, RunInfo
    from nascli.store.weights import WeightsCache

log = logging.getLogger("nascli.worker")


def claimed_id(task: Task) -> int:
    """The evaluation id of a claimed task (a task reaches a worker only through a claim, which sets it)."""
    assert task.evaluation_id is not None
    return task.evaluation_id

DEFAULT_LEASE_SECONDS = 120.0
DEFAULT_HEARTBEAT_SECONDS = 15.0
# Idle polling backs off from the first to the last value (jittered, so many idle workers do not
# hit the database in lockstep); ~1 s keeps a fresh task's pickup latency low at a cost of about
# one cheap query per second per idle worker.
_FIRST_POLL_SECONDS = 0.05
MAX_POLL_SECONDS = 1.0
# While a LISTEN connection is up, new work wakes the worker at once; the poll is then only for
# expired leases (no notification announces those) and lost notifications, so it can be slower.
NOTIFIED_POLL_SECONDS = 2.0
# How often the worker row's last-seen time and task counts are written, between tasks and while
# idle (and once more at exit). Not per task: on PostgreSQL, counting in every finish cost 15-20 %
# of the queue's throughput at 8 workers. A killed worker's row may miss its last seconds of counts;
# the evaluations themselves (worker_id, status) are the record of who did what.
_SEEN_EVERY_SECONDS = 5.0

ProgressCallback = Callable[[int, Mapping[str, Any]], None]
Evaluator = Callable[..., Result]


class WorkerStore(Protocol):
    """Everything a `Worker` asks of the database: the queue's claim / heartbeat / complete /
    release contract (fenced by the claim's attempt), its worker row, and the run's settings.
    `nascli.store.Store` implements it; tests/fakes/queue.py holds an in-memory one."""

    def prepare_worker(self) -> None:
        """Get the worker's statements ready before the first claim."""

    def register_worker(self, worker_id: str, *, host: str, pid: int, device: str) -> Any: ...

    def worker_seen(self, worker_id: str, *, tasks_done: int | None = None,
                    tasks_failed: int | None = None) -> bool: ...

    def get_run(self, ref: str) -> RunInfo: ...

    def claim(self, worker_id: str, *, run_id: str | None = None, lease_seconds: float) -> Claim | None: ...

    def complete_and_claim(self, evaluation_id: int, attempt: int, result: Result, worker_id: str, *,
                           run_id: str | None = None, lease_seconds: float) -> tuple[bool, Claim | None]: ...

    def heartbeat(self, evaluation_id: int, attempt: int, lease_seconds: float) -> bool: ...

    def complete(self, evaluation_id: int, attempt: int, result: Result) -> bool: ...

    def release(self, evaluation_id: int, attempt: int) -> bool: ...

    def weights(self, evaluation_id: int) -> bytes | None:
        """A donor's stored weights (train.transfer; nascli.store.weights), None when not stored."""


@dataclass(frozen=True)
class WorkerOptions:
    device: str = "cpu"
    run_id: str | None = None
    max_tasks: int | None = None  # None: no limit
    idle_timeout: float | None = None  # None: wait for work forever
    lease_seconds: float | None = None  # None: the run's worker.lease_seconds, else DEFAULT_LEASE_SECONDS
    heartbeat_seconds: float | None = None  # None: the run's worker.heartbeat_seconds, else the default


@dataclass
class WorkerStats:
    done: int = 0  # completed with status done
    failed: int = 0  # completed with status failed
    discarded: int = 0  # results not written: claim lost, or fenced off at completion
    released: int = 0  # given back on shutdown

    @property
    def finished(self) -> int:
        return self.done + self.failed


class Reporter:
    """What a worker tells its user. This base class writes plain log lines (for files and pipes)."""

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id

    def claimed(self, task: Task, attempt: int) -> None:
        log.info("%s claimed evaluation %s (attempt %s): %s", self.worker_id, task.evaluation_id, attempt,
                 _short(task.genome))

    def epoch(self, task: Task, epoch: int, metrics: Mapping[str, Any]) -> None:
        log.debug("%s evaluation %s epoch %s %s", self.worker_id, task.evaluation_id, epoch, dict(metrics))

    def finished(self, task: Task, result: Result, written: bool, stats: WorkerStats) -> None:
        outcome = (f"val_accuracy={result.val_accuracy}" if result.status == "done"
                   else f"failed ({result.error_kind}: {result.error_message})")
        log.info("%s evaluation %s %s%s [done %s, failed %s]", self.worker_id, task.evaluation_id, outcome,
                 "" if written else " -- discarded, the claim was lost", stats.done, stats.failed)

    def idle(self, stats: WorkerStats) -> None:
        pass

    def close(self) -> None:
        pass


def _short(genome: str, limit: int = 60) -> str:
    return genome if len(genome) <= limit else genome[: limit - 3] + "..."


def new_worker_id() -> str:
    """host-pid-random: readable in `nas report`, unique even across pid reuse and containers."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


def evaluate_task(task: Task, *, device: str = "cpu", progress: ProgressCallback | None = None,
                  should_stop: Callable[[], bool] | None = None, donor_weights: bytes | None = None) -> Result:
    """Evaluate a task (nascli.train.evaluate routes it; synthetic tasks never import torch)."""
    inject_fault_if_asked(device)  # a test seam: nothing unless NASCLI_INJECT_DEVICE_FAULT is set
    hang_if_asked()  # a test seam: nothing unless NASCLI_INJECT_HANG_ONCE is set
    return evaluate(task, device=device, progress=progress, should_stop=should_stop, donor_weights=donor_weights)


def failure_from_exception(error: BaseException) -> Result:
    """A typed failed Result for an exception that escaped the evaluator."""
    name = type(error).__name__
    text = str(error)
    if isinstance(error, GenomeError):
        kind = "invalid_genome"
    elif isinstance(error, MemoryError) or name == "OutOfMemoryError" or "out of memory" in text.lower():
        kind = "oom"
    elif isinstance(error, FloatingPointError) or "nan" in text.lower().split():
        kind = "nan_loss"
    else:
        kind = "crash"
    where = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    at = f" at {where[0].filename}:{where[0].lineno}" if where else ""
    return Result.failure(kind, f"{name}: {text}{at}")


@dataclass
class _Current:
    """The claim being evaluated right now (read by the signal handler)."""

    task: Task
    attempt: int
    heartbeat: Heartbeat
    stop_seen: bool = False  # should_stop() has answered True: the result is unusable


@dataclass
class Worker:
    store: WorkerStore
    options: WorkerOptions = field(default_factory=WorkerOptions)
    worker_id: str = field(default_factory=new_worker_id)
    evaluate: Evaluator = evaluate_task
    reporter: Reporter | None = None
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.stopping = threading.Event()
        self.stats = WorkerStats()
        self._reporter: Reporter = self.reporter or Reporter(self.worker_id)
        self._current: _Current | None = None
        self._run_worker_config: dict[str, dict[str, Any]] = {}
        self._last_seen_write = 0.0
        self._waiter: Waiter | None = None  # while run() is running
        self._next_claim: Claim | None = None  # a claim taken together with the previous result (complete_and_claim)
        self._heartbeat_thread = HeartbeatThread()  # serves each claim's Heartbeat in turn
        self._watchdog = Watchdog()  # each evaluation's train.max_seconds (nascli.train.time_limit)
        self._weights_cache: WeightsCache | None = None  # donors fetched from the weights repository
        self.unhealthy: NascliError | None = None  # the host fault that ended this worker

    # ------------------------------------------------------------------ control

    def request_stop(self) -> None:
        """Stop claiming; give the current task back at once. Safe from a signal handler."""
        self.stopping.set()
        waiter = self._waiter
        if waiter is not None:
            waiter.wake()
        current = self._current
        if current is not None:
            current.heartbeat.wake()

    def run(self) -> WorkerStats:
        """Claim and evaluate until idle for `idle_timeout`, `max_tasks` reached, or stopped.
        Raises DatasetError (after releasing the task) when this host cannot load a task's data."""
        from nascli.store.notify import WORK_CHANNEL, open_waiter

        self.store.prepare_worker()
        self._register()
        delay = _FIRST_POLL_SECONDS
        longest_poll = self._poll_seconds(self.options.run_id)
        idle_since = self.clock()
        self._waiter = waiter = open_waiter(self.store, WORK_CHANNEL, self.options.run_id)
        if self.stopping.is_set():
            waiter.wake()  # a signal that came before the waiter existed
        try:
            while not self.stopping.is_set():
                done = self.stats.finished + self.stats.discarded
                if self.options.max_tasks is not None and done >= self.options.max_tasks:
                    log.info("%s reached --max-tasks %s", self.worker_id, self.options.max_tasks)
                    break
                claim, self._next_claim = self._next_claim or self._claim(), None
                if claim is None:
                    idle_for = self.clock() - idle_since
                    if self.options.idle_timeout is not None and idle_for >= self.options.idle_timeout:
                        log.info("%s idle for %.1f s: exiting", self.worker_id, idle_for)
                        break
                    self._reporter.idle(self.stats)
                    self._seen()
                    # Jittered backoff; wakes at once on new work (PostgreSQL) and on SIGTERM;
                    # never sleeps past the idle timeout.
                    pause = delay * self.rng.uniform(0.5, 1.0)
                    if self.options.idle_timeout is not None:
                        pause = min(pause, self.options.idle_timeout - idle_for + 0.01)
                    if not waiter.wait(pause):
                        delay = min(max(NOTIFIED_POLL_SECONDS, longest_poll) if waiter.listening else longest_poll,
                                    delay * 2)
                    continue
                self._process(claim)
                self._seen()
                delay = _FIRST_POLL_SECONDS
                idle_since = self.clock()
        finally:
            if self._next_claim is not None:  # taken with the last result, never started: give it back
                self._release(self._next_claim.evaluation_id, self._next_claim.attempt)
                self._next_claim = None
            self._waiter = None
            waiter.close()
            self._seen(force=True)
            self._reporter.close()
        return self.stats

    # ------------------------------------------------------------------ one task

    def _claim(self):
        lease = self._lease_seconds(self.options.run_id)
        try:
            claim = self.store.claim(self.worker_id, run_id=self.options.run_id, lease_seconds=lease)
        except StorePrivilegeError:
            raise  # a missing GRANT does not heal by polling: say so and end
        except NascliError as error:  # the store already retried transient errors; keep polling
            log.warning("%s could not claim (%s); retrying", self.worker_id, error)
            return None
        if claim is not None and self.stopping.is_set():
            # The signal arrived while the claim was in flight: hand it straight back.
            self._release(claim.evaluation_id, claim.attempt)
            return None
        return claim

    def _process(self, claim) -> None:
        task: Task = claim.task
        if task.evaluation_id is None or task.attempt != claim.attempt:
            task = _with_claim(task, claim)
        lease = self._lease_seconds(task.run_id)
        if lease != self._lease_seconds(self.options.run_id):
            # Claimed with a guess (the run was unknown before the claim): set the run's own lease now.
            self._heartbeat_once(claim.evaluation_id, claim.attempt, lease)
        heartbeat = Heartbeat(self.store, claim.evaluation_id, claim.attempt, lease_seconds=lease,
                              interval=self._heartbeat_seconds(task.run_id, lease), stopping=self.stopping,
                              clock=self.clock, thread=self._heartbeat_thread, on_beat=self._seen_while_training)
        current = _Current(task, claim.attempt, heartbeat)
        self._current = current
        self._reporter.claimed(task, claim.attempt)
        heartbeat.start()
        if self.stopping.is_set():
            heartbeat.wake()  # a signal between claim and start: release now
        # Past the limit: no more heartbeats, should_stop answers True, the attempt is a timeout;
        # a training that still does not return ends this process (nascli.train.time_limit).
        limit = self._watchdog.arm(task.evaluation_id, limit_seconds(task), grace_seconds(lease), heartbeat.finish)

        def should_stop() -> bool:
            if heartbeat.lost.is_set() or self.stopping.is_set():
                current.stop_seen = True
            return current.stop_seen or limit.expired.is_set()

        def progress(epoch: int, metrics: Mapping[str, Any]) -> None:
            self._reporter.epoch(task, epoch, metrics)

        host_fault: NascliError | None = None
        donor = self._donor_weights(task)
        try:
            try:
                result = self.evaluate(task, device=self.options.device, progress=progress, should_stop=should_stop,
                                       **({"donor_weights": donor} if donor is not None else {}))
            except (DatasetError, DeviceError) as error:  # this host cannot train the task: not the genome's fault
                host_fault, result = error, None
            except Exception as error:  # noqa: BLE001 - an evaluation failure must not end the worker
                if is_device_fault(error):  # an evaluator other than the engine let a CUDA error through
                    host_fault, result = DeviceFault(f"{self.options.device}: {type(error).__name__}: {error}"), None
                else:
                    log.warning("%s evaluation %s raised %s", self.worker_id, task.evaluation_id,
                                type(error).__name__, exc_info=True)
                    result = failure_from_exception(error)
        finally:
            self._watchdog.disarm(limit)
            heartbeat.finish()
            self._current = None
        if limit.expired.is_set() and host_fault is None:
            result = timeout_result(result, limit.seconds, limit.elapsed)
        if host_fault is not None:
            self._give_back_and_stop(task, claim.attempt, heartbeat, host_fault)
        assert result is not None  # only a host fault leaves no result, and it raised above
        self._settle(task, claim.attempt, heartbeat, current.stop_seen, result, lease)

    def _donor_weights(self, task: Task) -> bytes | None:
        """The stored weights of the donor the task names (train.transfer), through the local cache;
        None when it names none or they are gone (the child then trains from scratch and says so)."""
        donor = task.train.get(TRANSFER_DONOR_KEY)
        if donor is None:
            return None
        if self._weights_cache is None:
            from nascli.store.weights import WeightsCache

            self._weights_cache = WeightsCache(self.store.weights)
        try:
            return self._weights_cache.get(int(donor))
        except NascliError as error:
            log.warning("%s could not fetch donor weights %s (%s); training from scratch", self.worker_id, donor,
                        error)
            return None

    def _give_back_and_stop(self, task: Task, attempt: int, heartbeat: Heartbeat, fault: NascliError) -> NoReturn:
        """A host fault: release the task (no attempt used), mark this worker unhealthy, raise `fault`."""
        if heartbeat.released or (not heartbeat.lost.is_set() and self._release(claimed_id(task), attempt)):
            self.stats.released += 1
        self.unhealthy = fault
        self.stopping.set()
        what = ("cannot load the data of" if isinstance(fault, DatasetError) else
                "cannot write the result of" if isinstance(fault, StorePrivilegeError) else "device fault during")
        log.error("%s %s evaluation %s: %s", self.worker_id, what, task.evaluation_id, fault)
        raise fault

    def _settle(self, task: Task, attempt: int, heartbeat: Heartbeat, stop_seen: bool, result: Result,
                lease: float) -> None:
        """Write the result, or give the task back, or drop it: exactly one of those."""
        if heartbeat.lost.is_set():
            self.stats.discarded += 1
            self._reporter.finished(task, result, False, self.stats)
            return
        if heartbeat.released or stop_seen:
            # Shutting down: an interrupted evaluation is not a result. Make sure it is given back.
            if heartbeat.released or self._release(claimed_id(task), attempt):
                self.stats.released += 1
            return
        try:
            written = self._complete(claimed_id(task), attempt, result, heartbeat, lease)
        except StorePrivilegeError as fault:  # the role cannot write results: every evaluation would be lost
            self._give_back_and_stop(task, attempt, heartbeat, fault)
        if not written:
            self.stats.discarded += 1
        elif result.status == "done":
            self.stats.done += 1
        else:
            self.stats.failed += 1
        self._reporter.finished(task, result, written, self.stats)

    def _complete(self, evaluation_id: int, attempt: int, result: Result, heartbeat: Heartbeat,
                  lease: float) -> bool:
        """Write the result; retry database errors while our lease can still be valid."""
        give_up_at = heartbeat.last_ok + lease
        pause = 0.2
        while True:
            try:
                if self._may_take_next():
                    written, self._next_claim = self.store.complete_and_claim(
                        evaluation_id, attempt, result, self.worker_id, run_id=self.options.run_id,
                        lease_seconds=self._lease_seconds(self.options.run_id))
                else:
                    written = self.store.complete(evaluation_id, attempt, result)
            except StorePrivilegeError:
                raise
            except NascliError as error:
                if self.clock() + pause >= give_up_at:
                    log.warning("%s could not write evaluation %s before its lease ran out (%s); another "
                                "worker will redo it", self.worker_id, evaluation_id, error)
                    return False
                log.warning("%s completing evaluation %s failed, retrying (%s)", self.worker_id, evaluation_id, error)
                time.sleep(pause * self.rng.uniform(0.5, 1.0))
                pause = min(2.0, pause * 2)
                continue
            if not written:
                log.warning("%s evaluation %s attempt %s: result discarded, the claim was taken over "
                            "(fenced)", self.worker_id, evaluation_id, attempt)
            return written

    def _may_take_next(self) -> bool:
        """Claim the next task with this result (one transaction; see Store.complete_and_claim),
        unless stopping or this is the last task --max-tasks allows."""
        if self.stopping.is_set():
            return False
        return self.options.max_tasks is None or self.stats.finished + self.stats.discarded + 1 < self.options.max_tasks

    def _release(self, evaluation_id: int, attempt: int) -> bool:
        try:
            released = self.store.release(evaluation_id, attempt)
        except NascliError as error:
            log.warning("%s could not release evaluation %s (%s); its lease will expire instead",
                        self.worker_id, evaluation_id, error)
            return False
        if released:
            log.info("%s released evaluation %s for another worker", self.worker_id, evaluation_id)
        return released

    def _heartbeat_once(self, evaluation_id: int, attempt: int, lease: float) -> None:
        try:
            self.store.heartbeat(evaluation_id, attempt, lease)
        except NascliError as error:
            log.warning("%s could not set the run's lease on evaluation %s (%s)", self.worker_id, evaluation_id, error)

    # ------------------------------------------------------------------ run settings and bookkeeping

    def _worker_config(self, run_id: str | None) -> dict[str, Any]:
        """The run's [worker] section (cached); {} when unknown."""
        if run_id is None:
            return {}
        if run_id not in self._run_worker_config:
            section: dict[str, Any] = {}
            try:
                section = dict((self.store.get_run(run_id).config or {}).get("worker") or {})
            except NascliError as error:
                log.warning("%s could not read run %s's worker settings (%s); using defaults",
                            self.worker_id, run_id, error)
            self._run_worker_config[run_id] = section
        return self._run_worker_config[run_id]

    def _lease_seconds(self, run_id: str | None) -> float:
        if self.options.lease_seconds is not None:
            return float(self.options.lease_seconds)
        return float(self._worker_config(run_id).get("lease_seconds") or DEFAULT_LEASE_SECONDS)

    def _poll_seconds(self, run_id: str | None) -> float:
        """The longest idle wait between queue polls: the run's worker.poll_seconds for a worker bound
        to one run (`--run`, as `nas run` starts its local workers), else MAX_POLL_SECONDS."""
        return float(self._worker_config(run_id).get("poll_seconds") or MAX_POLL_SECONDS)

    def _heartbeat_seconds(self, run_id: str | None, lease: float) -> float:
        configured = self.options.heartbeat_seconds
        if configured is None:
            configured = float(self._worker_config(run_id).get("heartbeat_seconds") or DEFAULT_HEARTBEAT_SECONDS)
        return heartbeat_interval(lease, configured)

    def _register(self) -> None:
        self.store.register_worker(self.worker_id, host=socket.gethostname(), pid=os.getpid(),
                                   device=self.options.device)

    def _seen_while_training(self) -> None:
        """From the heartbeat thread: at every beat, so the driver keeps counting this worker as
        live (its window is three heartbeat intervals) however long the evaluation takes."""
        self._seen(force=True)

    def _seen(self, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._last_seen_write < _SEEN_EVERY_SECONDS:
            return
        self._last_seen_write = now
        try:
            self.store.worker_seen(self.worker_id, tasks_done=self.stats.done, tasks_failed=self.stats.failed)
        except NascliError as error:
            log.debug("%s could not update its worker row (%s)", self.worker_id, error)


def _with_claim(task: Task, claim) -> Task:
    from dataclasses import replace

    return replace(task, evaluation_id=claim.evaluation_id, attempt=claim.attempt)


def install_signal_handlers(worker: Worker) -> None:
    """First SIGTERM/SIGINT: stop claiming, release the task, exit 0. The same signal again: exit
    now. The other one is the same stop request (a terminal's Ctrl-C, then its parent's SIGTERM)."""
    first: list[int] = []

    def handle(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
        if worker.stopping.is_set() and signum in first:
            log.warning("%s second signal: exiting without waiting", worker.worker_id)
            os._exit(130)
        if worker.stopping.is_set():
            log.info("%s got %s too: still stopping", worker.worker_id, signal.Signals(signum).name)
            return
        first.append(signum)
        log.info("%s got %s: stopping, releasing the current task", worker.worker_id, signal.Signals(signum).name)
        worker.request_stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


__all__ = ["Worker", "WorkerOptions", "WorkerStats", "Reporter", "evaluate_task", "failure_from_exception",
           "install_signal_handlers", "new_worker_id", "DEFAULT_LEASE_SECONDS", "DEFAULT_HEARTBEAT_SECONDS"]
