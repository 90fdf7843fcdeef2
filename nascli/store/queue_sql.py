"""The queue's statements, built once per Database with bind parameters (see database.Statement).

Building a SQLAlchemy statement costs far more than running it on SQLite (~0.8 ms vs ~0.1 ms),
and a worker runs these in a loop. Their SQL per dialect is in nascli/store/sql/<dialect>/<name>.sql.
`now` is the clock expression (Database.now_param).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from nascli.store.database import Statement, insert_rows, list_param, param
from nascli.store.models import RESULT_COLUMNS
from nascli.store.notify import RESULT_CHANNEL
from nascli.store.records import TERMINAL_RUN_STATUSES
from nascli.store.tables import E, I, R

CLAIM_COLUMNS = (E.c.id, E.c.attempt, E.c.task_json, E.c.run_id, E.c.lease_expires_at)
PENDING_COLUMNS = ("run_id", "individual_id", "status", "priority", "task_json", "genome", "genome_hash",
                   "config_hash", "created_at", "max_attempts", "max_lease_expiries", "extra_json")


def _fence() -> tuple[sa.ColumnElement[bool], ...]:
    """The holder's fence: the row, the claim's attempt (the fencing token), still running."""
    return E.c.id == param("evaluation_id"), E.c.attempt == param("attempt"), E.c.status == "running"


def _fair_run() -> sa.ScalarSelect[Any]:
    """The run whose pending work an unpinned worker should take: the highest pending priority,
    then the FEWEST RUNNING evaluations, then a random one of those tied. Runs sharing a pool so
    get equal numbers of workers whatever their queue lengths or enqueue order, and a lone worker
    alternates between runs at random (a lottery: fair in expectation, no state to keep). Every
    subquery is a probe of ix_evaluation_run_claim (run_id, status, ...). Runs that are finished,
    failed or cancelled are not considered (leftovers still go, via the fallback, when nothing
    else waits)."""
    pending, running = E.alias("run_pending"), E.alias("run_running")
    top_priority = (sa.select(pending.c.priority).where(pending.c.run_id == R.c.id, pending.c.status == "pending")
                    .order_by(pending.c.priority.desc()).limit(1).scalar_subquery().correlate(R))
    in_flight = (sa.select(sa.func.count()).select_from(running)
                 .where(running.c.run_id == R.c.id, running.c.status == "running").scalar_subquery().correlate(R))
    # three comparisons, not NOT IN (...): an expanding IN cannot be compiled once and reused raw
    live = sa.and_(*(R.c.status != status for status in TERMINAL_RUN_STATUSES))
    return (sa.select(R.c.id).where(live, top_priority.is_not(None))
            .order_by(top_priority.desc(), in_flight, sa.func.random()).limit(1).scalar_subquery())


def _claim(now: sa.ColumnElement[float], *, one_run: bool) -> sa.Update:
    """The claim is ONE statement (one round trip; a single statement needs no transaction on
    PostgreSQL): the row is the first of (an expired lease - its holder is presumed dead; [one
    run:] the run's next pending row | [any run:] the fair run's next pending row (see _fair_run),
    else any run's - when SKIP LOCKED leaves nothing in the fair run). COALESCE evaluates the
    probes lazily, each an index probe. A row whose lease expiries are spent is claimed too and
    the caller fails it (fenced) at once: no sweeper needed. SKIP LOCKED is PostgreSQL's; SQLite's
    compiler leaves it out (BEGIN IMMEDIATE serialises writers there)."""
    expired = (sa.select(E.c.id).where(E.c.status == "running", E.c.lease_expires_at < now)
               .order_by(E.c.lease_expires_at).limit(1).with_for_update(skip_locked=True))
    pending = sa.select(E.c.id).where(E.c.status == "pending")
    if one_run:
        expired = expired.where(E.c.run_id == param("run_id"))
        candidates = [pending.where(E.c.run_id == param("run_id"))]
    else:
        candidates = [pending.where(E.c.run_id == _fair_run()), pending]
    target = sa.func.coalesce(expired.scalar_subquery(), *(
        query.order_by(E.c.priority.desc(), E.c.id).limit(1).with_for_update(skip_locked=True).scalar_subquery()
        for query in candidates))
    claimable = sa.or_(E.c.status == "pending", sa.and_(E.c.status == "running", E.c.lease_expires_at < now))
    return (sa.update(E).where(E.c.id == target, claimable)
            .values(status="running", worker_id=param("worker_id"), attempt=E.c.attempt + 1,
                    claimed_at=now, heartbeat_at=now, lease_expires_at=now + param("lease", sa.Float),
                    started_at=sa.func.coalesce(E.c.started_at, now),
                    lease_expiries=E.c.lease_expiries + sa.case((E.c.status == "running", 1), else_=0))
            .returning(*CLAIM_COLUMNS, E.c.lease_expiries, E.c.max_lease_expiries))


def _finish_in_one(finish: sa.Update) -> sa.Select[Any]:
    """PostgreSQL: the whole of a finishing complete() as ONE statement (no transaction, one round
    trip): lock the held row (fence), take the run's next completion seq (locking the run row, so
    one run's completions commit in seq order), finish the row, notify the driver. Returns the run
    id, or no row when the claim was lost. A data-modifying CTE runs whether or not it is
    referenced, and all of them see one snapshot; `held` locks first. The worker row is not
    touched: a worker checks its counts in itself (Store.worker_seen), because a worker-row update
    in every finish costs 15-20 % of PostgreSQL's throughput at 8 workers."""
    held = sa.select(E.c.id, E.c.run_id).where(*_fence()).with_for_update().cte("held")
    next_seq = (sa.update(R).where(R.c.id == sa.select(held.c.run_id).scalar_subquery())
                .values(completion_counter=R.c.completion_counter + 1).returning(R.c.completion_counter)
                .cte("next_seq"))
    finished = (finish.where(E.c.id == sa.select(held.c.id).scalar_subquery())
                .values(seq=sa.select(next_seq.c.completion_counter).scalar_subquery(),
                        failures=E.c.failures + param("failed", sa.Integer))
                .returning(E.c.run_id).cte("finished"))
    return sa.select(finished.c.run_id, sa.func.pg_notify(RESULT_CHANNEL, finished.c.run_id))


@dataclass(frozen=True)
class QueueSql:
    """The queue's named statements. A worker's cycle runs on the DB-API connection (`dbapi`)."""

    claim_any_run: Statement
    claim_one_run: Statement
    heartbeat: Statement
    held: Statement
    requeue: Statement
    finish: Statement
    finish_in_one: Statement | None  # PostgreSQL only
    release: Statement
    settled: Statement
    next_completion_seq: Statement
    fail_exhausted: Statement
    fail_timeout: Statement
    expired_any_run: Statement
    expired_one_run: Statement
    requeue_expired: Statement
    # queueing children (the driver)
    evaluation_ids_of_individuals: Statement
    individual_hashes: Statement
    insert_pending: Statement
    # the driver's fold
    results: Statement

    def worker_cycle(self) -> tuple[Statement, ...]:
        """What a worker may run: prepare_worker compiles these before the first task."""
        cycle = (self.claim_any_run, self.claim_one_run, self.heartbeat, self.held, self.requeue, self.finish,
                 self.release, self.settled, self.next_completion_seq, self.fail_exhausted)
        return cycle + ((self.finish_in_one,) if self.finish_in_one is not None else ())

    def every_statement(self) -> tuple[Statement, ...]:
        every = (*self.worker_cycle(), self.fail_timeout, self.expired_any_run, self.expired_one_run,
                 self.requeue_expired, self.evaluation_ids_of_individuals, self.individual_hashes,
                 self.insert_pending, self.results)
        return every


def build(now: sa.ColumnElement[float], backend: str) -> QueueSql:
    settle = dict(failures=param("failures"), settled_attempt=param("attempt"), settled_by="result",
                  lease_expires_at=None)
    result_columns = (*RESULT_COLUMNS, "error_kind", "error_message", "extra_json")
    result_values = {name: param(f"v_{name}") for name in result_columns}
    finish = sa.update(E).where(*_fence()).values(status=param("status"), seq=param("seq"), finished_at=now,
                                                  **result_values, **settle)
    expired = (sa.select(E.c.id, E.c.run_id, E.c.lease_expiries, E.c.max_lease_expiries)
               .where(E.c.status == "running", E.c.lease_expires_at < now))
    return QueueSql(
        claim_any_run=Statement(
            "claim_any_run", _claim(now, one_run=False), dbapi=True,
            doc="Claim the next evaluation of any run: an expired lease, else the fair run's next pending row."),
        claim_one_run=Statement(
            "claim_one_run", _claim(now, one_run=True), dbapi=True,
            doc="Claim the next evaluation of one run: an expired lease, else its next pending row."),
        heartbeat=Statement(
            "heartbeat", sa.update(E).where(*_fence()).values(heartbeat_at=now,
                                                              lease_expires_at=now + param("lease", sa.Float)),
            dbapi=True, doc="Extend a held claim's lease (fenced: no row updated means the claim is lost)."),
        held=Statement(
            "held", sa.select(E.c.run_id, E.c.failures, E.c.max_attempts).where(*_fence()).with_for_update(),
            dbapi=True, doc="Lock a held claim's row before its result is written (fenced)."),
        requeue=Statement(
            "requeue", sa.update(E).where(*_fence()).values(status="pending", worker_id=None,
                                                            error_kind=param("error_kind"),
                                                            error_message=param("error_message"), **settle),
            dbapi=True, doc="A retryable failure with attempts left: the row goes back to pending (fenced)."),
        finish=Statement("finish", finish, dbapi=True,
                         doc="Record a claim's result as done or failed with its completion seq (fenced)."),
        finish_in_one=Statement(
            "finish_in_one", _finish_in_one(finish), dbapi=True,
            doc="Fence, take the run's next completion seq, finish the row and notify the driver, "
                "in one statement.") if backend == "postgresql" else None,
        release=Statement(
            "release", sa.update(E).where(*_fence()).values(
                status="pending", worker_id=None, lease_expires_at=None, releases=E.c.releases + 1,
                settled_attempt=param("attempt"), settled_by="release").returning(E.c.run_id),
            dbapi=True, doc="Give a claim back at once (SIGTERM): pending again, no attempt counted (fenced)."),
        settled=Statement(
            "settled", sa.select(E.c.settled_attempt, E.c.settled_by, E.c.attempt, E.c.status)
            .where(E.c.id == param("evaluation_id")), dbapi=True,
            doc="Who settled a row last: tells a retried write of our own from a lost claim."),
        next_completion_seq=Statement(
            "next_completion_seq", sa.update(R).where(R.c.id == param("run_id"))
            .values(completion_counter=R.c.completion_counter + 1).returning(R.c.completion_counter), dbapi=True,
            doc="Take the run's next completion seq; locks the run row, so completions commit in seq order."),
        fail_exhausted=Statement(
            "fail_exhausted", sa.update(E).where(*_fence()).values(
                status="failed", seq=param("seq"), finished_at=now, lease_expires_at=None, error_kind="timeout",
                error_message=param("error_message"), settled_attempt=param("attempt"), settled_by="result"),
            dbapi=True, doc="Fail a just-claimed row whose lease expiries are spent, as timeout (fenced)."),
        fail_timeout=Statement(
            "fail_timeout", sa.update(E).where(E.c.id == param("evaluation_id"), E.c.status == "running").values(
                status="failed", lease_expiries=param("lease_expiries"), seq=param("seq"), finished_at=now,
                lease_expires_at=None, error_kind="timeout", error_message=param("error_message")),
            dbapi=True, doc="Fail an expired lease whose expiries are spent, as timeout (reap)."),
        expired_any_run=Statement(
            "expired_any_run", expired.order_by(E.c.id).with_for_update(skip_locked=True), dbapi=True,
            doc="Running rows whose lease has expired, of any run (reap)."),
        expired_one_run=Statement(
            "expired_one_run", expired.where(E.c.run_id == param("run_id")).order_by(E.c.id)
            .with_for_update(skip_locked=True), dbapi=True,
            doc="Running rows of one run whose lease has expired (reap)."),
        requeue_expired=Statement(
            "requeue_expired", sa.update(E).where(E.c.id == param("evaluation_id"), E.c.status == "running").values(
                status="pending", worker_id=None, lease_expires_at=None, lease_expiries=E.c.lease_expiries + 1),
            dbapi=True, doc="An expired lease back to pending, counting one lease expiry (reap)."),
        evaluation_ids_of_individuals=Statement(
            "evaluation_ids_of_individuals", sa.select(E.c.individual_id, E.c.id).where(
                E.c.individual_id.in_(list_param("individual_ids"))),
            doc="The evaluations individuals already have (enqueue is idempotent per individual)."),
        individual_hashes=Statement(
            "individual_hashes", sa.select(I.c.id, I.c.genome_hash, I.c.run_id).where(
                I.c.id.in_(list_param("individual_ids"))),
            doc="The genome hash and run of individuals about to be queued."),
        insert_pending=Statement(
            "insert_pending", insert_rows(E, PENDING_COLUMNS).returning(E.c.id, sort_by_parameter_order=True),
            doc="Queue evaluations as pending; their ids in the rows' order."),
        results=Statement(
            "results", sa.select(E).where(E.c.run_id == param("run_id"), E.c.seq > param("after")).order_by(E.c.seq),
            doc="The run's finished evaluations after a completion seq, in seq order (the driver's fold)."),
    )
