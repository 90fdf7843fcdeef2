"""How fast the evaluation queue moves, against a peer (Optuna's RDB storage) and a ceiling (raw SQL).

    python benchmarks/queue_throughput.py                       # everything, several minutes
    python benchmarks/queue_throughput.py --workers 1,8 --backends sqlite --tasks 1000 --latency-sizes 1000

Measures, on SQLite and PostgreSQL:
  * nascli: completed claim+complete cycles per second with N real `nas worker` processes serving
    0-s synthetic tasks. Workers start idle, the tasks are enqueued in one batch, and the rate is
    read from the database's own finish times (middle 80 % of the tasks: no start-up or tail).
    Per-worker task counts show fairness.
  * optuna: trials/s of `study.optimize` with a trivial objective in N processes on the same backend.
  * raw: the same claim (SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE + UPDATE ... RETURNING on SQLite)
    and fenced completion on the same table shape with psycopg / sqlite3 and nothing else: the ceiling.
  * claim latency (p50/p99, one process) with 1k, 10k and 100k finished rows in the table.
Prints a table and writes JSON (--json). PostgreSQL: a fresh database per measurement on the
server in --pg-url / NASCLI_TEST_PG_URL (default: the dev server), dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import raw_loops  # noqa: E402  (beside this file)

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:55432/nascli_test"


# ------------------------------------------------------------------------------------- databases

def libpq_dsn(sqlalchemy_url: str, database: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


@contextmanager
def fresh_database(backend: str, pg_url: str):
    """A new empty database: (sqlalchemy url, libpq dsn or sqlite path)."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="nascli-bench-") as directory:
            path = Path(directory) / "bench.db"
            yield f"sqlite:///{path}", str(path)
        return
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"nascli_bench_{secrets.token_hex(4)}"
    with psycopg.connect(libpq_dsn(pg_url, "postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
        yield url, libpq_dsn(url)
    finally:
        with psycopg.connect(libpq_dsn(pg_url, "postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def synthetic_tasks(count: int, seconds: float = 0.0):
    from nascli.task import Task

    return [Task(genome=f"In_8_8:C_{1 + (i // 500) % 5}-{1 + (i // 500) % 5}-1-1-{1 + i % 500}:D_10",
                 task={"kind": "synthetic", "dataset": "synthetic", "synthetic_seconds": seconds},
                 train={"epochs": 1, "patience": 1}, search_space={"max_params": 10_000_000})
            for i in range(count)]


# ---------------------------------------------------------------------------- nas worker processes

def start_workers(url: str, count: int, run_id: str, *extra: str) -> list[subprocess.Popen]:
    env = {**os.environ}
    env.pop("NAS_DB_URL", None)
    return [subprocess.Popen([sys.executable, "-m", "nascli", "worker", "--db", url, "--run", run_id, *extra],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            for _ in range(count)]


def stop_workers(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def timed_drain(url: str, workers: int, tasks: int, task_seconds: float = 0.0, timeout: float = 900.0) -> dict:
    """Start `workers` idle `nas worker` processes, enqueue `tasks` at once, wait until all are done.

    Returns rates measured on the database clock: `rate_mid` over the middle 80 % of finishes,
    `rate_all` = tasks / (last finish - enqueue), and the per-worker task counts.
    """
    from nascli.store import EvaluationRequest, open_store
    from nascli.store.reports import ReportQueries

    store = open_store(url, create=True)
    run = store.create_run("bench", "random", None, 0, {"worker": {}})
    processes = start_workers(url, workers, run.id)
    try:
        deadline = time.monotonic() + 300
        while len(store.workers()) < workers:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError("workers did not start")
            time.sleep(0.1)
        time.sleep(1.2)  # every worker is now in its idle poll loop
        batch = synthetic_tasks(tasks, task_seconds)
        enqueued_at = store.db_now()
        store.enqueue(run.id, [EvaluationRequest(None, task) for task in batch])
        deadline = time.monotonic() + timeout
        while True:
            counts = store.queue_counts(run.id)
            if counts["done"] + counts["failed"] >= tasks:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"not drained in {timeout} s: {counts}")
            time.sleep(0.2)
        rows = store.evaluations(run.id)
        finishes = sorted(row.finished_at for row in rows)
        # `nas report`'s per-worker counts (from the evaluation rows: worker rows get theirs every few
        # seconds), with 0 for a registered worker that finished nothing
        done_by = {row["worker_id"]: row["done"] for row in ReportQueries(store).workers(run.id)}
        per_worker = sorted(done_by.get(w.id, 0) for w in store.workers())
        first_claims: dict[str, float] = {}
        for row in rows:  # claimed_at is the row's last claim: a worker's earliest row is its first pickup
            first_claims[row.worker_id] = min(first_claims.get(row.worker_id, row.claimed_at), row.claimed_at)
    finally:
        stop_workers(processes)
        store.close()
    low, high = int(tasks * 0.1), int(tasks * 0.9) - 1
    span = finishes[high] - finishes[low]
    return {
        "workers": workers, "tasks": tasks,
        "rate_mid": (high - low) / span if span > 0 else float("nan"),
        "rate_all": tasks / (finishes[-1] - enqueued_at),
        "wall_seconds": finishes[-1] - enqueued_at,
        "per_worker": per_worker,
        # seconds from the enqueue to each worker's first claim: the start-up stagger
        "first_pickup_seconds": sorted(at - enqueued_at for at in first_claims.values()),
    }


# ------------------------------------------------------------------------------ peers and ceiling

def optuna_rate(url: str, workers: int, trials: int) -> dict:
    study = f"bench-{secrets.token_hex(3)}"
    raw_loops.optuna_prepare(url, study)
    per = max(1, trials // workers)
    elapsed, counts = raw_loops.timed_processes(raw_loops.optuna_process, lambda i: (url, study, per, i), workers)
    return {"workers": workers, "tasks": sum(counts), "rate": sum(counts) / elapsed, "per_worker": sorted(counts)}


def raw_rate(backend: str, target: str, workers: int, tasks: int) -> dict:
    if backend == "sqlite":
        raw_loops.sqlite_prepare(target, tasks)
        elapsed, counts = raw_loops.timed_processes(raw_loops.sqlite_process, lambda i: (target, i), workers)
    else:
        raw_loops.pg_prepare(target, tasks)
        elapsed, counts = raw_loops.timed_processes(raw_loops.pg_process, lambda i: (target, i), workers)
    return {"workers": workers, "tasks": sum(counts), "rate": sum(counts) / elapsed, "per_worker": sorted(counts)}


# --------------------------------------------------------------------------------- claim latency

def _fill_finished(store, run_id: str, count: int) -> None:
    """Add `count` finished evaluations quickly: enqueue through the API, then mark them done in one
    UPDATE (a benchmark shortcut; claim+complete of 100k rows one by one would take minutes)."""
    import sqlalchemy as sa

    from nascli.store import EvaluationRequest

    batch = synthetic_tasks(count)
    for start in range(0, count, 5000):
        store.enqueue(run_id, [EvaluationRequest(None, task) for task in batch[start:start + 5000]])
    with store.engine.begin() as conn:
        now = store.db_now()
        conn.execute(sa.text("UPDATE evaluation SET status='done', attempt=1, settled_attempt=1, seq=id, "
                             "finished_at=:now, val_accuracy=0.5 WHERE run_id=:run AND status='pending'"),
                     {"now": now, "run": run_id})
        # keep the run's completion counter in step, as complete() would have
        conn.execute(sa.text("UPDATE run SET completion_counter = (SELECT max(seq) FROM evaluation "
                             "WHERE run_id=:run) WHERE id=:run"), {"run": run_id})
    if store.backend == "postgresql":
        # A queue finishes rows one by one and autovacuum keeps up; finishing them all in one UPDATE
        # leaves every old 'pending' index entry dead until a vacuum, and the first claims would
        # wade through them (6,474 buffers for the first probe at 100k). Measure the steady state.
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE evaluation")


def claim_latency(url: str, sizes: list[int], probes: int = 300) -> list[dict]:
    from nascli.store import EvaluationRequest, open_store
    from nascli.task import Result

    store = open_store(url, create=True)
    rows = []
    try:
        run = store.create_run("latency", "random", None, 0, {"worker": {}})
        finished = 0
        result = Result(status="done", val_accuracy=0.5)
        for size in sizes:
            _fill_finished(store, run.id, size - finished)
            finished = size
            store.enqueue(run.id, [EvaluationRequest(None, task) for task in synthetic_tasks(probes)])
            claims, completes = [], []
            for _ in range(probes):
                started = time.perf_counter()
                claim = store.claim("latency-probe", run_id=run.id, lease_seconds=60)
                claims.append(time.perf_counter() - started)
                started = time.perf_counter()
                store.complete(claim.evaluation_id, claim.attempt, result)
                completes.append(time.perf_counter() - started)
            finished += probes
            rows.append({"finished_rows": size, "claim_p50_ms": _pct(claims, 50), "claim_p99_ms": _pct(claims, 99),
                         "complete_p50_ms": _pct(completes, 50), "complete_p99_ms": _pct(completes, 99)})
    finally:
        store.close()
    return rows


def _pct(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))], 3)


# ------------------------------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4,8,16", help="process counts, comma-separated")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per nascli measurement")
    parser.add_argument("--raw-tasks", type=int, default=3000, help="tasks per raw-loop measurement")
    parser.add_argument("--optuna-trials", type=int, default=300, help="trials per Optuna measurement")
    parser.add_argument("--latency-sizes", default="1000,10000,100000")
    parser.add_argument("--pg-url", default=os.environ.get("NASCLI_TEST_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--json", type=Path, default=HERE / "results" / "queue_throughput.json")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",")]
    backends = args.backends.split(",")
    sizes = [int(n) for n in args.latency_sizes.split(",") if n]

    report: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                    "settings": vars(args) | {"json": str(args.json)}, "throughput": [], "latency": {}}
    for backend in backends:
        for workers in counts:
            row = {"backend": backend, "workers": workers}
            with fresh_database(backend, args.pg_url) as (url, _):
                row["nascli"] = timed_drain(url, workers, args.tasks)
            with fresh_database(backend, args.pg_url) as (url, _):
                row["optuna"] = optuna_rate(url, workers, args.optuna_trials)
            with fresh_database(backend, args.pg_url) as (_, target):
                row["raw"] = raw_rate(backend, target, workers, args.raw_tasks)
            report["throughput"].append(row)
            _print_row(row)
        if sizes:
            with fresh_database(backend, args.pg_url) as (url, _):
                report["latency"][backend] = claim_latency(url, sizes)
    _print_tables(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.json}")
    return 0


def _print_row(row: dict) -> None:
    n, o, r = row["nascli"], row["optuna"], row["raw"]
    print(f"{row['backend']:<10} {row['workers']:>2} workers: nascli {n['rate_mid']:7.0f}/s "
          f"(all-in {n['rate_all']:6.0f}/s) "
          f"optuna {o['rate']:6.1f}/s  raw {r['rate']:7.0f}/s", flush=True)


def _print_tables(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(160, Console().width))
    table = Table(title="claim+complete cycles per second (0-s synthetic tasks)")
    for column in ("backend", "workers", "nascli /s", "nascli all-in /s", "optuna trials/s", "raw ceiling /s",
                   "x optuna", "% of raw", "nascli per worker", "raw per worker"):
        table.add_column(column, justify="right")
    for row in report["throughput"]:
        n, o, r = row["nascli"], row["optuna"], row["raw"]
        table.add_row(row["backend"], str(row["workers"]), f"{n['rate_mid']:.0f}", f"{n['rate_all']:.0f}",
                      f"{o['rate']:.1f}", f"{r['rate']:.0f}", f"{n['rate_mid'] / o['rate']:.1f}",
                      f"{100 * n['rate_mid'] / r['rate']:.0f}", _spread(n["per_worker"]), _spread(r["per_worker"]))
    console.print(table)
    for backend, rows in report["latency"].items():
        latency = Table(title=f"claim / complete latency, one process, {backend}")
        for column in ("finished rows", "claim p50 ms", "claim p99 ms", "complete p50 ms", "complete p99 ms"):
            latency.add_column(column, justify="right")
        for row in rows:
            latency.add_row(f"{row['finished_rows']:,}", *(f"{row[k]:.2f}" for k in
                            ("claim_p50_ms", "claim_p99_ms", "complete_p50_ms", "complete_p99_ms")))
        console.print(latency)


def _spread(counts: list[int]) -> str:
    if len(counts) <= 4:
        return ",".join(map(str, counts))
    return f"min {min(counts)} med {statistics.median(counts):.0f} max {max(counts)}"


if __name__ == "__main__":
    sys.exit(main())
