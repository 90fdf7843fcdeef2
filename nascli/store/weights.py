"""The weights repository: trained networks' weights in the database, for transfer (`train.transfer`)
and `nas export`, reachable from any worker on any host.

A finishing result that carries weights (`Result.weights`: `torch.save` bytes of a CPU state dict,
read back only with `weights_only=True`) writes them in the same transaction as its fenced finish
(`WeightsRepository.put`, called by the queue): a fenced-off result writes none. The driver keeps
only what can still be a donor (living population members, the run's top K, donors of queued
children) and evicts the rest (`evict_weights`). Workers read through a small in-process cache
(`WeightsCache`). The statements' SQL per dialect is in nascli/store/sql/<dialect>/.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from nascli.store.database import Database, Statement, chunks, insert_rows, list_param, param
from nascli.store.tables import WEIGHTS

WEIGHTS_COLUMNS = ("evaluation_id", "run_id", "size_bytes", "data", "created_at")


@dataclass(frozen=True)
class RepositorySize:
    """What a run's repository holds now."""

    models: int
    bytes: int


@dataclass(frozen=True)
class WeightsSql:
    """The repository's named statements."""

    delete_weights: Statement
    insert_weights: Statement
    read_weights: Statement
    stored_weight_ids: Statement
    evict_weights: Statement
    repository_size: Statement

    def every_statement(self) -> tuple[Statement, ...]:
        return (self.delete_weights, self.insert_weights, self.read_weights, self.stored_weight_ids,
                self.evict_weights, self.repository_size)


def build() -> WeightsSql:
    return WeightsSql(
        delete_weights=Statement(
            "delete_weights", sa.delete(WEIGHTS).where(WEIGHTS.c.evaluation_id == param("evaluation_id")),
            doc="Drop an evaluation's stored weights before they are written (a retried write of the same claim)."),
        insert_weights=Statement(
            "insert_weights", insert_rows(WEIGHTS, WEIGHTS_COLUMNS),
            doc="Store an evaluation's weights, in the transaction of its fenced finish."),
        read_weights=Statement(
            "read_weights", sa.select(WEIGHTS.c.data).where(WEIGHTS.c.evaluation_id == param("evaluation_id")),
            doc="The stored weights of an evaluation (a donor, or the network `nas export` writes)."),
        stored_weight_ids=Statement(
            "stored_weight_ids", sa.select(WEIGHTS.c.evaluation_id).where(WEIGHTS.c.run_id == param("run_id")),
            doc="The evaluations of a run whose weights are stored."),
        evict_weights=Statement(
            "evict_weights", sa.delete(WEIGHTS).where(WEIGHTS.c.run_id == param("run_id"),
                                                      WEIGHTS.c.evaluation_id.in_(list_param("evaluation_ids"))),
            doc="Delete weights that can no longer be a donor (the driver, in its step's transaction)."),
        repository_size=Statement(
            "repository_size", sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(WEIGHTS.c.size_bytes), 0))
            .where(WEIGHTS.c.run_id == param("run_id")),
            doc="How many weights a run's repository holds and their bytes."),
    )


def _exists(conn: Connection) -> bool:
    """Whether the table is there: a database created before it is read (read-only) without it."""
    return sa.inspect(conn).has_table(WEIGHTS.name)


class WeightsRepository:
    """One stored state dict per finished evaluation that carried weights."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @functools.cached_property
    def sql(self) -> WeightsSql:
        return build()

    def put(self, conn: Connection, run_id: str, evaluation_id: int, data: bytes) -> None:
        """Insert (or replace: a retried write of the same claim) one evaluation's weights, inside
        the caller's transaction (the queue's fenced finish)."""
        self.db.execute(conn, self.sql.delete_weights, evaluation_id=evaluation_id)
        self.db.execute(conn, self.sql.insert_weights, evaluation_id=evaluation_id, run_id=run_id,
                        size_bytes=len(data), data=data, created_at=self.db.now_value(conn))

    def weights(self, evaluation_id: int) -> bytes | None:
        """The stored weights of an evaluation, or None (never stored, or evicted)."""

        def body(conn: Connection) -> bytes | None:
            if not _exists(conn):
                return None
            data = self.db.execute(conn, self.sql.read_weights, evaluation_id=evaluation_id).scalar_one_or_none()
            return None if data is None else bytes(data)

        return self.db.read(body, what="read weights")

    def stored_weight_ids(self, run_id: str) -> set[int]:
        """The evaluations of a run whose weights are in the repository."""

        def body(conn: Connection) -> set[int]:
            if not _exists(conn):
                return set()
            return {int(row[0]) for row in self.db.execute(conn, self.sql.stored_weight_ids, run_id=run_id)}

        return self.db.read(body, what="list weights")

    def evict_weights(self, run_id: str, evaluation_ids: Iterable[int]) -> int:
        """Delete these evaluations' weights (of this run); returns rows deleted."""
        ids = sorted(set(evaluation_ids))
        if not ids:
            return 0

        def body(conn: Connection) -> int:
            return sum(self.db.execute(conn, self.sql.evict_weights, run_id=run_id, evaluation_ids=list(part)).rowcount
                       for part in chunks(ids))

        return self.db.write(body, what="evict weights")

    def repository_size(self, run_id: str) -> RepositorySize:
        def body(conn: Connection) -> RepositorySize:
            if not _exists(conn):
                return RepositorySize(0, 0)
            row = self.db.execute(conn, self.sql.repository_size, run_id=run_id).first()
            return RepositorySize(int(row[0]), int(row[1]))

        return self.db.read(body, what="measure the weights repository")


class WeightsCache:
    """A worker's small LRU of fetched weights (donors are fetched again and again: seed 004 finds
    strong temporal locality). Thread-safe; `fetch` is called outside the lock."""

    def __init__(self, fetch: Callable[[int], bytes | None], capacity: int = 8) -> None:
        self._fetch, self._capacity = fetch, capacity
        self._items: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, evaluation_id: int) -> bytes | None:
        with self._lock:
            if evaluation_id in self._items:
                self._items.move_to_end(evaluation_id)
                self.hits += 1
                return self._items[evaluation_id]
        self.misses += 1
        data = self._fetch(evaluation_id)
        if data is not None:
            with self._lock:
                self._items[evaluation_id] = data
                while len(self._items) > self._capacity:
                    self._items.popitem(last=False)
        return data


__all__ = ["RepositorySize", "WeightsCache", "WeightsRepository", "WeightsSql", "build"]
