"""CPU per task of one in-process worker draining 0-s synthetic tasks, and of everything else.

    python benchmarks/worker_cpu.py                       # PostgreSQL, 3,000 tasks
    python benchmarks/worker_cpu.py --backend sqlite --tasks 5000

A `nascli.worker.Worker` runs in this process against a fresh database (the same helpers as
queue_throughput.py) until the queue is empty. Printed per task: the worker's user and system CPU
(this process's rusage) and the CPU of the rest of the machine over the same span (/proc/stat
busy time minus ours: on an idle box, the database server). On a 2-core machine the sum bounds
how many tasks per second N workers and the server can share. Run it on an idle box.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from queue_throughput import DEFAULT_PG_URL, fresh_database, synthetic_tasks  # noqa: E402


def machine_busy_ms() -> float:
    """Busy CPU time of the whole machine so far (all processes, all cores), in ms."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) * 1000 / os.sysconf("SC_CLK_TCK")


def main() -> None:
    from nascli.store import EvaluationRequest, open_store
    from nascli.worker import Worker, WorkerOptions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="postgresql", choices=("postgresql", "sqlite"))
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--pg-url", default=os.environ.get("NASCLI_TEST_PG_URL", DEFAULT_PG_URL))
    args = parser.parse_args()
    with fresh_database(args.backend, args.pg_url) as (url, _):
        store = open_store(url, create=True)
        run = store.create_run("worker-cpu", "random", None, 0, {"worker": {}})
        store.enqueue(run.id, [EvaluationRequest(None, task) for task in synthetic_tasks(args.tasks)])
        worker = Worker(open_store(url), WorkerOptions(run_id=run.id, idle_timeout=0.3))
        started, before, busy_before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF), machine_busy_ms()
        worker.run()
        after, busy_after = resource.getrusage(resource.RUSAGE_SELF), machine_busy_ms()
        wall = time.perf_counter() - started - 0.3  # the idle timeout at the end
        store.close()
    n = args.tasks
    user = (after.ru_utime - before.ru_utime) * 1000 / n
    system = (after.ru_stime - before.ru_stime) * 1000 / n
    rest = (busy_after - busy_before) / n - user - system
    print(f"{args.backend}: {worker.stats.done} tasks, {n / wall:.0f} tasks/s; per task: worker CPU {user:.2f} ms user "
          f"+ {system:.2f} ms system, rest of the machine {rest:.2f} ms (on an idle box: the database server)")


if __name__ == "__main__":
    main()
