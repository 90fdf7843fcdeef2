"""The queue's hot statements, built once per Store with bind parameters.

Building a SQLAlchemy statement costs far more than running it on SQLite (~0.8 ms vs ~0.1 ms on
this machine), and a worker runs these in a loop, so claim/heartbeat/complete/release reuse these.
`now` is the database clock expression (or, under a test clock, the bind parameter `b_now`).
Bind parameters are prefixed `b_`: SQLAlchemy would treat a parameter named like a column as a
SET value for it.
"""

from __future__ import annotations

import sqlalchemy as sa

from nascli.store.models import RESULT_COLUMNS, EvaluationRow, RunRow, WorkerRow

E = EvaluationRow.__table__
R = RunRow.__table__
W = WorkerRow.__table__

CLAIM_COLUMNS = (E.c.id, E.c.attempt, E.c.task_json, E.c.run_id, E.c.lease_expires_at)


def _fence() -> tuple[sa.ColumnElement[bool], ...]:
    return (E.c.id == sa.bindparam("b_evaluation_id"), E.c.attempt == sa.bindparam("b_attempt"), E.c.status == "running")


def _fair_run() -> sa.ScalarSelect:
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
    return (sa.select(R.c.id).where(R.c.status.notin_(("finished", "failed", "cancelled")), top_priority.is_not(None))
            .order_by(top_priority.desc(), in_flight, sa.func.random()).limit(1).scalar_subquery())


class QueueStatements:
    def __init__(self, now: sa.ColumnElement[float]) -> None:
        lease = sa.bindparam("b_lease", type_=sa.Float)
        claim_values = dict(status="running", worker_id=sa.bindparam("b_worker_id"), attempt=E.c.attempt + 1,
                            claimed_at=now, heartbeat_at=now, lease_expires_at=now + lease,
                            started_at=sa.func.coalesce(E.c.started_at, now))
        expired = (sa.select(E.c.id, E.c.run_id, E.c.lease_expiries, E.c.max_lease_expiries)
                   .where(E.c.status == "running", E.c.lease_expires_at < now))
        # [all runs, one run]; SKIP LOCKED is PostgreSQL's, SQLite's compiler leaves it out
        self.expired = [q.order_by(E.c.lease_expires_at).limit(1).with_for_update(skip_locked=True)
                        for q in (expired, expired.where(E.c.run_id == sa.bindparam("b_run_id")))]
        self.expired_all = [q.order_by(E.c.id).with_for_update(skip_locked=True)
                            for q in (expired, expired.where(E.c.run_id == sa.bindparam("b_run_id")))]
        self.claim_expired = (
            sa.update(E).where(E.c.id == sa.bindparam("b_expired_id"), E.c.status == "running", E.c.lease_expires_at < now)
            .values(lease_expiries=E.c.lease_expiries + 1, **claim_values).returning(*CLAIM_COLUMNS))
        pending = sa.select(E.c.id).where(E.c.status == "pending")
        self.claim_pending = []
        for query in (pending, pending.where(E.c.run_id == sa.bindparam("b_run_id"))):
            next_id = (query.order_by(E.c.priority.desc(), E.c.id).limit(1)
                       .with_for_update(skip_locked=True).scalar_subquery())
            self.claim_pending.append(sa.update(E).where(E.c.id == next_id, E.c.status == "pending")
                                      .values(**claim_values).returning(*CLAIM_COLUMNS))
        # An unpinned worker first serves the run that needs it most (see _fair_run), then takes
        # that run's next row in the usual order; when SKIP LOCKED leaves nothing there (all its
        # pending rows are being claimed right now), claim_pending[0] takes any run's row.
        next_fair_id = (pending.where(E.c.run_id == _fair_run()).order_by(E.c.priority.desc(), E.c.id).limit(1)
                        .with_for_update(skip_locked=True).scalar_subquery())
        self.claim_fair = (sa.update(E).where(E.c.id == next_fair_id, E.c.status == "pending")
                           .values(**claim_values).returning(*CLAIM_COLUMNS))
        self.heartbeat = sa.update(E).where(*_fence()).values(heartbeat_at=now, lease_expires_at=now + lease)
        self.held = (sa.select(E.c.run_id, E.c.failures, E.c.max_attempts, E.c.worker_id)
                     .where(*_fence()).with_for_update())
        settle = dict(failures=sa.bindparam("b_failures"), settled_attempt=sa.bindparam("b_attempt"),
                      settled_by="result", lease_expires_at=None)
        self.requeue = sa.update(E).where(*_fence()).values(
            status="pending", worker_id=None, error_kind=sa.bindparam("b_error_kind"),
            error_message=sa.bindparam("b_error_message"), **settle)
        result_values = {name: sa.bindparam(f"b_v_{name}") for name in
                         (*RESULT_COLUMNS, "error_kind", "error_message", "extra_json")}
        self.finish = sa.update(E).where(*_fence()).values(
            status=sa.bindparam("b_status"), seq=sa.bindparam("b_seq"), finished_at=now, **result_values, **settle)
        self.release = sa.update(E).where(*_fence()).values(
            status="pending", worker_id=None, lease_expires_at=None, releases=E.c.releases + 1,
            settled_attempt=sa.bindparam("b_attempt"), settled_by="release").returning(E.c.run_id)
        self.settled = (sa.select(E.c.settled_attempt, E.c.settled_by, E.c.attempt, E.c.status)
                        .where(E.c.id == sa.bindparam("b_evaluation_id")))
        # taking a seq locks the run row until commit: completions of one run commit in seq order
        self.next_seq = (sa.update(R).where(R.c.id == sa.bindparam("b_run_id"))
                         .values(completion_counter=R.c.completion_counter + 1).returning(R.c.completion_counter))
        self.worker_done = (sa.update(W).where(W.c.id == sa.bindparam("b_worker_id"))
                            .values(tasks_done=W.c.tasks_done + 1, last_seen_at=now))
        self.worker_failed = (sa.update(W).where(W.c.id == sa.bindparam("b_worker_id"))
                              .values(tasks_failed=W.c.tasks_failed + 1, last_seen_at=now))
        self.fail_timeout = sa.update(E).where(E.c.id == sa.bindparam("b_evaluation_id"), E.c.status == "running").values(
            status="failed", lease_expiries=sa.bindparam("b_lease_expiries"), seq=sa.bindparam("b_seq"), finished_at=now,
            lease_expires_at=None, error_kind="timeout", error_message=sa.bindparam("b_error_message"))
        self.requeue_expired = sa.update(E).where(E.c.id == sa.bindparam("b_evaluation_id"), E.c.status == "running").values(
            status="pending", worker_id=None, lease_expires_at=None, lease_expiries=E.c.lease_expiries + 1)
