"""The store mirrors the strategy's populations: after every driver step, resume included, every
individual alive in the strategy is alive in the store (a migrant counted on the island it lives
on, through its own copy row), and every other individual alive in the store is one whose outcome
the strategy has not applied yet. Real SQLite store, in-process driver, synthetic evaluations
finished in a random order and amount, the driver dropped and replayed at random points."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from nascli.config import resolve
from nascli.driver.events import MIGRATION_OPERATOR
from nascli.driver.step import Driver
from nascli.store import open_store
from nascli.train.synthetic import evaluate_synthetic


def store_population(store, run_id: str) -> tuple[Counter, Counter, dict]:
    """(alive (island, key) counts, every (island, key) count, id -> row) of the store's individuals;
    a copy's key is its source's key, followed back to the child it was born as."""
    rows = {row.id: row for row in store.individuals(run_id)}

    def key_of(ident: int) -> tuple[int, int, int]:
        row = rows[ident]
        while row.operator == MIGRATION_OPERATOR and row.parents:
            row = rows[row.parents[0]]
        return row.island, row.generation, row.slot

    alive = Counter((row.island, key_of(row.id)) for row in rows.values() if row.alive)
    return alive, Counter((row.island, key_of(row.id)) for row in rows.values()), rows


def check_mirror(driver: Driver, store, run_id: str) -> None:
    alive, _, rows = store_population(store, run_id)
    living = Counter((island, tuple(key)) for island, _, keys in driver.strategy.living() for key in keys)
    missing = living - alive
    assert not missing, f"alive in the strategy, dead in the store: {sorted(missing)[:3]}"
    pending = {tuple(p.key) for p in driver.strategy.outstanding} | driver.strategy.undecided()
    extra = {where for where in alive - living if where[1] not in pending}
    assert not extra, f"alive in the store, not in the strategy: {sorted(extra)[:3]}"


def finish_some(store, run_id: str, rng: random.Random) -> int:
    """Claim and finish up to a few pending evaluations, as workers would (any order)."""
    finished = 0
    for _ in range(rng.randint(0, 4)):
        claim = store.claim(f"w{rng.randint(0, 2)}", run_id=run_id, lease_seconds=60)
        if claim is None:
            break
        assert store.complete(claim.evaluation_id, claim.attempt, evaluate_synthetic(claim.task))
        finished += 1
    return finished


@pytest.mark.parametrize("seed", [1, pytest.param(2, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow)])
def test_living_individuals_are_alive_in_the_store_after_every_step(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    cfg = resolve(preset="synthetic-quick", project_file=None, env={}, overrides=[
        "task.synthetic_seconds=0", "ga.islands=3", "ga.population=4", "ga.generations=12", "migration.period=3",
        "migration.fraction=0.5", "ga.offspring_per_generation=2", f"run.seed={seed}"])
    store = open_store(f"sqlite:///{tmp_path / 'nas.db'}", create=True)
    try:
        run = store.create_run("", cfg.run.strategy, "synthetic-quick", cfg.run.seed, cfg.model_dump(mode="json"))
        driver = Driver(store, run, cfg)
        driver.acquire()
        resumes = 0
        resume_at = set(rng.sample(range(3, 60), 4))
        for step in range(5000):
            if driver.finished:
                break
            driver.step()
            check_mirror(driver, store, run.id)
            finish_some(store, run.id, rng)
            if step in resume_at:  # the driver dies; another one replays the log and carries on
                driver.release()  # (a dead driver's lease would expire; releasing saves the wait)
                driver = Driver(store, run, cfg)
                driver.acquire()
                driver.replay()
                resumes += 1
                check_mirror(driver, store, run.id)
        assert driver.finished and resumes >= 1
        driver.drive(poll_seconds=0.01)
        check_mirror(driver, store, run.id)
        alive, everyone, _ = store_population(store, run.id)
        living = Counter((island, tuple(key)) for island, _, keys in driver.strategy.living() for key in keys)
        assert alive == living  # at the end exactly the final populations are alive
        assert sum(alive.values()) == cfg.ga.islands * cfg.ga.population
        migrations = store.migrations(run.id)
        assert migrations and all(m.to_island in {i for i, _ in everyone} for m in migrations)
        copies = [row for row in store.individuals(run.id) if row.operator == MIGRATION_OPERATOR]
        assert len(copies) == len(migrations)
        results = {finished.individual_id: finished.result for finished in store.results(run.id)}
        workers = {e.individual_id: e.worker_id for e in store.evaluations(run.id)}
        for copy in copies:  # the migrant's own result, from the cache: nothing trained twice
            assert results[copy.id].val_accuracy == results[copy.parents[0]].val_accuracy
            assert workers[copy.id] is None
    finally:
        store.close()
