"""Read-only queries for `nas report` and `nas export`.

Every query is a plain SELECT in a read transaction (SQLite: a deferred `BEGIN`, which in WAL mode
never blocks the driver or a worker; PostgreSQL: MVCC snapshot reads). Nothing here takes a lease
or writes a row. Aggregates (counts, maxima, means, sums of squares) run in the database and are
set-based, so a 100k-evaluation run stays fast; the few per-row reads (root ancestors, the Pareto
cloud, progress curves) fetch only the narrow columns they need.

Results are plain dicts / records: SQLModel rows never leave nascli.store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from nascli.metrics import ACCURACIES, METRIC_COLUMNS, STOPPED, Ranking, value
from nascli.store.records import RunInfo
from nascli.store.tables import EV, MIG, E, I, R, W

if TYPE_CHECKING:
    from nascli.store.store import Store

T = TypeVar("T")



def fitness_of(primary: str, row: dict[str, Any]) -> float | None:
    """The primary metric's value of a row (derived ones computed), None when missing."""
    return value(row, primary)


def _rows(connection: Connection, statement: sa.Executable) -> list[dict[str, Any]]:
    return [dict(row) for row in connection.execute(statement).mappings()]


# ------------------------------------------------------------------------------------------ runs


def status_counts(connection: Connection, run_id: str | None = None) -> dict[str, dict[str, int]]:
    """run id -> evaluation status -> count (every run, or one)."""
    statement = sa.select(E.c.run_id, E.c.status, sa.func.count().label("n")).group_by(E.c.run_id, E.c.status)
    if run_id is not None:
        statement = statement.where(E.c.run_id == run_id)
    counts: dict[str, dict[str, int]] = {}
    for row in connection.execute(statement):
        counts.setdefault(row.run_id, {})[row.status] = int(row.n)
    return counts


def best_per_run(connection: Connection, rankings: dict[str, Ranking]) -> dict[str, dict[str, Any]]:
    """run id -> its best finished evaluation (val/test accuracy, loss, params), by the run's ranking."""
    best: dict[str, dict[str, Any]] = {}
    for run_id, ranking in rankings.items():
        rows = ranked(connection, run_id, ranking, 1)
        if rows:
            best[run_id] = rows[0]
    return best


def activity(connection: Connection, run_id: str) -> dict[str, Any]:
    """First start, last finish, total training seconds, distinct workers, and how many finished
    evaluations were trained by a worker or answered from the cache."""
    statement = sa.select(
        sa.func.min(E.c.started_at).label("first_started_at"),
        sa.func.max(E.c.finished_at).label("last_finished_at"),
        sa.func.sum(E.c.train_seconds).label("train_seconds"),
        sa.func.count(sa.distinct(E.c.worker_id)).label("workers"),
        sa.func.count(E.c.worker_id).label("trained"),  # a cache hit has no worker
        sa.func.sum(sa.case((E.c.worker_id.is_(None), 1), else_=0)).label("cached"),
    ).where(E.c.run_id == run_id, E.c.status.in_(("done", "failed")))
    return dict(connection.execute(statement).mappings().one())


def failure_kinds(connection: Connection, run_id: str) -> dict[str, int]:
    statement = (sa.select(E.c.error_kind, sa.func.count().label("n"))
                 .where(E.c.run_id == run_id, E.c.status == "failed").group_by(E.c.error_kind))
    return {row.error_kind or "unknown": int(row.n) for row in connection.execute(statement)}


def individual_totals(connection: Connection, run_id: str) -> dict[str, Any]:
    statement = sa.select(sa.func.count().label("individuals"), sa.func.max(I.c.generation).label("generation")) \
        .where(I.c.run_id == run_id)
    return dict(connection.execute(statement).mappings().one())


# --------------------------------------------------------------------------------------- islands


def island_totals(connection: Connection, run_id: str) -> list[dict[str, Any]]:
    """Per island: individuals born, alive, newest generation, evaluations done/failed."""
    born = _rows(connection, sa.select(
        I.c.island, sa.func.count().label("individuals"),
        sa.func.sum(sa.case((I.c.alive.is_(True), 1), else_=0)).label("alive"),
        sa.func.max(I.c.generation).label("generation"),
    ).where(I.c.run_id == run_id).group_by(I.c.island).order_by(I.c.island))
    evaluated = {row["island"]: row for row in _rows(connection, sa.select(
        I.c.island,
        sa.func.sum(sa.case((E.c.status == "done", 1), else_=0)).label("evaluated"),
        sa.func.sum(sa.case((E.c.status == "failed", 1), else_=0)).label("failed"),
    ).select_from(E.join(I, E.c.individual_id == I.c.id)).where(E.c.run_id == run_id).group_by(I.c.island))}
    for row in born:
        extra = evaluated.get(row["island"], {})
        row["evaluated"] = int(extra.get("evaluated") or 0)
        row["failed"] = int(extra.get("failed") or 0)
        row["alive"] = int(row["alive"] or 0)
    return born


