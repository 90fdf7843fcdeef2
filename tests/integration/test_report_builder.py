"""Synthetic runs for the report and export tests, built through the real store API, and the
database fixtures (SQLite file; PostgreSQL: a fresh database per test module).

`build_run(store, ...)` records islands x generations of individuals the way the driver does
(initial population, one child per island per generation, replaced individuals, migrations with
copies on the destination island), queues an evaluation for each, and lets two workers claim and
complete them with deterministic metrics (plus typed failures), so every report section has data.
"""

from __future__ import annotations

import os
import random
import uuid
from dataclasses import dataclass, field

import pytest

from nascli.config import resolve, task_for, training_config_hash
from nascli.ga.genome import genome_hash, parse_genome
from nascli.store import EvaluationRequest, NewIndividual, open_store
from nascli.task import Result

# Valid on digits (8x8x1, 10 classes); small so export tests build them quickly.
GENOMES = (
    "In_8_8:D_10",
    "In_8_8:C_3-3-1-1-8:D_10",
    "In_8_8:C_3-3-1-1-8:P_2-2-2-2-0:D_10",
    "In_8_8:R_3-3-1-1-8:D_1-1-1-1-32:D_10",
    "In_8_8:C_3-3-1-1-16:C_3-3-2-2-16:D_10",
    "In_8_8:C_2-2-1-1-8:R_3-3-2-2-8:D_10",
    "In_8_8:I.1-1-0_3-3-1-1-4.2-1-2_3-3-1-1-4.3-0-0_1-1-1-1-0.4-1-0_3-3-1-1-4:D_10",
    "In_8_8:C_3-3-1-1-4:I.1-1-1_5-5-1-1-4.2-0-0_1-1-1-1-0.3-1-3_3-3-1-1-2.4-0-0_1-1-1-1-0:D_1-1-1-1-16:D_10",
)
OPERATORS = ("insert", "switch", "delete", "adjust", "crossover")
WORKERS = ("host-a:101:w1", "host-b:202:w2")


@dataclass
class BuiltRun:
    run_id: str
    individuals: dict[int, dict] = field(default_factory=dict)  # id -> what was recorded
    metrics: dict[int, Result] = field(default_factory=dict)  # individual id -> its result
    migrations: list[tuple[int, int, int, int]] = field(default_factory=list)  # generation, from, to, migrant
    alive: dict[int, list[int]] = field(default_factory=dict)  # island -> its population at the end


def metrics_for(rng: random.Random, genome: str) -> Result:
    from nascli.ga.cost import analyse

    analysis = analyse(parse_genome(genome))
    val = round(0.5 + 0.45 * rng.random(), 6)
    return Result(
        status="done", val_accuracy=val, val_loss=round(1.5 - val, 6),
        test_accuracy=round(val - 0.02 * rng.random(), 6),
        test_loss=round(1.6 - val, 6), train_accuracy=round(min(1.0, val + 0.03), 6), train_loss=0.2,
        params=analysis.params, flops=analysis.flops, epochs_run=3, best_epoch=2,
        train_seconds=round(0.5 + rng.random(), 3), latency_ms=round(0.1 + rng.random(), 3),
    )


