"""An in-memory evaluation queue: the whole contract a worker relies on (`nascli.worker.WorkerStore`)
plus what the contract suite uses to set it up and look at it, with no database.

It follows the same rules as `nascli.store.Store` (tests/integration/test_store_contract.py runs
its lease and fencing tests against this, SQLite and PostgreSQL): a claim takes an expired lease
first, else the highest-priority oldest pending row; `attempt` is the fencing token of every write;
a retried write of the same claim gets the same answer; leases expire on `clock`; a row whose
leases expired `max_lease_expiries` times fails as `timeout`; retryable failures go back to pending
until `max_attempts`. One lock makes each call atomic, as one transaction would.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nascli.errors import RunNotFoundError, StoreError
from nascli.store import (
    Claim,
    EvaluationInfo,
    EvaluationRequest,
    FinishedEvaluation,
    IndividualInfo,
    NewIndividual,
    QueueLimits,
    RunInfo,
    WorkerInfo,
)
from nascli.task import FAILURE_KINDS, Result, Task

STATUSES = ("pending", "running", "done", "failed", "cancelled")


@dataclass
class _Row:
    id: int
    run_id: str
    individual_id: int | None
    task: Task
    priority: int
    genome_hash: str
    config_hash: str
    max_attempts: int
    max_lease_expiries: int
    created_at: float
    status: str = "pending"
    attempt: int = 0
    failures: int = 0
    lease_expiries: int = 0
    releases: int = 0
    worker_id: str | None = None
    lease_expires_at: float | None = None
    claimed_at: float | None = None
    heartbeat_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    seq: int | None = None
    result: Result | None = None
    settled_attempt: int | None = None  # the claim whose write settled the row last, and how
    settled_by: str | None = None


@dataclass
class InMemoryQueue:
    """A queue in a dict. `clock`: epoch seconds (the database clock of a real store)."""

    clock: Callable[[], float] = time.time
    limits: QueueLimits = field(default_factory=QueueLimits)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._runs: dict[str, RunInfo] = {}
        self._rows: dict[int, _Row] = {}
        self._individuals: dict[int, IndividualInfo] = {}
        self._workers: dict[str, WorkerInfo] = {}
        self._seq: dict[str, int] = {}
        self._weights: dict[int, bytes] = {}  # evaluation id -> stored weights (the weights repository)
        self.prepared = False

    # ---------------------------------------------------------------- set-up and reads
    def db_now(self) -> float:
        return self.clock()

    def close(self) -> None:
        pass

    def create_run(self, name: str, strategy: str, preset: str | None, seed: int, config: dict[str, Any]) -> RunInfo:
        with self._lock:
            now = self.clock()
            run = RunInfo(id=f"r-{len(self._runs) + 1:06x}", name=name, strategy=strategy, preset=preset, seed=seed,
                          config=config, status="created", created_at=now, updated_at=now)
            self._runs[run.id] = run
            self._seq[run.id] = 0
            return run

    def get_run(self, ref: str) -> RunInfo:
        with self._lock:
            if ref not in self._runs:
                raise RunNotFoundError(f"no run {ref}", hint="list runs with `nas report`")
            return self._runs[ref]

    def add_individuals(self, run_id: str, individuals: Sequence[NewIndividual]) -> list[int]:
        with self._lock:
            ids = []
            for new in individuals:
                key = (run_id, new.island, new.generation, new.slot)
                found = [i.id for i in self._individuals.values()
                         if (i.run_id, i.island, i.generation, i.slot) == key]
                if found:
                    ids.append(found[0])
                    continue
                info = IndividualInfo(id=len(self._individuals) + 1, run_id=run_id, island=new.island,
                                      generation=new.generation, slot=new.slot, genome=new.genome,
                                      genome_hash=new.genome_hash, parents=tuple(new.parents), operator=new.operator,
                                      age=new.age, alive=True, replaced_generation=None, created_at=self.clock())
                self._individuals[info.id] = info
                ids.append(info.id)
            return ids

    def individuals(self, run_id: str) -> list[IndividualInfo]:
        with self._lock:
            return [i for i in self._individuals.values() if i.run_id == run_id]

    def enqueue(self, run_id: str, requests: Sequence[EvaluationRequest]) -> list[int]:
        with self._lock:
            run = self.get_run(run_id)
            worker_cfg = run.config.get("worker") or {}
            max_attempts = int(worker_cfg.get("max_attempts", self.limits.max_attempts))
            max_expiries = int(worker_cfg.get("max_lease_expiries", self.limits.max_lease_expiries))
            ids = []
            for request in requests:
                existing = [row.id for row in self._rows.values()
                            if request.individual_id is not None and row.individual_id == request.individual_id]
                if existing:  # idempotent per individual
                    ids.append(existing[0])
                    continue
                individual = self._individuals.get(request.individual_id) if request.individual_id else None
                row = _Row(id=len(self._rows) + 1, run_id=run_id, individual_id=request.individual_id,
                           task=dataclasses.replace(request.task, run_id=run_id, evaluation_id=None, attempt=0),
                           priority=request.priority, config_hash=request.config_hash,
                           genome_hash=request.genome_hash or (individual.genome_hash if individual else ""),
                           max_attempts=max_attempts, max_lease_expiries=max_expiries, created_at=self.clock())
                self._rows[row.id] = row
                ids.append(row.id)
            return ids

    def queue_counts(self, run_id: str | None = None) -> dict[str, int]:
        with self._lock:
            counts = dict.fromkeys(STATUSES, 0)
            for row in self._rows.values():
                if run_id is None or row.run_id == run_id:
                    counts[row.status] += 1
            return counts

    def results(self, run_id: str, after_id: int = 0, limit: int | None = None) -> list[FinishedEvaluation]:
        with self._lock:
            rows = sorted((r for r in self._rows.values() if r.run_id == run_id and r.seq is not None
                           and r.seq > after_id), key=lambda r: r.seq)
            return [self._finished(r) for r in rows[:limit]]

    def evaluation(self, evaluation_id: int) -> EvaluationInfo:
        with self._lock:
            row = self._rows.get(evaluation_id)
            if row is None:
                raise StoreError(f"no evaluation {evaluation_id}")
            return EvaluationInfo(
                id=row.id, run_id=row.run_id, individual_id=row.individual_id, status=row.status, priority=row.priority,
                attempt=row.attempt, failures=row.failures, lease_expiries=row.lease_expiries, releases=row.releases,
                worker_id=row.worker_id, genome=row.task.genome, genome_hash=row.genome_hash,
                config_hash=row.config_hash, seq=row.seq, claimed_at=row.claimed_at, heartbeat_at=row.heartbeat_at,
                lease_expires_at=row.lease_expires_at, started_at=row.started_at, finished_at=row.finished_at,
                result=row.result, created_at=row.created_at)

    def register_worker(self, worker_id: str, *, host: str, pid: int, device: str) -> WorkerInfo:
        with self._lock:
            now = self.clock()
            info = WorkerInfo(id=worker_id, host=host, pid=pid, device=device, started_at=now, last_seen_at=now,
                              tasks_done=0, tasks_failed=0)
            self._workers[worker_id] = info
            return info

    def worker_seen(self, worker_id: str, *, tasks_done: int | None = None, tasks_failed: int | None = None) -> bool:
        with self._lock:
            info = self._workers.get(worker_id)
            if info is None:
                return False
            changes: dict[str, Any] = {"last_seen_at": self.clock()}
            if tasks_done is not None:
                changes["tasks_done"] = tasks_done
            if tasks_failed is not None:
                changes["tasks_failed"] = tasks_failed
            self._workers[worker_id] = dataclasses.replace(info, **changes)
            return True

    def workers(self) -> list[WorkerInfo]:
        with self._lock:
            return list(self._workers.values())

    # ---------------------------------------------------------------- the worker's contract
    def prepare_worker(self) -> None:
        self.prepared = True

    def claim(self, worker_id: str, *, run_id: str | None = None, lease_seconds: float) -> Claim | None:
        with self._lock:
            while True:
                row = self._next_row(run_id)
                if row is None:
                    return None
                expired = row.status == "running"
                row.status, row.attempt, row.worker_id = "running", row.attempt + 1, worker_id
                row.lease_expiries += int(expired)
                row.claimed_at = row.started_at = row.heartbeat_at = self.clock()
                row.lease_expires_at = self.clock() + lease_seconds
                if row.lease_expiries >= row.max_lease_expiries:  # spent: fail it, take the next one
                    self._finish(row, Result.failure(
                        "timeout", f"lease expired {row.lease_expiries} times: its workers died or stalled"), None)
                    continue
                task = dataclasses.replace(row.task, evaluation_id=row.id, run_id=row.run_id, attempt=row.attempt)
                return Claim(evaluation_id=row.id, attempt=row.attempt, task=task,
                             lease_expires_at=row.lease_expires_at)

    def _next_row(self, run_id: str | None) -> _Row | None:
        now = self.clock()
        rows = [r for r in self._rows.values() if run_id is None or r.run_id == run_id]
        expired = [r for r in rows if r.status == "running" and r.lease_expires_at is not None
                   and r.lease_expires_at < now]
        if expired:
            return min(expired, key=lambda r: r.id)
        pending = [r for r in rows if r.status == "pending"]
        if not pending:
            return None
        if run_id is None:  # runs share the pool: the run with the fewest evaluations running first
            running = {r.run_id: 0 for r in pending}
            for r in self._rows.values():
                if r.status == "running" and r.run_id in running:
                    running[r.run_id] += 1
            fairest = min(running, key=lambda run: (running[run], run))
            pending = [r for r in pending if r.run_id == fairest]
        return min(pending, key=lambda r: (-r.priority, r.id))

    def _held(self, evaluation_id: int, attempt: int) -> _Row | None:
        row = self._rows.get(evaluation_id)
        return row if row is not None and row.status == "running" and row.attempt == attempt else None

    def _already_settled(self, evaluation_id: int, attempt: int, how: str) -> bool:
        row = self._rows.get(evaluation_id)
        return row is not None and row.settled_attempt == attempt and row.settled_by == how

    def heartbeat(self, evaluation_id: int, attempt: int, lease_seconds: float) -> bool:
        with self._lock:
            row = self._held(evaluation_id, attempt)
            if row is None:
                return False
            row.heartbeat_at = self.clock()
            row.lease_expires_at = self.clock() + lease_seconds
            return True

    def complete(self, evaluation_id: int, attempt: int, result: Result) -> bool:
        with self._lock:
            row = self._held(evaluation_id, attempt)
            if row is None:
                return self._already_settled(evaluation_id, attempt, "result")
            failed = result.status == "failed"
            failures = row.failures + int(failed)
            if failed and result.error_kind in self.limits.retry_kinds and failures < row.max_attempts:
                row.status, row.failures, row.worker_id, row.lease_expires_at = "pending", failures, None, None
            else:
                row.failures = failures
                self._finish(row, result, row.worker_id)
                if result.weights is not None and result.status == "done":  # with the fenced finish
                    self._weights[row.id] = result.weights
            row.settled_attempt, row.settled_by = attempt, "result"
            return True

    def fail(self, evaluation_id: int, attempt: int, kind: str, message: str) -> bool:
        if kind not in FAILURE_KINDS:
            raise StoreError(f"unknown failure kind {kind!r}", hint=f"one of {', '.join(FAILURE_KINDS)}")
        return self.complete(evaluation_id, attempt, Result.failure(kind, message))

    def complete_and_claim(self, evaluation_id: int, attempt: int, result: Result, worker_id: str, *,
                           run_id: str | None = None, lease_seconds: float) -> tuple[bool, Claim | None]:
        with self._lock:
            written = self.complete(evaluation_id, attempt, result)
            return written, self.claim(worker_id, run_id=run_id, lease_seconds=lease_seconds)

    def release(self, evaluation_id: int, attempt: int) -> bool:
        with self._lock:
            row = self._held(evaluation_id, attempt)
            if row is None:
                return self._already_settled(evaluation_id, attempt, "release")
            row.status, row.worker_id, row.lease_expires_at = "pending", None, None
            row.releases += 1
            row.settled_attempt, row.settled_by = attempt, "release"
            return True

    def weights(self, evaluation_id: int) -> bytes | None:
        with self._lock:
            return self._weights.get(evaluation_id)

    # ---------------------------------------------------------------- housekeeping
    def reap(self, run_id: str | None = None) -> int:
        with self._lock:
            now = self.clock()
            expired = [r for r in self._rows.values() if r.status == "running" and r.lease_expires_at is not None
                       and r.lease_expires_at < now and (run_id is None or r.run_id == run_id)]
            for row in expired:
                row.lease_expiries += 1
                if row.lease_expiries >= row.max_lease_expiries:
                    self._finish(row, Result.failure(
                        "timeout", f"lease expired {row.lease_expiries} times: its workers died or stalled"), None)
                else:
                    row.status, row.worker_id, row.lease_expires_at = "pending", None, None
            return len(expired)

    def cancel_pending(self, run_id: str) -> int:
        with self._lock:
            pending = [r for r in self._rows.values() if r.run_id == run_id and r.status == "pending"]
            for row in pending:
                row.status = "cancelled"
            return len(pending)

    # ---------------------------------------------------------------- internals
    def _finish(self, row: _Row, result: Result, worker_id: str | None) -> None:
        self._seq[row.run_id] += 1
        row.status, row.result, row.seq = result.status, result, self._seq[row.run_id]
        row.worker_id, row.lease_expires_at, row.finished_at = worker_id, None, self.clock()

    def _finished(self, row: _Row) -> FinishedEvaluation:
        assert row.result is not None and row.seq is not None
        return FinishedEvaluation(seq=row.seq, evaluation_id=row.id, run_id=row.run_id, individual_id=row.individual_id,
                                  genome=row.task.genome, genome_hash=row.genome_hash, config_hash=row.config_hash,
                                  status=row.status, result=row.result, attempt=row.attempt, worker_id=row.worker_id,
                                  started_at=row.started_at, finished_at=row.finished_at)
