"""How soon a plain `nas resume` drives again after the driver is SIGKILLed.

Starts `nas run --preset synthetic-quick --workers 1` (long enough not to finish), then KILLS
times: let the current driver work for a moment, SIGKILL it, start `nas resume RUN --workers 1`
at once (no --force, no waiting) and time from the SIGKILL to the resumed driver's "resuming run"
line. That line is printed after it took the run's liveness token and driver lease and replayed the
log, i.e. when it is driving; the script also checks that the run's driver lease changed owner.
Prints one JSON object (seconds) and writes it to --json (default
benchmarks/results/resume_latency-BACKEND.json); asserts nothing about time. Python start-up and
imports are part of the figure (a user pays them too).

    python benchmarks/resume_latency.py                      # SQLite in a temporary directory
    python benchmarks/resume_latency.py --db postgresql+psycopg://user@host/db
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nascli.store import open_store

HERE = Path(__file__).resolve().parent
SETTINGS = ["--set", "task.synthetic_seconds=0.05", "--set", "ga.generations=100000", "--workers", "1"]


def nas(*args: str) -> list[str]:
    return [sys.executable, "-m", "nascli", *args]


def wait_for_line(process: subprocess.Popen, marker: str, timeout: float = 120) -> str:
    """The first stdout line containing `marker` (stdout must be a pipe)."""
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        if marker in line:
            return line
        if time.monotonic() > deadline:
            break
    raise SystemExit(f"no {marker!r} line from {process.args} (exit {process.poll()})")


def driver_owner(url: str, run_id: str) -> str | None:
    store = open_store(url)
    try:
        return store.get_run(run_id).driver_owner
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database URL (default: a SQLite file in a temporary directory)")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--work-seconds", type=float, default=1.0, help="how long each driver drives before the kill")
    parser.add_argument("--json", type=Path,
                        help="where to write the figures (default: results/resume_latency-BACKEND.json)")
    options = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="nascli-resume-latency-")
    url = options.db or f"sqlite:///{directory}/nas.db"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("NAS_DB_URL", None)

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen(nas(*args, "--db", url), env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, cwd=directory)

    driver = start("run", "--preset", "synthetic-quick", *SETTINGS)
    run_id = wait_for_line(driver, "started run").split()[-1]
    latencies = []
    try:
        for _ in range(options.kills):
            time.sleep(options.work_seconds)
            owner_before = driver_owner(url, run_id)
            killed_at = time.monotonic()
            driver.send_signal(signal.SIGKILL)
            driver.wait()
            driver.stdout.close()
            driver = start("resume", run_id, "--workers", "1")
            wait_for_line(driver, "resuming run")
            latencies.append(time.monotonic() - killed_at)
            owner_after = driver_owner(url, run_id)
            if owner_after == owner_before or owner_after is None:
                raise SystemExit(f"the resumed driver does not hold the lease ({owner_before} -> {owner_after})")
    finally:
        if driver.poll() is None:
            driver.send_signal(signal.SIGTERM)  # stops it like Ctrl-C (SIGINT may be ignored in a background job)
            try:
                driver.wait(timeout=30)
            except subprocess.TimeoutExpired:
                driver.kill()
    backend = url.split(":", 1)[0].split("+")[0]
    figures = json.dumps({"backend": backend, "kills": len(latencies),
                          "median_s": round(statistics.median(latencies), 3), "max_s": round(max(latencies), 3),
                          "min_s": round(min(latencies), 3), "load_average": os.getloadavg(),
                          "all_s": [round(x, 3) for x in latencies]})
    print(figures)
    path = options.json or HERE / "results" / f"resume_latency-{backend}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(figures + "\n")


if __name__ == "__main__":
    main()
