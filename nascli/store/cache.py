"""The genotype cache: a genome already evaluated under the same training config is not trained again.

A hit is copied into the run that reuses it as a finished evaluation with the run's next
completion seq, so the driver's fold sees it like any other result (and deleting the source run
leaves the copy whole).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from nascli.errors import StoreError
from nascli.store import convert
from nascli.store.database import Database, Statement, chunks, insert_rows, list_param, param
from nascli.store.models import RESULT_COLUMNS
from nascli.store.queue import QueueRepository, task_json
from nascli.store.records import FinishedEvaluation
from nascli.store.tables import E, I, R
from nascli.task import Task

# failed results worth caching: they are properties of the genome, not of the host
CACHEABLE_FAILURES = ("invalid_genome", "too_large")
FINISHED_COLUMNS = ("run_id", "individual_id", "status", "priority", "attempt", "task_json", "genome", "genome_hash",
                    "config_hash", "seq", "created_at", "started_at", "finished_at", "max_attempts",
                    "max_lease_expiries", *RESULT_COLUMNS, "error_kind", "error_message", "extra_json")


@dataclass(frozen=True)
class CacheSql:
    cached_any_run: Statement
    cached_one_run: Statement
    evaluations_of_individuals: Statement
    individual_genomes: Statement
    task_jsons: Statement
    take_completion_seqs: Statement
    insert_finished: Statement

    def every_statement(self) -> tuple[Statement, ...]:
        return (self.cached_any_run, self.cached_one_run, self.evaluations_of_individuals, self.individual_genomes,
                self.task_jsons, self.take_completion_seqs, self.insert_finished)


def build() -> CacheSql:
    hit = sa.or_(E.c.status == "done", sa.and_(E.c.status == "failed", E.c.error_kind.in_(CACHEABLE_FAILURES)))
    cached = sa.select(E).where(E.c.genome_hash.in_(list_param("hashes")), E.c.config_hash == param("config_hash"), hit)
    order = (E.c.genome_hash, (E.c.status == "done").desc(), E.c.id)  # per genome: a done result, then the oldest
    return CacheSql(
        cached_any_run=Statement("cached_any_run", cached.order_by(*order),
                                 doc="Cache hits of any run: finished evaluations of these genomes under this config."),
        cached_one_run=Statement("cached_one_run", cached.where(E.c.run_id == param("run_id")).order_by(*order),
                                 doc="Cache hits within one run."),
        evaluations_of_individuals=Statement(
            "evaluations_of_individuals", sa.select(E).where(E.c.individual_id.in_(list_param("individual_ids"))),
            doc="The evaluations individuals already have (a copy is idempotent per individual)."),
        individual_genomes=Statement(
            "individual_genomes", sa.select(I.c.id, I.c.genome, I.c.genome_hash).where(
                I.c.id.in_(list_param("individual_ids")), I.c.run_id == param("run_id")),
            doc="The genomes of the run's individuals that receive cached results."),
        task_jsons=Statement(
            "task_jsons", sa.select(E.c.id, E.c.task_json).where(E.c.id.in_(list_param("evaluation_ids"))),
            doc="The task descriptions of the cache hits, copied onto the new rows."),
        take_completion_seqs=Statement(
            "take_completion_seqs", sa.update(R).where(R.c.id == param("run_id"))
            .values(completion_counter=R.c.completion_counter + param("count", sa.Integer))
            .returning(R.c.completion_counter),
            doc="Take `count` completion seqs of the run at once (locks the run row, as one completion does)."),
        insert_finished=Statement(
            "insert_finished", insert_rows(E, FINISHED_COLUMNS).returning(*E.c, sort_by_parameter_order=True),
            doc="Record copies of cached results as finished evaluations of the run."),
    )


class GenotypeCache:
    def __init__(self, db: Database, queue: QueueRepository) -> None:
        self.db = db
        self.queue = queue  # its limits are the copies' retry limits

    @functools.cached_property
    def sql(self) -> CacheSql:
        return build()

    def cached_result(self, run_id: str | None, genome_hash: str, config_hash: str) -> FinishedEvaluation | None:
        """A finished evaluation of the same genome under the same training config (`run_id=None`:
        from any run), else None. Done results, and failures that belong to the genome
        (invalid_genome, too_large); never a crash or OOM."""
        return self.cached_results(run_id, [genome_hash], config_hash).get(genome_hash)

    def cached_results(self, run_id: str | None, genome_hashes: Sequence[str],
                       config_hash: str) -> dict[str, FinishedEvaluation]:
        """cached_result for several genomes in one query: {genome_hash: evaluation} for the hits
        (a done result before a cacheable failure, then the oldest)."""
        wanted = sorted(set(genome_hashes))
        if not wanted:
            return {}

        def body(conn: Connection) -> dict[str, FinishedEvaluation]:
            hits: dict[str, FinishedEvaluation] = {}
            for chunk in chunks(wanted):
                if run_id is None:
                    rows = self.db.execute(conn, self.sql.cached_any_run, hashes=chunk, config_hash=config_hash)
                else:
                    rows = self.db.execute(conn, self.sql.cached_one_run, hashes=chunk, config_hash=config_hash,
                                           run_id=run_id)
                for row in rows:
                    if row.genome_hash not in hits:
                        hits[row.genome_hash] = convert.finished_evaluation(row)
            return hits

        return self.db.read(body, what="cache lookup")

    def record_cached_result(self, run_id: str, individual_id: int, source: FinishedEvaluation) -> FinishedEvaluation:
        """Record `source`'s result (from cached_result) as this individual's finished evaluation,
        with the run's next sequence number, so the fold sees it like any other. Idempotent per
        individual (returns the existing evaluation if it has one)."""
        return self.record_cached_results(run_id, [(individual_id, source)])[0]

    def record_cached_results(self, run_id: str,
                              copies: Sequence[tuple[int, FinishedEvaluation]]) -> list[FinishedEvaluation]:
        """record_cached_result for several (individual id, source) pairs in one transaction, with
        consecutive sequence numbers in the given order; a handful of statements whatever their number."""
        pairs = list(copies)
        if not pairs:
            return []

        def body(conn: Connection) -> list[FinishedEvaluation]:
            individual_ids = list(dict.fromkeys(i for i, _ in pairs))
            existing = {row.individual_id: row for chunk in chunks(individual_ids)
                        for row in self.db.execute(conn, self.sql.evaluations_of_individuals, individual_ids=chunk)}
            for row in existing.values():
                if row.seq is None:
                    raise StoreError(f"individual {row.individual_id} already has evaluation {row.id} ({row.status})",
                                     hint="look the cache up before queueing")
            todo = list({i: (i, source) for i, source in reversed(pairs) if i not in existing}.values())[::-1]
            finished = {i: convert.finished_evaluation(row) for i, row in existing.items()}
            if todo:
                finished.update(self._copy_results(conn, run_id, todo))
            return [finished[i] for i, _ in pairs]

        return self.db.write(body, what="record cached results")

    def _copy_results(self, conn: Connection, run_id: str,
                      todo: list[tuple[int, FinishedEvaluation]]) -> dict[int, FinishedEvaluation]:
        db, sql, limits = self.db, self.sql, self.queue.limits
        wanted = [i for i, _ in todo]
        individuals = {row.id: row for chunk in chunks(wanted) for row in db.execute(
            conn, sql.individual_genomes, individual_ids=chunk, run_id=run_id)}
        missing = [i for i in wanted if i not in individuals]
        if missing:
            raise StoreError(f"no individual {missing[0]} in run {run_id}")
        source_ids = list({source.evaluation_id for _, source in todo})
        task_jsons = {row.id: row.task_json for chunk in chunks(source_ids) for row in db.execute(
            conn, sql.task_jsons, evaluation_ids=chunk)}
        missing = [e for e in source_ids if e not in task_jsons]
        if missing:
            raise StoreError(f"no evaluation {missing[0]} to copy")
        now = db.now_value(conn)
        # the run's counter moves by len(todo) at once (locking the run row, as one completion would)
        last = db.execute(conn, sql.take_completion_seqs, run_id=run_id, count=len(todo)).scalar_one()
        rows: list[dict[str, Any]] = []
        for seq, (individual_id, source) in enumerate(todo, start=last - len(todo) + 1):
            values = convert.result_values(source.result)
            extra = json.loads(values["extra_json"])
            extra["cached_from"] = source.evaluation_id
            values["extra_json"] = json.dumps(extra, sort_keys=True)
            individual = individuals[individual_id]
            rows.append(dict(
                run_id=run_id, individual_id=individual_id, status=source.status, priority=0, attempt=0,
                task_json=task_json(Task.from_json(task_jsons[source.evaluation_id]), run_id),
                genome=individual.genome, genome_hash=individual.genome_hash, config_hash=source.config_hash, seq=seq,
                created_at=now, started_at=now, finished_at=now, max_attempts=limits.max_attempts,
                max_lease_expiries=limits.max_lease_expiries, **values))
        inserted = db.execute_many(conn, sql.insert_finished, rows).all()
        return {row.individual_id: convert.finished_evaluation(row) for row in inserted}