def build_run(store, *, preset: str = "digits-quick", islands: int = 3, population: int = 4, generations: int = 5,
              seed: int = 0, failures: bool = True, overrides: tuple[str, ...] = (), status: str = "finished",
              name: str = "synthetic") -> BuiltRun:
    cfg = resolve(preset=preset, overrides=[f"ga.islands={islands}", f"ga.population={population}",
                                             f"ga.generations={generations}", *overrides], project_file=None, env={})
    config = cfg.model_dump(mode="json")
    run = store.create_run(name, cfg.run.strategy, preset, seed, config)
    store.set_run_status(run.id, "running")
    for worker in WORKERS:
        host, pid, _ = worker.split(":")
        store.register_worker(worker, host=host, pid=int(pid), device="cpu")
    rng = random.Random(seed)
    built = BuiltRun(run.id)
    config_hash = training_config_hash(cfg)
    alive: dict[int, list[int]] = {island: [] for island in range(islands)}

    def record(island: int, generation: int, slot: int, genome: str, parents: tuple[int, ...], operator: str,
               fail_kind: str | None = None) -> int:
        (ident,) = store.add_individuals(run.id, [NewIndividual(
            island=island, generation=generation, slot=slot, genome=genome,
            genome_hash=genome_hash(parse_genome(genome)), parents=parents, operator=operator)])
        store.enqueue(run.id, [EvaluationRequest(ident, task_for(cfg, genome, seed), config_hash=config_hash)])
        claim = store.claim(WORKERS[ident % 2], run_id=run.id, lease_seconds=60)
        assert claim is not None
        if fail_kind:
            result = Result.failure(fail_kind, f"synthetic {fail_kind}")
        else:
            result = metrics_for(rng, genome)
        assert store.complete(claim.evaluation_id, claim.attempt, result)
        while store.evaluation(claim.evaluation_id).status == "pending":  # oom/crash are retried: fail every try
            claim = store.claim(WORKERS[ident % 2], run_id=run.id, lease_seconds=60)
            assert store.complete(claim.evaluation_id, claim.attempt, result)
        built.individuals[ident] = {"island": island, "generation": generation, "genome": genome,
                                    "parents": parents, "operator": operator}
        built.metrics[ident] = result
        return ident

    for island in range(islands):
        for slot in range(population):
            genome = GENOMES[(island + slot) % len(GENOMES)]
            alive[island].append(record(island, 0, slot, genome, (), "init"))
        store.set_island_generation(run.id, island, 0)
    failure_kinds = iter(("oom", "crash", "oom", "nan_loss")) if failures else iter(())
    for generation in range(1, generations + 1):
        for island in range(islands):
            parent = rng.choice(alive[island])
            operator = rng.choice(OPERATORS)
            parents = (parent, rng.choice(alive[island])) if operator == "crossover" else (parent,)
            genome = rng.choice(GENOMES)
            kind = next(failure_kinds, None) if generation % 2 == 0 and island == 0 else None
            child = record(island, generation, 0, genome, parents, operator, kind)
            if kind is None:
                worst = min(alive[island], key=lambda i: (built.metrics[i].val_accuracy or 0.0))
                if built.metrics[child].val_accuracy > (built.metrics[worst].val_accuracy or 0.0):
                    store.mark_replaced([worst], generation)
                    alive[island].remove(worst)
                    alive[island].append(child)
                else:
                    store.mark_replaced([child], generation)
            else:
                store.mark_replaced([child], generation)
            store.set_island_generation(run.id, island, generation)
        if islands > 1 and generation % 2 == 0:  # migrate the best of each island to the next
            for island in range(islands):
                migrant = max(alive[island], key=lambda i: built.metrics[i].val_accuracy or 0.0)
                destination = (island + 1) % islands
                store.record_migration(run.id, generation, island, destination, migrant)
                built.migrations.append((generation, island, destination, migrant))
                copy = record(destination, generation, 1, built.individuals[migrant]["genome"], (migrant,),
                              "migration")
                worst = min(alive[destination], key=lambda i: built.metrics[i].val_accuracy or 0.0)
                store.mark_replaced([worst], generation)
                alive[destination].remove(worst)
                alive[destination].append(copy)
    if status != "running":
        store.set_run_status(run.id, status)
    built.alive = alive
    return built


# ------------------------------------------------------------------------------------ databases


def sqlite_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    open_store(url, create=True).close()
    return url


def postgres_url() -> str | None:
    return os.environ.get("NASCLI_TEST_PG_URL")


@pytest.fixture(scope="module")
def postgres_database():
    """A fresh PostgreSQL database for this module (dropped afterwards)."""
    base = postgres_url()
    if not base:
        if os.environ.get("NASCLI_REQUIRE_PG") == "1":
            pytest.fail("NASCLI_REQUIRE_PG=1 but NASCLI_TEST_PG_URL is not set")
        pytest.skip("PostgreSQL not configured (set NASCLI_TEST_PG_URL)")
    import sqlalchemy as sa

    name = f"nascli_report_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    open_store(url, create=True).close()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


MODULE_BACKENDS = [pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)]


def module_database(request, tmp_path_factory) -> str:
    """For a module fixture parametrized by MODULE_BACKENDS: a SQLite file, or the module's PostgreSQL database."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path_factory.mktemp("db"))
    return request.getfixturevalue("postgres_database")


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    return request.getfixturevalue("postgres_database")


def test_builder_records_what_it_says(tmp_path):
    url = sqlite_url(tmp_path)
    with open_store(url) as store:
        built = build_run(store, islands=2, population=3, generations=4)
        counts = store.queue_counts(built.run_id)
        assert counts["done"] + counts["failed"] == len(built.individuals)
        assert counts["failed"] == 2  # generations 2 and 4 on island 0
        assert len(store.migrations(built.run_id)) == len(built.migrations) == 4
        assert store.get_run("latest").id == built.run_id
