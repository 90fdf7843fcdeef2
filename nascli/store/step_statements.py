"""The statements of a driver step, built once per Store.

A driver step runs about fifteen statements (fold the new results, look the children up in the
genotype cache, record them, queue them, mirror the populations). Building a SQLAlchemy statement
costs several times more Python than executing it (coercing every operand, generating its cache
key), and with two islands a step's fixed cost is shared by only two generations, so these are
built once with bind parameters. Lists go through expanding bind parameters (`IN (...)`), so one
statement serves any length. Bind parameters are prefixed `b_`, as in nascli.store.statements.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from nascli.store.models import EvaluationRow, EventRow, IndividualRow, IslandRow, RunRow

E = EvaluationRow.__table__
EV = EventRow.__table__
I = IndividualRow.__table__  # noqa: E741 - the individual table
ISL = IslandRow.__table__
R = RunRow.__table__

# failed results worth caching: they are properties of the genome, not of the host
CACHEABLE_FAILURES = ("invalid_genome", "too_large")


def _run() -> sa.ColumnElement[bool]:
    return R.c.id == sa.bindparam("b_run_id")


class StepStatements:
    def __init__(self, backend: str) -> None:
        run_id = sa.bindparam("b_run_id")
        # ---- results and the genotype cache
        self.results = sa.select(E).where(E.c.run_id == run_id, E.c.seq > sa.bindparam("b_after")).order_by(E.c.seq)
        cache_hit = sa.or_(E.c.status == "done",
                           sa.and_(E.c.status == "failed", E.c.error_kind.in_(CACHEABLE_FAILURES)))
        cached = sa.select(E).where(E.c.genome_hash.in_(sa.bindparam("b_hashes", expanding=True)),
                                    E.c.config_hash == sa.bindparam("b_config_hash"), cache_hit)
        order = (E.c.genome_hash, (E.c.status == "done").desc(), E.c.id)
        self.cached = [cached.order_by(*order), cached.where(E.c.run_id == run_id).order_by(*order)]  # [any run, run]
        # ---- copying cached results into the run
        self.evaluations_of_individuals = sa.select(E).where(
            E.c.individual_id.in_(sa.bindparam("b_individual_ids", expanding=True)))
        self.individual_genomes = sa.select(I.c.id, I.c.genome, I.c.genome_hash).where(
            I.c.id.in_(sa.bindparam("b_individual_ids", expanding=True)), I.c.run_id == run_id)
        self.task_jsons = sa.select(E.c.id, E.c.task_json).where(
            E.c.id.in_(sa.bindparam("b_evaluation_ids", expanding=True)))
        self.take_seqs = (sa.update(R).where(_run())
                          .values(completion_counter=R.c.completion_counter + sa.bindparam("b_count", type_=sa.Integer))
                          .returning(R.c.completion_counter))
        self.insert_finished = sa.insert(E).returning(*E.c, sort_by_parameter_order=True)
        # ---- queueing children
        self.evaluation_ids_of_individuals = sa.select(E.c.individual_id, E.c.id).where(
            E.c.individual_id.in_(sa.bindparam("b_individual_ids", expanding=True)))
        self.individual_hashes = sa.select(I.c.id, I.c.genome_hash, I.c.run_id).where(
            I.c.id.in_(sa.bindparam("b_individual_ids", expanding=True)))
        self.insert_pending = sa.insert(E).returning(E.c.id, sort_by_parameter_order=True)
        # ---- individuals, islands, events
        self.run_exists = sa.select(R.c.id).where(_run())
        self.slot_ids = sa.select(I.c.id, I.c.island, I.c.generation, I.c.slot).where(
            I.c.run_id == run_id, I.c.generation.in_(sa.bindparam("b_generations", expanding=True)))
        self.insert_individuals = sa.insert(I).returning(I.c.id, sort_by_parameter_order=True)
        self.mark_replaced = (sa.update(I).where(I.c.id.in_(sa.bindparam("b_individual_ids", expanding=True)),
                                                 I.c.alive.is_(True))
                              .values(alive=False, replaced_generation=sa.bindparam("b_generation")))
        # one upsert per island (its primary key is (run_id, island)); both dialects spell it alike
        upsert = (sqlite_insert if backend == "sqlite" else postgresql_insert)(ISL)
        self.upsert_island_generation = upsert.on_conflict_do_update(
            index_elements=[ISL.c.run_id, ISL.c.island],
            set_={"generation": upsert.excluded.generation, "updated_at": upsert.excluded.updated_at})
        self.take_event_seq = (sa.update(R).where(_run()).values(event_counter=R.c.event_counter + 1)
                               .returning(R.c.event_counter))
        self.insert_event = sa.insert(EV)
