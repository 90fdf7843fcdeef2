"""The worker registry: who serves the queue, from where, and how many tasks each has done."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from nascli.store.database import Database
from nascli.store.records import WorkerInfo
from nascli.store.tables import W


class WorkerRegistry:
    def __init__(self, db: Database) -> None:
        self.db = db

    def register_worker(self, worker_id: str, *, host: str, pid: int, device: str) -> WorkerInfo:
        """Record (or re-record) a worker; its task counters survive a re-registration."""

        def body(conn: Connection) -> WorkerInfo:
            now = self.db.now_value(conn)
            values = dict(host=host, pid=int(pid), device=device, started_at=now, last_seen_at=now)
            if not conn.execute(sa.update(W).where(W.c.id == worker_id).values(**values)).rowcount:
                conn.execute(sa.insert(W).values(id=worker_id, tasks_done=0, tasks_failed=0, **values))
            return _worker_info(conn.execute(sa.select(W).where(W.c.id == worker_id)).one())

        return self.db.write(body, what="register worker")

    def worker_seen(self, worker_id: str, *, tasks_done: int | None = None, tasks_failed: int | None = None) -> bool:
        """Stamp the worker's last_seen_at (database clock) and, when given, set its task counts (the
        worker's own totals: a retried write changes nothing). False if it was never registered.
        complete() does not count: a worker checks its counts in every few seconds and when it exits."""
        counts = {name: value for name, value in (("tasks_done", tasks_done), ("tasks_failed", tasks_failed))
                  if value is not None}
        return self.db.write(lambda conn: conn.execute(sa.update(W).where(W.c.id == worker_id).values(
            last_seen_at=self.db.now_sql(), **counts)).rowcount == 1, what="worker seen")

    def workers(self) -> list[WorkerInfo]:
        """Every registered worker, most recently seen first."""
        return self.db.read(lambda conn: [_worker_info(row) for row in
                                          conn.execute(sa.select(W).order_by(W.c.last_seen_at.desc(), W.c.id))],
                            what="read workers")


def _worker_info(row: Any) -> WorkerInfo:
    return WorkerInfo(id=row.id, host=row.host, pid=row.pid, device=row.device, started_at=row.started_at,
                      last_seen_at=row.last_seen_at, tasks_done=row.tasks_done, tasks_failed=row.tasks_failed)
