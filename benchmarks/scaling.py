"""Speedup of 1 -> 32 `nas worker` processes on PostgreSQL with 1-s synthetic tasks.

    python benchmarks/scaling.py                          # 1,2,4,8,16,32 workers, 10 tasks each
    python benchmarks/scaling.py --workers 1,8,32 --tasks-per-worker 5

Each level starts N idle workers, enqueues N x K tasks at once and measures, on the database
clock, from the enqueue to the last finish. Ideal wall time is K x task seconds whatever N is, so
efficiency(N) = wall(1) / wall(N) (= speedup / N) and `vs ideal` = K x task seconds / wall(N).
Idle workers pick up new work within their poll backoff (<= 1 s), so the wall time carries up to
about one task of start-up stagger; `steady-state eff.` compares the rate over the middle 80 % of
finishes instead (coordination cost at scale without the start and the tail).
Synthetic tasks sleep, so this measures coordination (claim, heartbeat, complete, pickup latency),
not CPU: 32 workers fit on a 2-core machine only because none of them imports torch.
Prints a table and writes JSON (--json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from queue_throughput import DEFAULT_PG_URL, fresh_database, timed_drain  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4,8,16,32")
    parser.add_argument("--tasks-per-worker", type=int, default=10)
    parser.add_argument("--task-seconds", type=float, default=1.0)
    parser.add_argument("--backend", default="postgresql", choices=("postgresql", "sqlite"))
    parser.add_argument("--pg-url", default=os.environ.get("NASCLI_TEST_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--json", type=Path, default=HERE / "results" / "scaling.json")
    args = parser.parse_args(argv)

    levels = []
    for workers in (int(n) for n in args.workers.split(",")):
        tasks = workers * args.tasks_per_worker
        with fresh_database(args.backend, args.pg_url) as (url, _):
            row = timed_drain(url, workers, tasks, task_seconds=args.task_seconds)
        levels.append(row)
        print(f"{workers:>3} workers: {tasks} tasks in {row['wall_seconds']:.2f} s "
              f"({tasks / row['wall_seconds']:.2f} tasks/s)", flush=True)

    base = levels[0]
    base_rate = base["tasks"] / base["wall_seconds"] / base["workers"]
    ideal = args.tasks_per_worker * args.task_seconds
    base_mid = base["rate_mid"] / base["workers"]
    for row in levels:
        rate = row["tasks"] / row["wall_seconds"]
        row.update(tasks_per_second=rate, speedup=rate / (base_rate), efficiency=rate / (base_rate * row["workers"]),
                   vs_ideal=ideal / row["wall_seconds"],
                   steady_efficiency=row["rate_mid"] / (base_mid * row["workers"]))

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"scaling on {args.backend}: {args.task_seconds:g}-s synthetic tasks, "
                        f"{args.tasks_per_worker} per worker")
    for column in ("workers", "tasks", "wall s", "tasks/s", "speedup", "efficiency", "vs ideal", "steady-state eff.",
                   "per worker"):
        table.add_column(column, justify="right")
    for row in levels:
        spread = row["per_worker"]
        table.add_row(str(row["workers"]), str(row["tasks"]), f"{row['wall_seconds']:.2f}",
                      f"{row['tasks_per_second']:.2f}", f"{row['speedup']:.2f}", f"{row['efficiency']:.3f}",
                      f"{row['vs_ideal']:.3f}", f"{row['steady_efficiency']:.3f}", f"{min(spread)}-{max(spread)}")
    Console(width=max(120, Console().width)).print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"settings": vars(args) | {"json": str(args.json)}, "levels": levels}, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