def island_generations(connection: Connection, run_id: str) -> dict[int, int]:
    """island -> newest generation with an individual (index-only on the (run, island, generation, slot) key)."""
    statement = (sa.select(I.c.island, sa.func.max(I.c.generation)).where(I.c.run_id == run_id)
                 .group_by(I.c.island))
    return {island: generation for island, generation in connection.execute(statement)}


def best_per_island(connection: Connection, run_id: str, ranking: Ranking) -> dict[int, dict[str, Any]]:
    """island -> its best finished evaluation, by the run's ranking."""
    best: dict[int, int] = {}
    for row in _ranked_narrow(connection, run_id, ranking):
        best.setdefault(row["island"], row["evaluation_id"])
    details = _ranked_details(connection, list(best.values()))
    return {island: details[ident] for island, ident in best.items()}


def first_parent(parents_json: str | None) -> int | None:
    """The first id of a JSON list like "[12, 34]" without a full JSON parse (100k rows per report)."""
    if not parents_json or len(parents_json) < 3:
        return None
    head = parents_json[1:].split(",", 1)[0].strip(" ]")
    return int(head) if head else None


def lineage_links(connection: Connection, run_id: str) -> list[tuple[int, int | None, int, bool]]:
    """(id, first parent, island, alive) of every individual: one narrow pass for root ancestors."""
    statement = sa.select(I.c.id, I.c.parents_json, I.c.island, I.c.alive).where(I.c.run_id == run_id)
    return [(ident, first_parent(parents), island, bool(alive))
            for ident, parents, island, alive in connection.execute(statement)]


# ------------------------------------------------------------------------------------ top, pareto


def _individual_columns() -> list[sa.ColumnElement[Any]]:
    return [I.c.island, I.c.generation, I.c.slot, I.c.operator, I.c.alive, I.c.age, I.c.parents_json,
            I.c.genome_hash]


def _ranked_narrow(connection: Connection, run_id: str, ranking: Ranking) -> list[dict[str, Any]]:
    """Every ranked done evaluation (id, genome hash, island, the ranking's columns), best first;
    ties keep the earlier evaluation first. Ranked in Python by the one key (nascli.metrics)."""
    statement = (sa.select(E.c.id.label("evaluation_id"), E.c.genome_hash, I.c.island,
                           *[E.c[name] for name in ranking.columns])
                 .select_from(E.join(I, E.c.individual_id == I.c.id))
                 .where(E.c.run_id == run_id, E.c.status == "done",
                        sa.or_(E.c.extra_json.is_(None),  # not ranked (Ranking.key)
                               E.c.extra_json.not_like(f'%"{STOPPED}"%')))
                 .order_by(E.c.id))
    scored = []
    for row in _rows(connection, statement):
        key = ranking.key(row)
        if key is not None:
            scored.append((key, row))
    scored.sort(key=lambda pair: pair[0], reverse=True)  # stable: equal keys stay in id order
    return [row for _, row in scored]


