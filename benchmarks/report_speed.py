"""How fast is `nas report` on a big run? Builds a synthetic run with N finished evaluations on SQLite
by bulk inserts (the store's own tables), then times every report section in-process and the whole
`nas report RUN` command as a subprocess (Python start-up and imports included).

    python benchmarks/report_speed.py                      # 100,000 evaluations
    python benchmarks/report_speed.py --evaluations 20000 --json out.json

Target (issue 6): the summary of a 100k-evaluation run in under 2 s on SQLite. Prints a table and
writes JSON (default benchmarks/results/report_speed.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from nascli.config import resolve
from nascli.store import open_store
from nascli.store.models import EvaluationRow, IndividualRow, MigrationRow, WorkerRow

GENOMES = (
    "In_32_32_3:C_3-3-1-1-32:P_2-2-2-2-0:R_3-3-1-1-64:D_1-1-1-1-128:D_10",
    "In_32_32_3:C_3-3-1-1-16:C_3-3-2-2-32:R_3-3-1-1-32:P_2-2-2-2-0:D_10",
    "In_32_32_3:I.1-1-1_5-5-1-1-16.2-1-2_3-3-1-1-16.3-0-0_1-1-1-1-0.4-1-0_3-3-1-1-8:P_2-2-2-2-0:D_10",
    "In_32_32_3:R_3-3-1-1-32:R_3-3-2-2-64:R_3-3-2-2-128:D_1-1-1-1-256:D_10",
)


def build(url: str, evaluations: int, islands: int, population: int, workers: int, seed: int) -> str:
    """A finished island-GA run with `evaluations` done/failed evaluations, via executemany bulk inserts."""
    rng = random.Random(seed)
    cfg = resolve(preset="cifar10-island5", overrides=[f"ga.islands={islands}", f"ga.population={population}"],
                  project_file=None, env={})
    store = open_store(url, create=True)
    run = store.create_run("bench", cfg.run.strategy, "cifar10-island5", seed, cfg.model_dump(mode="json"))
    individuals, evaluation_rows, migrations = [], [], []
    alive: dict[int, list[int]] = {island: [] for island in range(islands)}
    now = time.time() - evaluations * 0.5
    worker_ids = [f"gpu-{w:02d}:{1000 + w}:bench" for w in range(workers)]
    next_id = 1
    generation = 0
    kinds = ("oom", "crash", "nan_loss", "too_large")

    def add(island: int, generation: int, slot: int, parents: list[int], operator: str) -> int:
        nonlocal next_id, now
        ident = next_id
        next_id += 1
        genome = rng.choice(GENOMES)
        individuals.append(dict(id=ident, run_id=run.id, island=island, generation=generation, slot=slot,
                                genome=genome, genome_hash=f"{hash(genome) & 0xffffffffffff:016x}",
                                parents_json=json.dumps(parents), operator=operator, age=0, alive=False,
                                replaced_generation=None, created_at=now))
        failed = rng.random() < 0.03
        val = None if failed else 0.5 + 0.45 * rng.random()
        started = now
        now += 0.5
        evaluation_rows.append(dict(
            id=ident, run_id=run.id, individual_id=ident, status="failed" if failed else "done", priority=0,
            attempt=1, failures=1 if failed else 0, lease_expiries=0, releases=0, settled_attempt=1, max_attempts=3,
            max_lease_expiries=5, worker_id=rng.choice(worker_ids), task_json="{}", genome=genome,
            genome_hash=individuals[-1]["genome_hash"], config_hash="bench", seq=ident, created_at=started,
            claimed_at=started, heartbeat_at=started, lease_expires_at=None, started_at=started,
            finished_at=started + 30 * rng.random(), error_kind=rng.choice(kinds) if failed else None,
            error_message="synthetic" if failed else None, val_accuracy=val,
            val_loss=None if failed else 1.5 - val, test_accuracy=None if failed else val - 0.02 * rng.random(),
            test_loss=None if failed else 1.6 - val, train_accuracy=None if failed else min(1.0, val + 0.05),
            train_loss=None if failed else 0.3, params=rng.randint(10_000, 5_000_000),
            flops=rng.randint(1_000_000, 900_000_000), epochs_run=None if failed else rng.randint(5, 100),
            best_epoch=None if failed else 4, train_seconds=None if failed else 20 + 40 * rng.random(),
            latency_ms=None if failed else rng.random(), peak_memory_bytes=None, extra_json="{}"))
        if not failed:
            alive[island].append(ident)
            if len(alive[island]) > population:
                alive[island].remove(rng.choice(alive[island]))
        return ident

    for island in range(islands):
        for slot in range(population):
            add(island, 0, slot, [], "init")
    while len(evaluation_rows) < evaluations:
        generation += 1
        for island in range(islands):
            if len(evaluation_rows) >= evaluations:
                break
            parents = [rng.choice(alive[island])]
            operator = rng.choice(("insert", "switch", "delete", "adjust", "crossover"))
            if operator == "crossover":
                parents.append(rng.choice(alive[island]))
            add(island, generation, 0, parents, operator)
        if generation % 20 == 0 and islands > 1:
            for island in range(islands):
                if len(evaluation_rows) >= evaluations:
                    break
                migrant = rng.choice(alive[island])
                destination = (island + 1) % islands
                migrations.append(dict(run_id=run.id, generation=generation, from_island=island,
                                       to_island=destination, individual_id=migrant, created_at=now))
                add(destination, generation, 1, [migrant], "migration")
    living = {ident for members in alive.values() for ident in members}
    for row in individuals:
        row["alive"] = row["id"] in living
    with store.engine.begin() as connection:
        connection.execute(sa.insert(IndividualRow.__table__), individuals)
        connection.execute(sa.insert(EvaluationRow.__table__), evaluation_rows)
        if migrations:
            connection.execute(sa.insert(MigrationRow.__table__), migrations)
        connection.execute(sa.insert(WorkerRow.__table__), [dict(
            id=w, host=w.split(":")[0], pid=int(w.split(":")[1]), device="cuda:0", started_at=now - 3600,
            last_seen_at=now, tasks_done=0, tasks_failed=0) for w in worker_ids])
        connection.execute(sa.update(sa.table("run", sa.column("id"), sa.column("completion_counter")))
                           .where(sa.column("id") == run.id).values(completion_counter=len(evaluation_rows)))
    store.set_run_status(run.id, "finished")
    store.close()
    return run.id


def time_call(function, repeats: int) -> dict[str, float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=100_000)
    parser.add_argument("--islands", type=int, default=10)
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--db", help="reuse/keep this SQLite file (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "report_speed.json")
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="nascli-report-bench-")
    path = Path(args.db) if args.db else Path(directory) / "bench.db"
    url = f"sqlite:///{path}"
    started = time.perf_counter()
    run_id = build(url, args.evaluations, args.islands, args.population, args.workers, seed=0)
    build_seconds = time.perf_counter() - started

    from nascli.report import gather
    from nascli.store.reports import open_read_only

    results: dict[str, dict[str, float]] = {}
    with open_read_only(url) as queries:
        run = queries.run(run_id)
        sections = {
            "runs": lambda: gather.runs_views(queries),
            "summary": lambda: gather.run_views(queries, run_id, ["summary"]),
            "islands": lambda: gather.run_views(queries, run_id, ["islands"]),
            "top": lambda: gather.run_views(queries, run_id, ["top"], top=10),
            "generations": lambda: gather.run_views(queries, run_id, ["generations"]),
            "workers": lambda: gather.run_views(queries, run_id, ["workers"]),
            "migrations": lambda: gather.run_views(queries, run_id, ["migrations"]),
            "pareto": lambda: gather.run_views(queries, run_id, ["pareto"]),
            "default (summary+islands+top+migrations)": lambda: gather.run_views(
                queries, run_id, ["summary", "islands", "top", "migrations"]),
        }
        for name, function in sections.items():
            results[name] = time_call(function, args.repeats)
        del run

    def command(*extra: str) -> dict[str, float]:
        env = dict(os.environ, COLUMNS="160")
        return time_call(lambda: subprocess.run([sys.executable, "-m", "nascli", "report", run_id, "--db", url,
                                                 *extra], check=True, capture_output=True, env=env), args.repeats)

    results["`nas report RUN -S summary` (process)"] = command("--section", "summary")
    results["`nas report RUN` (process)"] = command()
    results["`nas report RUN -f json -S summary` (process)"] = command("-f", "json", "-S", "summary")
    size = path.stat().st_size

    print(f"run {run_id}: {args.evaluations:,} evaluations, {args.islands} islands, SQLite {size / 1e6:.1f} MB "
          f"(built in {build_seconds:.1f} s)")
    print(f"{'section':50s} {'median':>9s} {'min':>9s} {'max':>9s}")
    for name, figures in results.items():
        print(f"{name:50s} {figures['median_s']:8.3f}s {figures['min_s']:8.3f}s {figures['max_s']:8.3f}s")
    target = results["summary"]["median_s"]
    print(f"summary: {target:.3f} s in-process (target < 2 s): {'OK' if target < 2 else 'MISSED'}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "report_speed", "evaluations": args.evaluations, "islands": args.islands,
        "population": args.population, "workers": args.workers, "repeats": args.repeats,
        "database_bytes": size, "build_seconds": build_seconds, "results": results,
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
    }, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
