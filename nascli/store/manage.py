"""What a user does to a whole run: cancel it for good, or delete it and everything that belongs to it.

Each method is one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from nascli.errors import StoreError
from nascli.store.database import Database
from nascli.store.notify import RESULT_CHANNEL, notify
from nascli.store.records import TERMINAL_RUN_STATUSES
from nascli.store.runs import RunRepository
from nascli.store.tables import EV, ISL, MIG, WEIGHTS, E, I, R


@dataclass(frozen=True)
class Cancelled:
    run_id: str
    pending: int  # evaluations that never started
    running: int  # evaluations abandoned by their workers at the next heartbeat


@dataclass(frozen=True)
class Deleted:
    run_id: str
    rows: dict[str, int]  # table -> rows removed


class RunManagement:
    """Cancel and delete."""

    def __init__(self, db: Database, runs: RunRepository) -> None:
        self.db = db
        self.runs = runs

    def cancel_run(self, run_id: str) -> Cancelled:
        """Stop the run for good: status `cancelled`; its pending and running evaluations `cancelled`
        (a running one's worker sees its heartbeat refused and abandons the training; its result
        would be refused anyway). Its driver notices the status and stops. StoreError if the run has
        already stopped."""

        def body(conn: Connection) -> Cancelled:
            now = self.db.now_value(conn)
            status = conn.execute(sa.select(R.c.status).where(R.c.id == run_id).with_for_update()).scalar_one_or_none()
            if status is None:
                raise self.runs.not_found(conn, run_id)
            if status in TERMINAL_RUN_STATUSES:
                raise StoreError(f"run {run_id} is already {status}", hint=f"see it with `nas report {run_id}`")
            counts: dict[str, int] = {}
            for state in ("pending", "running"):
                counts[state] = conn.execute(sa.update(E).where(E.c.run_id == run_id, E.c.status == state).values(
                    status="cancelled", worker_id=None, lease_expires_at=None, finished_at=now)).rowcount
            conn.execute(sa.update(R).where(R.c.id == run_id).values(status="cancelled", updated_at=now,
                                                                     finished_at=now))
            notify(conn, RESULT_CHANNEL, run_id)  # a waiting driver (PostgreSQL) wakes and sees it at once
            return Cancelled(run_id, counts["pending"], counts["running"])

        return self.db.write(body, what="cancel run")

    def delete_run(self, run_id: str, *, driver_dead: bool = False) -> Deleted:
        """Remove the run and everything that belongs to it, in one transaction. Refused while a
        driver holds a live lease on it (cancel it first: its driver releases the lease as it stops),
        unless `driver_dead`: the caller holds the run's driver token, so the lease's holder is gone.
        Other runs keep their cached results: a cache hit is a copy of the source row in the run that
        reused it, not a reference."""

        def body(conn: Connection) -> Deleted:
            run = conn.execute(sa.select(R.c.status, R.c.driver_owner, R.c.driver_lease_expires_at)
                               .where(R.c.id == run_id).with_for_update()).first()
            if run is None:
                raise self.runs.not_found(conn, run_id)
            now = self.db.now_value(conn)
            if run.driver_owner and (run.driver_lease_expires_at or 0) > now and not driver_dead:
                raise StoreError(f"run {run_id} is being driven by {run.driver_owner}",
                                 hint=f"stop it first with `nas cancel {run_id}` (its driver lets go within a second), "
                                      "then delete it")
            rows: dict[str, int] = {}
            # children before parents: migrations and evaluations point at individuals, all at the run
            for name, table in (("weights", WEIGHTS), ("migrations", MIG), ("evaluations", E), ("individuals", I),
                                ("islands", ISL), ("events", EV), ("runs", R)):
                column = table.c.id if table is R else table.c.run_id
                rows[name] = conn.execute(sa.delete(table).where(column == run_id)).rowcount
            return Deleted(run_id, rows)

        return self.db.write(body, what="delete run")