def _ranked_details(connection: Connection, evaluation_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    ids = list(dict.fromkeys(evaluation_ids))
    for start in range(0, len(ids), 500):
        statement = (
            sa.select(E.c.id.label("evaluation_id"), E.c.run_id, E.c.individual_id, E.c.genome, E.c.seq, E.c.worker_id,
                      E.c.started_at, E.c.finished_at, E.c.extra_json, *[E.c[name] for name in METRIC_COLUMNS],
                      *_individual_columns())
            .select_from(E.join(I, E.c.individual_id == I.c.id)).where(E.c.id.in_(ids[start:start + 500])))
        for row in _rows(connection, statement):
            found[row["evaluation_id"]] = row
    return found


def ranked(connection: Connection, run_id: str, ranking: Ranking, k: int, offset: int = 0,
           distinct: bool = True) -> list[dict[str, Any]]:
    """The k best finished evaluations with their individuals, best first by `ranking`.

    `distinct`: one row per genome (its best evaluation; cache hits of the same genome are repeats).
    Every row carries `copies`, the number of finished evaluations of its genome."""
    narrow = _ranked_narrow(connection, run_id, ranking)
    copies: dict[str, int] = {}
    for row in narrow:
        copies[row["genome_hash"]] = copies.get(row["genome_hash"], 0) + 1
    if distinct:
        firsts: dict[str, dict[str, Any]] = {}
        for row in narrow:
            firsts.setdefault(row["genome_hash"], row)
        narrow = list(firsts.values())
    chosen = [row["evaluation_id"] for row in narrow[offset:offset + k]]
    details = _ranked_details(connection, chosen)
    rows = [details[ident] for ident in chosen]
    for row in rows:
        row["copies"] = copies[row["genome_hash"]]
    return rows


def objective_rows(connection: Connection, run_id: str, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Every done evaluation's id, individual id and the given metric columns (narrow: no genomes)."""
    statement = (sa.select(E.c.id.label("evaluation_id"), E.c.individual_id, E.c.genome_hash,
                           *[E.c[name] for name in columns])
                 .where(E.c.run_id == run_id, E.c.status == "done",
                        sa.or_(E.c.extra_json.is_(None),  # not ranked (Ranking.key)
                               E.c.extra_json.not_like(f'%"{STOPPED}"%')))
                 .order_by(E.c.id))
    return _rows(connection, statement)


def evaluation_details(connection: Connection, evaluation_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Genome, island and generation of a few evaluations (e.g. the Pareto front)."""
    found: dict[int, dict[str, Any]] = {}
    ids = list(dict.fromkeys(evaluation_ids))
    for start in range(0, len(ids), 500):
        statement = (sa.select(E.c.id, E.c.genome, I.c.island, I.c.generation)
                     .select_from(E.outerjoin(I, E.c.individual_id == I.c.id))
                     .where(E.c.id.in_(ids[start:start + 500])))
        for row in _rows(connection, statement):
            found[row["id"]] = row
    return found


# ------------------------------------------------------------------------------------ generations


def generations(connection: Connection, run_id: str) -> list[dict[str, Any]]:
    """Per generation (all islands): count and max/mean/mean-of-squares of each accuracy."""
    aggregates: list[sa.ColumnElement[Any]] = [I.c.generation, sa.func.count().label("evaluations")]
    for name in ACCURACIES:
        column = E.c[name]
        aggregates += [sa.func.max(column).label(f"{name}_max"), sa.func.avg(column).label(f"{name}_mean"),
                       sa.func.avg(column * column).label(f"{name}_sq"), sa.func.count(column).label(f"{name}_n")]
    statement = (sa.select(*aggregates).select_from(E.join(I, E.c.individual_id == I.c.id))
                 .where(E.c.run_id == run_id, E.c.status == "done").group_by(I.c.generation).order_by(I.c.generation))
    return _rows(connection, statement)


# ---------------------------------------------------------------------------------------- workers


def workers(connection: Connection, run_id: str) -> list[dict[str, Any]]:
    """Per worker that finished an evaluation of this run: counts, time span, training seconds."""
    per_worker = (
        sa.select(E.c.worker_id,
                  sa.func.sum(sa.case((E.c.status == "done", 1), else_=0)).label("done"),
                  sa.func.sum(sa.case((E.c.status == "failed", 1), else_=0)).label("failed"),
                  sa.func.sum(E.c.train_seconds).label("train_seconds"),
                  sa.func.min(E.c.started_at).label("first_started_at"),
                  sa.func.max(E.c.finished_at).label("last_finished_at"))
        .where(E.c.run_id == run_id, E.c.status.in_(("done", "failed")), E.c.worker_id.is_not(None))
        .group_by(E.c.worker_id)
        .subquery()
    )
    statement = (
        sa.select(per_worker, W.c.host, W.c.pid, W.c.device, W.c.started_at, W.c.last_seen_at)
        .select_from(per_worker.outerjoin(W, W.c.id == per_worker.c.worker_id))
        .order_by(per_worker.c.worker_id)
    )
    return _rows(connection, statement)


def trace(connection: Connection, run_id: str) -> list[dict[str, Any]]:
    statement = (sa.select(E.c.worker_id, E.c.started_at, E.c.finished_at, E.c.status, E.c.val_accuracy)
                 .where(E.c.run_id == run_id, E.c.status.in_(("done", "failed")), E.c.started_at.is_not(None),
                        E.c.finished_at.is_not(None)).order_by(E.c.started_at))
    return _rows(connection, statement)


def progress(connection: Connection, run_id: str, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Finished evaluations in completion order (the driver's fold order) with the given metrics."""
    statement = (sa.select(E.c.seq, E.c.status, E.c.worker_id, *[E.c[name] for name in columns])
                 .where(E.c.run_id == run_id, E.c.status.in_(("done", "failed")))
                 .order_by(E.c.seq.is_(None), E.c.seq, E.c.finished_at, E.c.id))
    return _rows(connection, statement)


def population_rows(connection: Connection, run_id: str) -> list[dict[str, Any]]:
    """Every individual's island, birth and replaced generation, operator, and its evaluation's
    status, validation accuracy and loss: the populations per generation, rebuilt for plots."""
    statement = (sa.select(I.c.id, I.c.island, I.c.generation, I.c.replaced_generation, I.c.alive, I.c.operator,
                           E.c.status, E.c.val_accuracy, E.c.val_loss)
                 .select_from(I.outerjoin(E, E.c.individual_id == I.c.id))
                 .where(I.c.run_id == run_id).order_by(I.c.id))
    return _rows(connection, statement)


# -------------------------------------------------------------------------------------- migrations


def migrations(connection: Connection, run_id: str, primary: str) -> list[dict[str, Any]]:
    migrant = (
        sa.select(MIG.c.generation, MIG.c.from_island, MIG.c.to_island, MIG.c.individual_id, I.c.genome,
                  E.c.val_accuracy, E.c.val_loss)
        .select_from(MIG.join(I, MIG.c.individual_id == I.c.id).outerjoin(E, E.c.individual_id == I.c.id))
        .where(MIG.c.run_id == run_id).order_by(MIG.c.generation, MIG.c.id)
    )
    rows = _rows(connection, migrant)
    # The copy on the destination island: an individual there made by migration whose parent is the migrant.
    copies = _rows(connection, sa.select(I.c.id, I.c.island, I.c.generation, I.c.parents_json)
                   .where(I.c.run_id == run_id, I.c.operator == "migration"))
    copy_of: dict[tuple[int, int, int], int] = {}
    for copy in copies:  # the copy is born on the destination in the migration's generation
        for parent in json.loads(copy["parents_json"] or "[]")[:1]:
            copy_of.setdefault((parent, copy["island"], copy["generation"]), copy["id"])
    for row in rows:
        row["new_individual_id"] = copy_of.get((row["individual_id"], row["to_island"], row["generation"]))
        row["fitness"] = fitness_of(primary, row)
    return rows


# ------------------------------------------------------------------------------------------ export


def individual(connection: Connection, run_id: str, individual_id: int) -> dict[str, Any] | None:
    statement = (
        sa.select(I.c.id.label("individual_id"), I.c.genome, *_individual_columns(),
                  E.c.id.label("evaluation_id"), E.c.status, E.c.seq, E.c.worker_id, E.c.started_at, E.c.finished_at,
                  E.c.extra_json, E.c.task_json, E.c.error_kind, E.c.error_message,
                  *[E.c[name] for name in METRIC_COLUMNS])
        .select_from(I.outerjoin(E, E.c.individual_id == I.c.id))
        .where(I.c.run_id == run_id, I.c.id == individual_id)
    )
    rows = _rows(connection, statement)
    return rows[0] if rows else None


def ancestors(connection: Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Individuals (with their validation accuracy) by id, for a lineage."""
    found: dict[int, dict[str, Any]] = {}
    ids = list(dict.fromkeys(ids))
    for start in range(0, len(ids), 500):  # stay under every backend's bound-parameter limit
        chunk = ids[start:start + 500]
        statement = (sa.select(I.c.id, I.c.island, I.c.generation, I.c.operator, I.c.parents_json, I.c.genome,
                               E.c.id.label("evaluation_id"), E.c.val_accuracy, E.c.test_accuracy, E.c.params)
                     .select_from(I.outerjoin(E, E.c.individual_id == I.c.id)).where(I.c.id.in_(chunk)))
        for row in _rows(connection, statement):
            found[row["id"]] = row
    return found


def all_rows(connection: Connection, run_id: str) -> list[dict[str, Any]]:
    """Every individual with its evaluation (if any), in id order, for `nas export --all`."""
    statement = (
        sa.select(I.c.id.label("individual_id"), I.c.island, I.c.generation, I.c.slot, I.c.genome, I.c.genome_hash,
                  I.c.parents_json, I.c.operator, I.c.alive, E.c.id.label("evaluation_id"), E.c.status,
                  E.c.attempt, E.c.worker_id, E.c.error_kind, E.c.error_message,
                  *[E.c[name] for name in METRIC_COLUMNS], E.c.started_at, E.c.finished_at)
        .select_from(I.outerjoin(E, E.c.individual_id == I.c.id))
        .where(I.c.run_id == run_id).order_by(I.c.id)
    )
    return _rows(connection, statement)


def last_event(connection: Connection, run_id: str, kind: str) -> dict[str, Any] | None:
    """The payload of the run's newest event of this kind (None: there is none)."""
    payload = connection.execute(sa.select(EV.c.payload_json)
                                 .where(EV.c.run_id == run_id, EV.c.kind == kind)
                                 .order_by(EV.c.seq.desc()).limit(1)).scalar_one_or_none()
    return json.loads(payload) if payload is not None else None


def run_rows(connection: Connection) -> list[dict[str, Any]]:
    statement = sa.select(R.c.id, R.c.name, R.c.strategy, R.c.preset, R.c.seed, R.c.status, R.c.config_json,
                          R.c.created_at, R.c.updated_at, R.c.finished_at).order_by(R.c.number.desc())
    return _rows(connection, statement)


# ------------------------------------------------------------------------------------------- access


class ReportQueries:
    """The queries above bound to one store; each call is its own read transaction (never a write)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _read(self, query: Callable[..., T], *args: Any) -> T:
        name = query.__name__.replace("_", " ")
        return self.store.db.read(lambda connection: query(connection, *args), what=f"report: {name}")

    def run(self, name: str) -> RunInfo:
        """The run's RunInfo; `latest` is the newest run; RunNotFoundError (with recent ids) otherwise.
        A run whose stored configuration is invalid is a one-line ConfigError naming it."""
        from nascli.config import validate_stored

        run = self.store.get_run(name)
        validate_stored(run.id, run.config)
        return run

    def run_rows(self) -> list[dict[str, Any]]:
        return self._read(run_rows)

    def status_counts(self, run_id: str | None = None) -> dict[str, dict[str, int]]:
        return self._read(status_counts, run_id)

    def best_per_run(self, rankings: dict[str, Ranking]) -> dict[str, dict[str, Any]]:
        return self._read(best_per_run, rankings) if rankings else {}

    def activity(self, run_id: str) -> dict[str, Any]:
        return self._read(activity, run_id)

    def failure_kinds(self, run_id: str) -> dict[str, int]:
        return self._read(failure_kinds, run_id)

    def individual_totals(self, run_id: str) -> dict[str, Any]:
        return self._read(individual_totals, run_id)

    def island_totals(self, run_id: str) -> list[dict[str, Any]]:
        return self._read(island_totals, run_id)

    def island_generations(self, run_id: str) -> dict[int, int]:
        return self._read(island_generations, run_id)

    def best_per_island(self, run_id: str, ranking: Ranking) -> dict[int, dict[str, Any]]:
        return self._read(best_per_island, run_id, ranking)

    def lineage_links(self, run_id: str) -> list[tuple[int, int | None, int, bool]]:
        return self._read(lineage_links, run_id)

    def ranked(self, run_id: str, ranking: Ranking, k: int, offset: int = 0,
               distinct: bool = True) -> list[dict[str, Any]]:
        return self._read(ranked, run_id, ranking, k, offset, distinct)

    def objective_rows(self, run_id: str, columns: Sequence[str]) -> list[dict[str, Any]]:
        return self._read(objective_rows, run_id, columns)

    def evaluation_details(self, evaluation_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        return self._read(evaluation_details, evaluation_ids) if evaluation_ids else {}

    def generations(self, run_id: str) -> list[dict[str, Any]]:
        return self._read(generations, run_id)

    def workers(self, run_id: str) -> list[dict[str, Any]]:
        return self._read(workers, run_id)

    def trace(self, run_id: str) -> list[dict[str, Any]]:
        return self._read(trace, run_id)

    def progress(self, run_id: str, columns: Sequence[str]) -> list[dict[str, Any]]:
        return self._read(progress, run_id, columns)

    def population_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._read(population_rows, run_id)

    def migrations(self, run_id: str, primary: str) -> list[dict[str, Any]]:
        return self._read(migrations, run_id, primary)

    def individual(self, run_id: str, individual_id: int) -> dict[str, Any] | None:
        return self._read(individual, run_id, individual_id)

    def ancestors(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        return self._read(ancestors, ids)

    def all_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._read(all_rows, run_id)

    def last_event(self, run_id: str, kind: str) -> dict[str, Any] | None:
        return self._read(last_event, run_id, kind)


@contextmanager
def open_read_only(url: str) -> Iterator[ReportQueries]:
    """Open the store for reading only (a missing SQLite file is an error, never created)."""
    from nascli.store import open_store

    store = open_store(url, read_only=True)  # a missing SQLite file is an error; nothing is ever written
    try:
        yield ReportQueries(store)
    finally:
        store.close()


