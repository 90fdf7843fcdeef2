"""How long a task waits for an idle worker, and a result for its driver: NOTIFY vs polling.

    python benchmarks/wakeup_latency.py                     # pg-notify, pg-poll, sqlite; ~4 min
    python benchmarks/wakeup_latency.py --modes pg-notify --samples 20 --workers 2

Per mode: a fresh database, N idle `nas worker` processes (real ones), then one 0-s synthetic task
at a time, each after a random pause (so the workers are idle and their polling has backed off,
and enqueues do not phase-lock with a poll period):
  * enqueue-to-claim: the row's claimed_at minus created_at, both on the database clock;
  * result-to-driver: from the row's finished_at (database clock, same host) to when a loop shaped
    like Driver.drive (a RESULT_CHANNEL waiter, backoff 0.02 s doubling to its cap) sees the result.
Modes: pg-notify (LISTEN/NOTIFY on), pg-poll (NASCLI_LISTEN=0 in workers and driver loop: polling
only), sqlite (polling; there is nothing to listen to). Prints p50/p90/p99/max in ms and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import queue_throughput  # beside this file

HERE = Path(__file__).resolve().parent
DEFAULT_PG_URL = os.environ.get("NASCLI_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:55432/nascli_test")
MODES = ("pg-notify", "pg-poll", "sqlite")


@contextmanager
def fresh_database(mode: str, pg_url: str):
    """A new empty database's SQLAlchemy URL (queue_throughput.fresh_database)."""
    with queue_throughput.fresh_database("sqlite" if mode == "sqlite" else "postgresql", pg_url) as (url, _):
        yield url


@contextmanager
def listen_setting(enabled: bool):
    from nascli.store.notify import LISTEN_ENV

    before = os.environ.get(LISTEN_ENV)
    os.environ[LISTEN_ENV] = "1" if enabled else "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(LISTEN_ENV, None)
        else:
            os.environ[LISTEN_ENV] = before


def start_workers(url: str, count: int, log_dir: Path) -> list[subprocess.Popen]:
    env = {**os.environ, "NAS_DB_URL": url, "PYTHONUNBUFFERED": "1"}
    processes = []
    for index in range(count):
        with open(log_dir / f"worker-{index}.log", "wb") as log:
            processes.append(subprocess.Popen([sys.executable, "-m", "nascli", "worker", "--idle-timeout", "900"],
                                              stdout=log, stderr=subprocess.STDOUT, env=env))
    return processes


def stop_workers(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_for_result(store, waiter, run_id: str, after_seq: int, listening_cap: float, poll_cap: float):
    """Driver.drive's waiting, reduced to one result: returns (FinishedEvaluation, wall time seen)."""
    idle = 0.02
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        results = store.results(run_id, after_id=after_seq)
        if results:
            return results[0], time.time()
        if not waiter.wait(idle):
            idle = min(listening_cap if waiter.listening else poll_cap, idle * 2)
    raise SystemExit("a result never arrived: are the workers alive? see their logs")


def measure(mode: str, *, pg_url: str, workers: int, samples: int, gap: tuple[float, float], settle: float,
            rng: random.Random) -> dict:
    from nascli.store import EvaluationRequest, open_store
    from nascli.store.notify import RESULT_CHANNEL, open_waiter
    from nascli.task import Task

    with fresh_database(mode, pg_url) as url, listen_setting(mode != "pg-poll"), \
            tempfile.TemporaryDirectory(prefix="nascli-wake-logs-") as logs:
        store = open_store(url, create=True)
        processes = start_workers(url, workers, Path(logs))
        try:
            run = store.create_run("wakeup", "random", None, 0, {"worker": {}})
            deadline = time.monotonic() + 120
            while len(store.workers()) < workers:
                if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                    raise SystemExit(f"{mode}: workers did not start; logs in {logs}")
                time.sleep(0.1)
            time.sleep(settle)  # let every idle worker's backoff reach its cap
            to_driver: list[float] = []
            with open_waiter(store, RESULT_CHANNEL, run.id) as waiter:
                listening_deadline = time.monotonic() + 10
                while mode == "pg-notify" and not waiter.listening and time.monotonic() < listening_deadline:
                    time.sleep(0.01)
                seq = 0
                for index in range(samples):
                    time.sleep(rng.uniform(*gap))
                    task = Task(genome=f"In_8_8:C_3-3-1-1-{1 + index}:D_10",
                                task={"kind": "synthetic", "dataset": "synthetic", "synthetic_seconds": 0.0},
                                train={"epochs": 1}, search_space={"max_params": 10_000_000})
                    waiter.wait(0)  # forget anything older than this task
                    store.enqueue(run.id, [EvaluationRequest(None, task)])
                    finished, seen = wait_for_result(store, waiter, run.id, seq, listening_cap=1.0, poll_cap=0.25)
                    seq = finished.seq
                    to_driver.append(seen - finished.finished_at)
            rows = store.evaluations(run.id)
            to_claim = [row.claimed_at - row.created_at for row in rows]
            claims_per_worker = sorted(
                sum(1 for row in rows if row.worker_id == w.id) for w in store.workers())
        finally:
            stop_workers(processes)
            store.close()
    return {"mode": mode, "workers": workers, "samples": samples, "enqueue_to_claim_ms": summary(to_claim),
            "result_to_driver_ms": summary(to_driver), "claims_per_worker": claims_per_worker}


def summary(seconds: list[float]) -> dict:
    ms = sorted(1000.0 * max(0.0, s) for s in seconds)

    def pct(p: float) -> float:
        return round(ms[min(len(ms) - 1, int(round(p / 100 * (len(ms) - 1))))], 1)

    return {"p50": pct(50), "p90": pct(90), "p99": pct(99), "max": round(ms[-1], 1),
            "mean": round(statistics.fmean(ms), 1), "n": len(ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma list of {', '.join(MODES)}")
    parser.add_argument("--workers", type=int, default=4, help="idle nas worker processes (default 4)")
    parser.add_argument("--samples", type=int, default=30, help="tasks per mode (default 30)")
    parser.add_argument("--gap", default="0.5,3.0", help="random pause between tasks, min,max seconds")
    parser.add_argument("--settle", type=float, default=4.0, help="idle seconds before the first task")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "wakeup_latency.json")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}")
    low, high = (float(x) for x in args.gap.split(","))
    rng = random.Random(args.seed)
    results = []
    for mode in modes:
        print(f"{mode}: {args.workers} idle workers, {args.samples} tasks ...", flush=True)
        results.append(measure(mode, pg_url=args.pg_url, workers=args.workers, samples=args.samples,
                               gap=(low, high), settle=args.settle, rng=rng))
    print(f"\n{'mode':<10} {'enqueue->claim ms p50 / p90 / p99 / max':<42} {'result->driver ms p50 / p90 / p99 / max'}")
    for r in results:
        c, d = r["enqueue_to_claim_ms"], r["result_to_driver_ms"]
        print(f"{r['mode']:<10} {c['p50']:>8} / {c['p90']:>7} / {c['p99']:>7} / {c['max']:>7}          "
              f"{d['p50']:>8} / {d['p90']:>7} / {d['p99']:>7} / {d['max']:>7}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "wakeup_latency", "host": platform.node(), "python": platform.python_version(),
        "cpus": os.cpu_count(), "load_average": os.getloadavg(), "gap_seconds": [low, high],
        "results": results}, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
