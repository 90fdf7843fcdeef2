"""Driver overhead per generation, excluding evaluation; and Klos's 1,000-mutation initialisation.

    python benchmarks/driver_overhead.py [--generations 200] [--db URL] [--json PATH]

Overhead: a real `nascli.driver.step.Driver` drives a `synthetic` run (0 s per evaluation) against a real
store (a fresh SQLite file unless --db names another database). Between two driver steps an
in-process stand-in worker claims, evaluates (synthetic, instant) and completes every pending
evaluation; only the time spent inside `Driver.step()` is counted: folding results
(`results()` + `tell`), population bookkeeping (`mark_replaced`, migrations, island generations),
`ask`, and the ask event + individual rows + queue writes. It is reported per island generation
(the island GA makes one child per island per generation) and split into the pure strategy part
(ask + tell with no store) and the rest (store reads and writes). Target: < 5 ms per generation.

Initialisation: `population` individuals, each the seed genome mutated `init_mutations` times
(Klos Table 5: 1,000), with each preset's own search space and input shape.

Writes `benchmarks/results/driver_overhead.json` (or --json PATH).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy

from nascli.config import resolve, task_for
from nascli.driver.session import queue_limits
from nascli.driver.step import Driver
from nascli.driver.strategy import build_strategy
from nascli.ga.genome import format_genome
from nascli.ga.rng import rng_for
from nascli.ga.strategies import Outcome
from nascli.store import open_store
from nascli.worker import evaluate_task

RESULTS = Path(__file__).resolve().parent / "results"
# (label, preset, --set overrides): the quick preset and Klos's size (5 islands x 20, cifar10-island5).
SETUPS = (
    ("synthetic-quick 2 islands x 6", "synthetic-quick", []),
    ("Klos size 5 islands x 20", "synthetic-quick", ["ga.islands=5", "ga.population=20", "migration.period=20"]),
)


def config_for(preset: str, overrides: list[str], generations: int):
    return resolve(preset=preset, overrides=[*overrides, f"ga.generations={generations}",
                                             "task.synthetic_seconds=0", 'cache.scope="run"'],
                   project_file=None, env={})


def drain(store, worker_id: str, run_id: str) -> int:
    """The stand-in worker: evaluate everything pending, instantly (its time is not the driver's)."""
    count = 0
    while (claim := store.claim(worker_id, run_id=run_id, lease_seconds=60)) is not None:
        store.complete(claim.evaluation_id, claim.attempt, evaluate_task(claim.task))
        count += 1
    return count


def driver_overhead(db_url: str, preset: str, overrides: list[str], generations: int) -> dict:
    cfg = config_for(preset, overrides, generations)
    store = open_store(db_url, create=True, limits=queue_limits(cfg))
    try:
        run = store.create_run("driver-overhead", cfg.run.strategy, preset, cfg.run.seed, cfg.model_dump(mode="json"))
        driver = Driver(store, run, cfg)
        driver.acquire()
        store.register_worker("bench-worker", host=platform.node(), pid=0, device="cpu")
        transactions = [0]
        sqlalchemy.event.listen(store.engine, "begin", lambda _conn: transactions.__setitem__(0, transactions[0] + 1))
        steps: list[float] = []  # wall seconds of each step after the first
        cpu = 0.0
        step_transactions = 0
        evaluations = 0
        wall = time.perf_counter()
        first_step = None  # the initial population: `population` x init_mutations mutations per island
        while not driver.finished:
            before = transactions[0]
            start, start_cpu = time.perf_counter(), time.process_time()
            driver.step()
            elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
            if first_step is None:
                first_step = elapsed
            else:
                steps.append(elapsed)
                cpu += elapsed_cpu
                step_transactions += transactions[0] - before
            evaluations += drain(store, "bench-worker", run.id)
        wall = time.perf_counter() - wall
        driver.release()
    finally:
        store.close()
    island_generations = cfg.ga.islands * generations  # the steps after the first hold all of them
    driver_seconds = sum(steps)
    return {
        "islands": cfg.ga.islands, "population": cfg.ga.population, "generations": generations,
        "children": driver.done_count, "trained": evaluations, "cache_hits": driver.cache_hits, "steps": len(steps),
        "driver_ms_per_island_generation": 1000 * driver_seconds / island_generations,
        "driver_cpu_ms_per_island_generation": 1000 * cpu / island_generations,
        "transactions_per_island_generation": step_transactions / island_generations,
        "initial_population_step_seconds": first_step,
        "driver_ms_per_step_median": 1000 * statistics.median(steps),
        "driver_ms_per_step_p95": 1000 * sorted(steps)[int(0.95 * (len(steps) - 1))],
        "driver_seconds": driver_seconds, "wall_seconds_including_stand_in_worker": wall,
    }


def strategy_only(preset: str, overrides: list[str], generations: int) -> float:
    """ms per island generation of ask + tell alone, with synthetic metrics computed outside the timer."""
    cfg = config_for(preset, overrides, generations)
    strategy = build_strategy(cfg)
    spent = 0.0  # CPU seconds: this part never waits for I/O
    pending: list = []
    first = True  # the initial population is timed apart
    while not strategy.finished:
        start = time.process_time()
        for outcome in pending:
            strategy.tell(outcome)
        proposals = strategy.ask()
        if not first:
            spent += time.process_time() - start
        first = False
        results = [evaluate_task(task_for(cfg, format_genome(p.genome), 0)) for p in proposals]
        pending = [Outcome(p.key, r.status, r.metrics()) for p, r in zip(proposals, results)]
    return 1000 * spent / (cfg.ga.islands * generations)


def initialisation(preset: str, population: int) -> dict:
    cfg = resolve(preset=preset, overrides=[f"ga.population={population}"], project_file=None, env={})
    strategy = build_strategy(cfg)
    variation = strategy.variation
    start, start_cpu = time.perf_counter(), time.process_time()
    genomes = [variation.random_init(rng_for(cfg.run.seed, 0, 0, "init", slot)) for slot in range(population)]
    seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return {"preset": preset, "population": population, "init_mutations": cfg.ga.init_mutations,
            "seconds": seconds, "cpu_seconds": cpu,
            "us_per_mutation": 1e6 * seconds / (population * cfg.ga.init_mutations),
            "cpu_us_per_mutation": 1e6 * cpu / (population * cfg.ga.init_mutations),
            "mean_hidden_layers": statistics.fmean(len(g.hidden) for g in genomes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=200, help="generations per island")
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file in a temp dir)")
    parser.add_argument("--population", type=int, default=100, help="individuals for the init timing")
    parser.add_argument("--json", type=Path, default=RESULTS / "driver_overhead.json")
    args = parser.parse_args()

    report: dict = {"machine": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "load_average_1min_at_start": os.getloadavg()[0],
                    "generations": args.generations, "overhead": [], "initialisation": []}
    print("Driver overhead per island generation (evaluation excluded), target < 5 ms.\n"
          "wall = elapsed inside Driver.step(); cpu = this process's CPU time there (what is left when other\n"
          "processes compete for the cores); tx = database transactions; strategy = ask + tell alone, no\n"
          "store (CPU). The first step (the initial population, timed below) is excluded.")
    print(f"{'setup':30} {'children':>8} {'trained':>7} {'wall ms/gen':>11} {'cpu ms/gen':>10} "
          f"{'tx/gen':>6} {'step med ms':>11} {'step p95 ms':>11} {'strategy ms/gen':>15}")
    with tempfile.TemporaryDirectory() as tmp:
        for index, (label, preset, overrides) in enumerate(SETUPS):
            url = args.db or f"sqlite:///{tmp}/overhead-{index}.db"
            row = driver_overhead(url, preset, overrides, args.generations)
            row["strategy_ms_per_island_generation"] = strategy_only(preset, overrides, args.generations)
            row["setup"] = label
            row["database"] = url.split(":", 1)[0]
            report["overhead"].append(row)
            print(f"{label:30} {row['children']:8d} {row['trained']:7d} {row['driver_ms_per_island_generation']:11.2f} "
                  f"{row['driver_cpu_ms_per_island_generation']:10.2f} "
                  f"{row['transactions_per_island_generation']:6.1f} "
                  f"{row['driver_ms_per_step_median']:11.2f} "
                  f"{row['driver_ms_per_step_p95']:11.2f} {row['strategy_ms_per_island_generation']:15.3f}")
    print(f"\nInitialisation: {args.population} individuals x init_mutations mutations of the seed genome")
    for preset in ("digits-quick", "mnist-island5", "cifar10-island5"):
        row = initialisation(preset, args.population)
        report["initialisation"].append(row)
        print(f"{preset:20} {row['init_mutations']} mutations: {row['seconds']:.2f} s wall, "
              f"{row['cpu_seconds']:.2f} s CPU "
              f"({row['us_per_mutation']:.1f} us wall, {row['cpu_us_per_mutation']:.1f} us CPU per mutation, "
              f"{row['mean_hidden_layers']:.1f} hidden layers on average)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
