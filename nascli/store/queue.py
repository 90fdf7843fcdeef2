"""The evaluation queue: enqueue, claim, heartbeat, complete, release, reap, cancel, results.

Fencing: a claim increments `attempt` (the fencing token; it never decreases) and every later
write is `WHERE id = ? AND attempt = ? AND status = 'running'`. Zero rows updated means the claim
was lost (its lease expired and someone else took the row): the write is refused, logged, and the
caller gets False. Evaluation failures and lease expiries are counted separately against the
row's `max_attempts` and `max_lease_expiries`; a release (SIGTERM) counts against neither.

Expired leases are claimable by the claim query itself, so no sweeper has to be alive for stalled
work to move. All lease arithmetic uses the database clock. The statements are in queue_sql.py,
their SQL in nascli/store/sql/<dialect>/.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from nascli.errors import StoreError
from nascli.store import convert, queue_sql
from nascli.store.database import Database, Statement, chunks
from nascli.store.notify import RESULT_CHANNEL, WORK_CHANNEL, notify
from nascli.store.records import Claim, EvaluationInfo, EvaluationRequest, FinishedEvaluation, QueueLimits
from nascli.store.runs import RunRepository
from nascli.store.tables import E
from nascli.store.weights import WeightsRepository
from nascli.task import FAILURE_KINDS, Result, Task

log = logging.getLogger("nascli.store.queue")

EVALUATION_STATUS_NAMES = ("pending", "running", "done", "failed", "cancelled")


def check_lease(lease_seconds: float) -> float:
    lease = float(lease_seconds)
    if not lease > 0:
        raise StoreError(f"lease must be positive, got {lease_seconds}", hint="e.g. --lease 120")
    return lease


class QueueRepository:
    """The evaluation rows' life: pending -> running (claimed, leased) -> done | failed | cancelled."""

    def __init__(self, db: Database, runs: RunRepository, limits: QueueLimits, weights: WeightsRepository) -> None:
        self.db = db
        self.runs = runs
        self.weights = weights  # a finishing result's weights go in with it (nascli.store.weights)
        self.limits = limits
        self._retry_limits_of_run: dict[str, tuple[int, int]] = {}  # run id -> (max_attempts, max_lease_expiries)

    @functools.cached_property
    def sql(self) -> queue_sql.QueueSql:
        return queue_sql.build(self.db.now_param(), self.db.backend)

    # ---------------------------------------------------------------- enqueue
    def enqueue(self, run_id: str, requests: Sequence[EvaluationRequest]) -> list[int]:
        """Queue evaluations as `pending` in one transaction; returns their ids in request order.

        Idempotent per individual: an individual that already has an evaluation gets that id back
        (so a driver that crashed between recording children and queueing them can simply redo it).
        Retry limits come from the run's `[worker]` config (max_attempts, max_lease_expiries).
        """
        wanted = list(requests)
        if not wanted:
            return []
        return self.db.write(lambda conn: self._enqueue(conn, run_id, wanted), what="enqueue")

    def _enqueue(self, conn: Connection, run_id: str, requests: list[EvaluationRequest]) -> list[int]:
        max_attempts, max_expiries = self._retry_limits(conn, run_id)
        individual_ids = [r.individual_id for r in requests if r.individual_id is not None]
        existing: dict[int, int] = {}
        hashes: dict[int, str] = {}
        sql, db = self.sql, self.db
        for chunk in chunks(individual_ids):
            for row in db.execute(conn, sql.evaluation_ids_of_individuals, individual_ids=chunk):
                existing[row.individual_id] = row.id
            for row in db.execute(conn, sql.individual_hashes, individual_ids=chunk):
                if row.run_id != run_id:
                    raise StoreError(f"individual {row.id} belongs to run {row.run_id}, not {run_id}")
                hashes[row.id] = row.genome_hash
        missing = set(individual_ids) - set(hashes)
        if missing:
            raise StoreError(f"no individual {sorted(missing)[0]} in run {run_id}",
                             hint="record children with add_individuals before queueing them")
        now = db.now_value(conn)
        new_rows: list[dict[str, Any]] = []
        positions: list[int] = []
        seen: set[int] = set()
        for index, request in enumerate(requests):
            individual_id = request.individual_id
            if individual_id is not None and (individual_id in existing or individual_id in seen):
                continue
            if request.individual_id is not None:
                seen.add(request.individual_id)
            task = request.task
            genome_hash = (request.genome_hash
                           or (hashes.get(request.individual_id) if request.individual_id is not None else None)
                           or hashlib.sha256(task.genome.encode()).hexdigest()[:16])
            new_rows.append({
                "run_id": run_id, "individual_id": request.individual_id, "status": "pending",
                "priority": int(request.priority), "task_json": task_json(task, run_id), "genome": task.genome,
                "genome_hash": genome_hash, "config_hash": request.config_hash, "created_at": now,
                "max_attempts": max_attempts, "max_lease_expiries": max_expiries, "extra_json": "{}",
            })
            positions.append(index)
        ids: list[int | None] = [existing.get(r.individual_id) if r.individual_id is not None else None
                                 for r in requests]
        if new_rows:
            inserted = db.execute_many(conn, sql.insert_pending, new_rows)
            for index, row in zip(positions, inserted):
                ids[index] = row.id
            notify(conn, WORK_CHANNEL, run_id)  # idle workers wake at commit (PostgreSQL)
        by_individual = {requests[i].individual_id: ids[i] for i in positions if requests[i].individual_id is not None}
        return [i if i is not None else _known(by_individual[r.individual_id]) for i, r in zip(ids, requests)]

    def _retry_limits(self, conn: Connection, run_id: str) -> tuple[int, int]:
        """(max_attempts, max_lease_expiries) from the run's [worker] config; a run's config never
        changes, so it is read once per store."""
        known = self._retry_limits_of_run
        if run_id not in known:
            worker_cfg = self.runs.config(conn, run_id).get("worker", {}) or {}
            known[run_id] = (int(worker_cfg.get("max_attempts", self.limits.max_attempts)),
                             int(worker_cfg.get("max_lease_expiries", self.limits.max_lease_expiries)))
        return known[run_id]

    # ---------------------------------------------------------------- claim
    def prepare_worker(self) -> None:
        """Get ready to serve work: compile the queue's statements before any task waits on them."""
        self.db.prepare(self.sql.worker_cycle())

    def claim(self, worker_id: str, *, run_id: str | None = None, lease_seconds: float) -> Claim | None:
        """Take the next evaluation: a running row whose lease has expired (its holder is presumed
        dead), else the oldest highest-priority pending row — of `run_id`, or without it, of the
        run that has the fewest evaluations running (runs share the pool fairly; see
        queue_sql._fair_run). Returns None when there is nothing to do. One statement (PostgreSQL:
        `FOR UPDATE SKIP LOCKED`, no transaction around it; SQLite: BEGIN IMMEDIATE).
        A row whose leases have expired `max_lease_expiries` times is failed as `timeout` instead."""
        statement, params = self._claim_call(worker_id, run_id, lease_seconds)
        for _ in range(100):  # bounded: each pass claims a row or fails one whose expiries are spent
            row = self.db.write(lambda conn: self.db.execute(conn, statement, **params).first(), what="claim",
                                single_statement=True)
            if not _spent(row):
                if row is not None and row.attempt > 1:
                    log.info("evaluation %s claimed by %s as attempt %s", row.id, worker_id, row.attempt)
                return _claim_of(row)
            self.db.write(functools.partial(self._fail_exhausted_claim, claimed=row), what="fail an expired evaluation")
        return None

    def _claim_call(self, worker_id: str, run_id: str | None, lease_seconds: float) -> tuple[Statement, dict[str, Any]]:
        """The claim statement of any run or of `run_id`, and its parameters."""
        params: dict[str, Any] = {"worker_id": worker_id, "lease": check_lease(lease_seconds)}
        if run_id is None:
            return self.sql.claim_any_run, params
        return self.sql.claim_one_run, {**params, "run_id": run_id}

    def complete_and_claim(self, evaluation_id: int, attempt: int, result: Result, worker_id: str, *,
                           run_id: str | None = None, lease_seconds: float) -> tuple[bool, Claim | None]:
        """complete() and then claim() for the same worker: (written, next claim or None), in ONE
        transaction: one commit (an fsync) per task instead of two. On SQLite one write transaction;
        on PostgreSQL a finishing result is the claim and the finish statement in one pipelined
        round trip, and a result that goes back to pending takes the two separate calls. A claimed
        row whose lease expiries are spent is failed and claim() takes over, as claim() does."""
        db = self.db
        if db.backend != "sqlite" and (not self._finishes(result) or result.weights is not None):
            return self.complete(evaluation_id, attempt, result), self.claim(
                worker_id, run_id=run_id, lease_seconds=lease_seconds)
        claim, claim_params = self._claim_call(worker_id, run_id, lease_seconds)

        def body(conn: Connection) -> tuple[bool, Any]:
            if db.backend == "sqlite":
                return (self._complete(conn, evaluation_id, attempt, result),
                        db.execute(conn, claim, **claim_params).first())
            # The claim goes first: the finish locks the run row (its seq counter) until the
            # commit, and at the end of the transaction it holds that lock no longer than alone.
            claimed, finished = db.execute_pipelined(
                conn, [(claim, claim_params), self._finish_call(evaluation_id, attempt, result)])
            written = finished.first() is not None or self._already_settled(conn, evaluation_id, attempt, "result")
            return written, claimed.first()

        written, row = db.write(body, what="complete and claim", single_statement=db.backend != "sqlite")
        if not _spent(row):
            return written, _claim_of(row)
        db.write(lambda conn: self._fail_exhausted_claim(conn, row), what="fail an expired evaluation")
        return written, self.claim(worker_id, run_id=run_id, lease_seconds=lease_seconds)

    def _fail_exhausted_claim(self, conn: Connection, claimed: Any) -> None:
        """Fail a row just claimed whose lease expiries are spent (fenced by its new attempt)."""
        db, sql = self.db, self.sql
        if db.execute(conn, sql.held, evaluation_id=claimed.id, attempt=claimed.attempt).first() is None:
            return  # taken over meanwhile (cannot happen within a fresh lease, but be exact)
        db.execute(conn, sql.fail_exhausted, evaluation_id=claimed.id, attempt=claimed.attempt,
                   seq=self._next_completion_seq(conn, claimed.run_id),
                   error_message=f"lease expired {claimed.lease_expiries} times: its workers died or stalled")
        notify(conn, RESULT_CHANNEL, claimed.run_id)
        log.warning("evaluation %s failed: lease expired %s times", claimed.id, claimed.lease_expiries)

    def _fail_exhausted_lease(self, conn: Connection, expired: Any) -> None:
        count = expired.lease_expiries + 1
        self.db.execute(conn, self.sql.fail_timeout, evaluation_id=expired.id, lease_expiries=count,
                        seq=self._next_completion_seq(conn, expired.run_id),
                        error_message=f"lease expired {count} times: its workers died or stalled")
        notify(conn, RESULT_CHANNEL, expired.run_id)
        log.warning("evaluation %s failed: lease expired %s times", expired.id, count)

    # ---------------------------------------------------------------- holder writes (fenced)
    def heartbeat(self, evaluation_id: int, attempt: int, lease_seconds: float) -> bool:
        """Extend the lease to now + lease_seconds (database clock). False: the claim is lost —
        abandon the task, its result would be refused anyway."""
        lease = check_lease(lease_seconds)

        def body(conn: Connection) -> bool:
            updated = self.db.execute(conn, self.sql.heartbeat, evaluation_id=evaluation_id, attempt=attempt,
                                      lease=lease).rowcount
            if updated != 1:
                log.warning("heartbeat refused: evaluation %s attempt %s no longer holds the row",
                            evaluation_id, attempt)
            return updated == 1

        return self.db.write(body, what="heartbeat", single_statement=True)

    def complete(self, evaluation_id: int, attempt: int, result: Result) -> bool:
        """Record the outcome of a claim (a done or failed Result). False: the claim was lost and
        nothing was written. A failed result of a retryable kind (`limits.retry_kinds`) with
        attempts left goes back to pending (no sequence number); anything else finishes the row
        and gets the next completion sequence number of its run. Retrying after a lost
        acknowledgement is safe: the same claim's second write returns True."""
        if self.db.backend == "postgresql" and self._finishes(result) and result.weights is None:
            return self.db.write(lambda conn: self._finish_in_one(conn, evaluation_id, attempt, result),
                                 what="complete", single_statement=True)
        return self.db.write(lambda conn: self._complete(conn, evaluation_id, attempt, result), what="complete")

    def _finishes(self, result: Result) -> bool:
        """Whether a result finishes its row whatever the row's attempts (else it may be re-queued)."""
        return result.status == "done" or result.error_kind not in self.limits.retry_kinds

    def _finish_call(self, evaluation_id: int, attempt: int, result: Result) -> tuple[Statement, dict[str, Any]]:
        """The one-statement finish (PostgreSQL; see queue_sql._finish_in_one) and its parameters."""
        assert self.sql.finish_in_one is not None, "finish_in_one is PostgreSQL's"
        values = {f"v_{name}": value for name, value in convert.result_values(result).items()}
        return self.sql.finish_in_one, dict(evaluation_id=evaluation_id, attempt=attempt, status=result.status,
                                            failed=int(result.status == "failed"), **values)

    def _finish_in_one(self, conn: Connection, evaluation_id: int, attempt: int, result: Result) -> bool:
        """A result that finishes its row, as one statement (PostgreSQL)."""
        statement, params = self._finish_call(evaluation_id, attempt, result)
        if self.db.execute(conn, statement, **params).first() is not None:
            return True
        return self._already_settled(conn, evaluation_id, attempt, "result")

    def fail(self, evaluation_id: int, attempt: int, kind: str, message: str) -> bool:
        """Shorthand for complete() with Result.failure(kind, message)."""
        if kind not in FAILURE_KINDS:
            raise StoreError(f"unknown failure kind {kind!r}", hint=f"one of {', '.join(FAILURE_KINDS)}")
        return self.complete(evaluation_id, attempt, Result.failure(kind, message))

    def _complete(self, conn: Connection, evaluation_id: int, attempt: int, result: Result) -> bool:
        db, sql = self.db, self.sql
        held = db.execute(conn, sql.held, evaluation_id=evaluation_id, attempt=attempt).first()
        if held is None:
            return self._already_settled(conn, evaluation_id, attempt, "result")
        failed = result.status == "failed"
        failures = held.failures + (1 if failed else 0)
        if failed and result.error_kind in self.limits.retry_kinds and failures < held.max_attempts:
            db.execute(conn, sql.requeue, evaluation_id=evaluation_id, attempt=attempt, failures=failures,
                       error_kind=result.error_kind, error_message=result.error_message)
            log.info("evaluation %s attempt %s failed (%s); %s of %s attempts used, queued again",
                     evaluation_id, attempt, result.error_kind, failures, held.max_attempts)
            notify(conn, WORK_CHANNEL, held.run_id)
        else:
            values = {f"v_{name}": value for name, value in convert.result_values(result).items()}
            db.execute(conn, sql.finish, evaluation_id=evaluation_id, attempt=attempt, **values, failures=failures,
                       status=result.status, seq=self._next_completion_seq(conn, held.run_id))
            if result.weights is not None and result.status == "done":  # with the fenced finish
                self.weights.put(conn, held.run_id, evaluation_id, result.weights)
            notify(conn, RESULT_CHANNEL, held.run_id)  # the run's driver wakes at commit (PostgreSQL)
        return True

    def release(self, evaluation_id: int, attempt: int) -> bool:
        """Give a claimed evaluation back at once (SIGTERM/Ctrl-C): pending again, counting against
        neither max_attempts nor max_lease_expiries. The next claim still gets a new token."""

        def body(conn: Connection) -> bool:
            released = self.db.execute(conn, self.sql.release, evaluation_id=evaluation_id, attempt=attempt).first()
            if released is not None:
                notify(conn, WORK_CHANNEL, released.run_id)
                return True
            return self._already_settled(conn, evaluation_id, attempt, "release")

        return self.db.write(body, what="release")

    def _already_settled(self, conn: Connection, evaluation_id: int, attempt: int, what: str) -> bool:
        settled = self.db.execute(conn, self.sql.settled, evaluation_id=evaluation_id).first()
        if settled is not None and settled.settled_attempt == attempt and settled.settled_by == what:
            return True  # our own earlier write whose acknowledgement was lost
        log.warning("%s refused: evaluation %s attempt %s lost its claim (row: attempt %s, %s)", what, evaluation_id,
                    attempt, settled.attempt if settled else None, settled.status if settled else "missing")
        return False

    def _next_completion_seq(self, conn: Connection, run_id: str) -> int:
        # Locks the run row until commit: completions of one run commit in seq order.
        seq: int = self.db.execute(conn, self.sql.next_completion_seq, run_id=run_id).scalar_one()
        return seq

    # ---------------------------------------------------------------- housekeeping
    def reap(self, run_id: str | None = None) -> int:
        """Move every expired lease back to pending now (or to failed `timeout` when its expiries are
        spent). Optional: the claim query takes expired rows itself. Returns rows moved."""

        def body(conn: Connection) -> int:
            db, sql = self.db, self.sql
            if run_id is None:
                rows = db.execute(conn, sql.expired_any_run).all()
            else:
                rows = db.execute(conn, sql.expired_one_run, run_id=run_id).all()
            for row in rows:
                if row.lease_expiries + 1 >= row.max_lease_expiries:
                    self._fail_exhausted_lease(conn, row)
                else:
                    db.execute(conn, sql.requeue_expired, evaluation_id=row.id)
                    notify(conn, WORK_CHANNEL, row.run_id)
            return len(rows)

        return self.db.write(body, what="reap")

    def cancel_pending(self, run_id: str) -> int:
        """Cancel the run's pending evaluations (running ones finish or expire). Returns how many."""
        return self.db.write(lambda conn: conn.execute(
            sa.update(E).where(E.c.run_id == run_id, E.c.status == "pending").values(status="cancelled")).rowcount,
            what="cancel")

    # ---------------------------------------------------------------- reads
    def results(self, run_id: str, after_id: int = 0, limit: int | None = None) -> list[FinishedEvaluation]:
        """Finished (done/failed) evaluations of the run with seq > after_id, in completion order.
        Sequence numbers are per run, start at 1, and commit in order, so paging never skips."""
        statement = self.sql.results
        if limit is not None:
            assert isinstance(statement.sql, sa.Select)
            statement = Statement(statement.name, statement.sql.limit(limit))

        def body(conn: Connection) -> list[FinishedEvaluation]:
            return [convert.finished_evaluation(row)
                    for row in self.db.execute(conn, statement, run_id=run_id, after=after_id)]

        return self.db.read(body, what="results")

    def queue_counts(self, run_id: str | None = None) -> dict[str, int]:
        """{pending, running, done, failed, cancelled} for the run (or all runs)."""

        def body(conn: Connection) -> dict[str, int]:
            query = sa.select(E.c.status, sa.func.count()).group_by(E.c.status)
            if run_id is not None:
                query = query.where(E.c.run_id == run_id)
            counts = {status: 0 for status in EVALUATION_STATUS_NAMES}
            counts.update({status: int(n) for status, n in conn.execute(query)})
            return counts

        return self.db.read(body, what="queue counts")

    def evaluation(self, evaluation_id: int) -> EvaluationInfo:
        """One evaluation row, whatever its status (StoreError if there is none)."""

        def body(conn: Connection) -> EvaluationInfo:
            row = conn.execute(sa.select(E).where(E.c.id == evaluation_id)).first()
            if row is None:
                raise StoreError(f"no evaluation {evaluation_id}")
            return convert.evaluation_info(row)

        return self.db.read(body, what="read evaluation")

    def evaluations(self, run_id: str, status: str | None = None) -> list[EvaluationInfo]:
        """The run's evaluations in id order, optionally only those with `status`."""

        def body(conn: Connection) -> list[EvaluationInfo]:
            query = sa.select(E).where(E.c.run_id == run_id)
            if status is not None:
                query = query.where(E.c.status == status)
            return [convert.evaluation_info(row) for row in conn.execute(query.order_by(E.c.id))]

        return self.db.read(body, what="read evaluations")


def _known(evaluation_id: int | None) -> int:
    assert evaluation_id is not None
    return evaluation_id


def _spent(row: Any) -> bool:
    """A claimed row whose lease expiries are spent: the caller fails it as `timeout` instead."""
    return row is not None and bool(row.lease_expiries >= row.max_lease_expiries)


def _claim_of(row: Any) -> Claim | None:
    if row is None:
        return None
    return Claim(evaluation_id=row.id, attempt=row.attempt, lease_expires_at=row.lease_expires_at,
                 task=convert.claimed_task(row.task_json, row.id, row.run_id, row.attempt))


def task_json(task: Task, run_id: str) -> str:
    """A task row's self-contained description (run, evaluation and attempt are filled in at claim time)."""
    data = {f.name: getattr(task, f.name) for f in dataclasses.fields(task)}  # shallow: no deep copy
    data.update(run_id=run_id, evaluation_id=None, attempt=0)
    return json.dumps(data, sort_keys=True)


