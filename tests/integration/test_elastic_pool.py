"""Elasticity on PostgreSQL: `nas worker` processes join and leave while a real driver
(`nas run --workers 0`) runs: 1 worker, then 8, then back to 2 (the six leavers get SIGTERM, some
of them mid-task). No work is lost or done twice, and `nas report RUN --section workers` says
who did what, matching the workers' own logs."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
from collections import Counter

import pytest

from nascli.store import open_store
from tests.helpers import clean_env, nas_command, wait_for
from tests.integration.worker_harness import fresh_pg_database, need_pg, start_worker, wait_all

# "<worker id> evaluation 12 val_accuracy=..." (written results only; discarded ones say so)
_WRITTEN_BY = re.compile(r"(\S+) evaluation (\d+) (?:val_accuracy=|failed \()(?!.*-- discarded)")
# 20 generations: enough work left after the scale-down that the two stayers are still busy while
# the six leavers exit, even on a loaded box (starting 7 workers and stopping 6 take seconds there).
SETTINGS = ["--set", "ga.islands=4", "--set", "ga.population=4", "--set", "ga.generations=20",
            "--set", "ga.offspring_per_generation=3", "--set", "task.synthetic_seconds=0.15",
            "--set", "worker.lease_seconds=30"]


def environment() -> dict[str, str]:
    return clean_env(PYTHONUNBUFFERED="1", COLUMNS="300")


def finished_count(store, run_id: str) -> int:
    counts = store.queue_counts(run_id)
    return counts["done"] + counts["failed"]


def wait_or_driver_exit(condition, what: str, timeout: float, driver: subprocess.Popen) -> None:
    """Until `condition` holds or the run ends early (the final checks then say how it ended)."""
    wait_for(lambda: driver.poll() is not None or condition(), timeout, what, step=0.1)


@pytest.mark.slow
@pytest.mark.postgres
def test_workers_join_and_leave_during_a_run(tmp_path):
    rng = random.Random(11)
    with fresh_pg_database(need_pg()) as url:
        subprocess.run(nas_command("init", "--db", url), check=True, capture_output=True, env=environment(),
                       timeout=120)
        driver_log = open(tmp_path / "driver.log", "wb")  # noqa: SIM115
        driver = subprocess.Popen(nas_command("run", "--preset", "synthetic-quick", "--seed", "3", "--name", "elastic",
                                      "--workers", "0", "--db", url, *SETTINGS),
                                  stdout=driver_log, stderr=subprocess.STDOUT, env=environment())
        logs = tmp_path / "logs"
        workers: list[subprocess.Popen] = []
        store = open_store(url)
        try:
            wait_or_driver_exit(lambda: store.list_runs(), "the run row", 120, driver)
            run_id = store.list_runs()[0].id
            total_planned = 4 * 4 + 4 * 20 * 3  # upper bound: cache hits need no worker

            workers.append(start_worker(url, logs, "--idle-timeout", "60"))
            wait_or_driver_exit(lambda: finished_count(store, run_id) >= 12, "the lone worker's first tasks",
                                120, driver)
            workers += [start_worker(url, logs, "--idle-timeout", "60") for _ in range(7)]
            # registered = signal handlers installed and claiming
            wait_or_driver_exit(lambda: len(store.workers()) == 8, "eight registered workers", 120, driver)
            at_eight = finished_count(store, run_id)
            wait_or_driver_exit(lambda: finished_count(store, run_id) >= at_eight + 30,
                                "eight workers' progress", 120, driver)

            # Back to two: SIGTERM six, whatever they are doing (some are mid-task and release it).
            leavers = rng.sample(workers, 6)
            for leaver in leavers:
                leaver.send_signal(signal.SIGTERM)
            assert wait_all(leavers, timeout=60) == [0] * 6
            stayers = [w for w in workers if w not in leavers]
            assert finished_count(store, run_id) < total_planned, "the run ended before scaling down"

            assert driver.wait(timeout=180) == 0, (tmp_path / "driver.log").read_text()[-3000:]
            for stayer in stayers:
                stayer.send_signal(signal.SIGTERM)
            assert wait_all(stayers, timeout=60) == [0, 0]

            run = store.get_run(run_id)
            rows = store.evaluations(run_id)
            results = store.results(run_id)
            individuals = store.individuals(run_id)
        finally:
            for process in [driver, *workers]:
                if process.poll() is None:
                    process.kill()
            driver_log.close()
            store.close()

        # Nothing lost: the run finished and every individual got exactly one finished evaluation.
        assert run.status == "finished"
        assert Counter(row.status for row in rows) == {"done": len(rows)}
        assert sorted(row.individual_id for row in rows) == sorted(i.id for i in individuals)
        assert sorted(r.seq for r in results) == list(range(1, len(rows) + 1))

        # Nothing twice: each trained evaluation was written by one worker, the one the row names.
        written = []
        for path in logs.glob("*.log"):
            written += [(worker, int(evaluation)) for worker, evaluation in _WRITTEN_BY.findall(path.read_text())]
        by_evaluation = Counter(evaluation for _, evaluation in written)
        assert all(n == 1 for n in by_evaluation.values()), by_evaluation.most_common(3)
        trained = {row.id: row.worker_id for row in rows if row.worker_id is not None}
        assert dict((evaluation, worker) for worker, evaluation in written) == trained
        released = [row for row in rows if row.releases]
        assert all(row.attempt > 1 for row in released)  # given back, then claimed again

        # Who did what, as the report shows it, agrees with the logs.
        report = subprocess.run(nas_command("report", run_id, "--section", "workers", "--format", "json", "--db", url),
                                capture_output=True, text=True, env=environment(), timeout=120)
        assert report.returncode == 0, report.stderr
        per_worker = {row["worker_id"]: row["evaluations_done"] for row in json.loads(report.stdout)["workers"]}
        assert per_worker == dict(Counter(worker for worker, _ in written))
        assert sum(per_worker.values()) == len(trained)
        assert len(per_worker) >= 3  # the lone worker plus some of the seven that joined
        print(f"elastic run {run_id}: {len(rows)} evaluations, {len(trained)} trained by {len(per_worker)} "
              f"workers ({sorted(per_worker.values())}), {len(released)} released by leavers and redone")
