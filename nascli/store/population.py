"""The population: individuals (children recorded by the driver), island generations, migrations."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from nascli.store import convert
from nascli.store.database import Database, Statement, insert_rows, list_param, param
from nascli.store.records import IndividualInfo, IslandInfo, Migration, NewIndividual
from nascli.store.runs import RunRepository
from nascli.store.tables import ISL, MIG, I

INDIVIDUAL_COLUMNS = ("run_id", "island", "generation", "slot", "genome", "genome_hash", "parents_json", "operator",
                      "age", "alive", "created_at")
ISLAND_COLUMNS = ("run_id", "island", "generation", "updated_at")


@dataclass(frozen=True)
class PopulationSql:
    slot_ids: Statement
    insert_individuals: Statement
    mark_replaced: Statement
    upsert_island_generation: Statement

    def every_statement(self) -> tuple[Statement, ...]:
        return self.slot_ids, self.insert_individuals, self.mark_replaced, self.upsert_island_generation


def build(backend: str) -> PopulationSql:
    # one upsert per island (its primary key is (run_id, island)); both dialects spell it alike
    upsert = (sqlite_insert if backend == "sqlite" else postgresql_insert)(ISL).values(
        {name: param(name, ISL.c[name].type) for name in ISLAND_COLUMNS})
    return PopulationSql(
        slot_ids=Statement(
            "slot_ids", sa.select(I.c.id, I.c.island, I.c.generation, I.c.slot).where(
                I.c.run_id == param("run_id"), I.c.generation.in_(list_param("generations"))),
            doc="The individuals already recorded in these generations (add_individuals is idempotent per slot)."),
        insert_individuals=Statement(
            "insert_individuals", insert_rows(I, INDIVIDUAL_COLUMNS).returning(I.c.id, sort_by_parameter_order=True),
            doc="Record children; their ids in the rows' order."),
        mark_replaced=Statement(
            "mark_replaced", sa.update(I).where(I.c.id.in_(list_param("individual_ids")), I.c.alive.is_(True))
            .values(alive=False, replaced_generation=param("generation")),
            doc="Individuals replaced in a generation are no longer alive."),
        upsert_island_generation=Statement(
            "upsert_island_generation", upsert.on_conflict_do_update(
                index_elements=[ISL.c.run_id, ISL.c.island],
                set_={"generation": upsert.excluded.generation, "updated_at": upsert.excluded.updated_at}),
            doc="Record how far an island has got."),
    )


class PopulationRepository:
    def __init__(self, db: Database, runs: RunRepository) -> None:
        self.db = db
        self.runs = runs

    @functools.cached_property
    def sql(self) -> PopulationSql:
        return build(self.db.backend)

    def add_individuals(self, run_id: str, individuals: Sequence[NewIndividual]) -> list[int]:
        """Record children; returns their ids in order. Idempotent on (run_id, island, generation,
        slot): a slot already recorded keeps its row and returns its id."""
        children = list(individuals)
        if not children:
            return []

        def body(conn: Connection) -> list[int]:
            self.runs.require(conn, run_id)
            generations = sorted({item.generation for item in children})
            existing = {(row.island, row.generation, row.slot): row.id for row in self.db.execute(
                conn, self.sql.slot_ids, run_id=run_id, generations=generations)}
            now = self.db.now_value(conn)
            rows = [{
                "run_id": run_id, "island": item.island, "generation": item.generation, "slot": item.slot,
                "genome": item.genome, "genome_hash": item.genome_hash, "parents_json": json.dumps(list(item.parents)),
                "operator": item.operator, "age": item.age, "alive": True, "created_at": now,
            } for item in children if (item.island, item.generation, item.slot) not in existing]
            unique_rows = list({(r["island"], r["generation"], r["slot"]): r for r in rows}.values())
            if unique_rows:
                inserted = self.db.execute_many(conn, self.sql.insert_individuals, unique_rows)
                existing.update(zip(((r["island"], r["generation"], r["slot"]) for r in unique_rows),
                                    (row.id for row in inserted)))
            return [existing[(item.island, item.generation, item.slot)] for item in children]

        return self.db.write(body, what="add individuals")

    def individuals(self, run_id: str, *, alive: bool | None = None, island: int | None = None) -> list[IndividualInfo]:
        """The run's individuals in id order, optionally only alive/replaced ones or one island."""

        def body(conn: Connection) -> list[IndividualInfo]:
            query = sa.select(I).where(I.c.run_id == run_id)
            if alive is not None:
                query = query.where(I.c.alive == alive)
            if island is not None:
                query = query.where(I.c.island == island)
            return [convert.individual_info(row) for row in conn.execute(query.order_by(I.c.id))]

        return self.db.read(body, what="read individuals")

    def mark_replaced(self, individual_ids: Sequence[int], generation: int) -> int:
        """Mark individuals as no longer alive (replaced in `generation`). Returns rows changed."""
        ids = list(individual_ids)
        if not ids:
            return 0
        return self.db.write(lambda conn: self.db.execute(
            conn, self.sql.mark_replaced, individual_ids=ids, generation=generation).rowcount, what="mark replaced")

    def set_island_generations(self, run_id: str, generations: Mapping[int, int]) -> None:
        """Record how far islands have got (for migration barriers and progress), in one transaction."""
        if not generations:
            return

        def body(conn: Connection) -> None:
            now = self.db.now_value(conn)
            self.db.execute_many(conn, self.sql.upsert_island_generation, [
                {"run_id": run_id, "island": island, "generation": generation, "updated_at": now}
                for island, generation in generations.items()])

        self.db.write(body, what="set island generations")

    def islands(self, run_id: str) -> list[IslandInfo]:
        return self.db.read(lambda conn: [
            IslandInfo(run_id=row.run_id, island=row.island, generation=row.generation, updated_at=row.updated_at)
            for row in conn.execute(sa.select(ISL).where(ISL.c.run_id == run_id).order_by(ISL.c.island))],
            what="read islands")

    def record_migration(self, run_id: str, generation: int, from_island: int, to_island: int,
                         individual_id: int) -> None:
        def body(conn: Connection) -> None:
            conn.execute(sa.insert(MIG).values(run_id=run_id, generation=generation, from_island=from_island,
                                               to_island=to_island, individual_id=individual_id,
                                               created_at=self.db.now_value(conn)))

        self.db.write(body, what="record migration")

    def migrations(self, run_id: str) -> list[Migration]:
        return self.db.read(lambda conn: [
            Migration(run_id=row.run_id, generation=row.generation, from_island=row.from_island,
                      to_island=row.to_island, individual_id=row.individual_id, created_at=row.created_at)
            for row in conn.execute(sa.select(MIG).where(MIG.c.run_id == run_id).order_by(MIG.c.id))],
            what="read migrations")
