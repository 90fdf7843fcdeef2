"""Hung evaluations end (train.max_seconds, nascli.train.time_limit), with real `nas` processes:

- an evaluation that takes longer than its limit is stopped and recorded as `timeout` (terminal:
  one attempt), and the run still finishes, with the exit code of a run whose evaluations failed;
- a training that ignores the limit (NASCLI_INJECT_HANG_ONCE: it never returns) makes its worker
  exit with EXIT_HUNG_EVALUATION and one log line; the task goes back to the queue when its lease
  expires and another worker finishes it; under `nas run` the driver starts the worker again.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from worker_harness import assert_done_exactly_once, prepare_run, synthetic_tasks, wait_all

from nascli.store import open_store
from nascli.train.time_limit import EXIT_HUNG_EVALUATION, INJECT_HANG_ENV
from tests.helpers import clean_env, nas_command, one_torch_thread, run_nas  # noqa: F401 - autouse fixture

SMALL_RUN = ("--preset", "synthetic-quick", "--workers", "1", "--set", "ga.population=2", "--set",
             "ga.generations=2", "--set", "migration.period=1")
QUICK_LEASE = ("--set", "worker.lease_seconds=2", "--set", "worker.heartbeat_seconds=0.5")


def evaluation_rows(url: str) -> list:
    store = open_store(url)
    try:
        (run,) = store.list_runs()
        return store.evaluations(run.id)
    finally:
        store.close()


@pytest.mark.slow
def test_an_evaluation_past_its_limit_is_recorded_as_timeout_and_the_run_finishes(store_url: str) -> None:
    started = time.monotonic()
    result = run_nas("run", *SMALL_RUN, "--db", store_url, "--set", "task.synthetic_seconds=30",
                     "--set", "train.max_seconds=0.3", timeout=120)
    took = time.monotonic() - started
    rows = evaluation_rows(store_url)
    # every evaluation failed: exit 1 (README, "Exit codes"), one line naming the kind
    assert result.returncode == 1, result.stderr
    assert "timeout" in result.stderr.strip().splitlines()[-1]
    assert rows and {(row.status, row.result.error_kind, row.attempt) for row in rows} == {("failed", "timeout", 1)}
    assert all("train.max_seconds" in row.result.error_message for row in rows)
    assert took < 30, f"{len(rows)} evaluations of 30 s each took {took:.1f} s: the limit did not stop them"
    report = run_nas("report", rows[0].run_id, "--db", store_url, "--format", "json")
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["summary"]["failures_by_kind"] == {"timeout": len(rows)}


@pytest.mark.slow
def test_a_worker_whose_training_ignores_the_limit_exits_and_another_worker_finishes(store_url: str,
                                                                                      tmp_path: Path) -> None:
    tasks = synthetic_tasks(3)
    tasks = [type(task)(**{**task.__dict__, "train": {**task.train, "max_seconds": 1.0}}) for task in tasks]
    run_id = prepare_run(store_url, tasks)
    hang_marker = tmp_path / "hang-once"
    log_a = tmp_path / "worker-a.log"
    with open(log_a, "wb") as log:
        hung = subprocess.Popen(nas_command("worker", "--db", store_url, "--run", run_id, "--lease", "3",
                                            "--idle-timeout", "5"),
                                stdout=log, stderr=subprocess.STDOUT,
                                env=clean_env(PYTHONUNBUFFERED="1", **{INJECT_HANG_ENV: str(hang_marker)}))
    assert hung.wait(timeout=60) == EXIT_HUNG_EVALUATION, log_a.read_text()
    exited_at = time.monotonic()
    lines = [line for line in log_a.read_text().splitlines() if "does not return" in line]
    assert len(lines) == 1 and "train.max_seconds" in lines[0] and "another worker" in lines[0], log_a.read_text()
    (held,) = [row for row in evaluation_rows(store_url) if row.status == "running"]  # not heartbeaten, not released

    log_b = tmp_path / "worker-b.log"
    with open(log_b, "wb") as log:
        other = subprocess.Popen(nas_command("worker", "--db", store_url, "--run", run_id, "--lease", "3",
                                             "--idle-timeout", "5"),
                                 stdout=log, stderr=subprocess.STDOUT, env=clean_env(PYTHONUNBUFFERED="1"))
    other.log_path = str(log_b)  # type: ignore[attr-defined]
    assert wait_all([other], timeout=60) == [0], log_b.read_text()
    assert_done_exactly_once(store_url, run_id, 3)
    row = next(row for row in evaluation_rows(store_url) if row.id == held.id)
    assert row.lease_expiries == 1 and row.worker_id != held.worker_id  # re-queued by the expiry path
    assert time.monotonic() - exited_at < 30


@pytest.mark.slow
def test_the_driver_restarts_a_local_worker_that_exited_on_a_hung_evaluation(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    cache = tmp_path / "cache"
    env = clean_env(XDG_CACHE_HOME=str(cache), **{INJECT_HANG_ENV: str(tmp_path / "hang-once")})
    result = run_nas("run", *SMALL_RUN, *QUICK_LEASE, "--db", url, "--set", "train.max_seconds=1", env=env,
                     timeout=180)
    assert result.returncode == 0, result.stderr
    (log,) = (cache / "nascli" / "logs").glob("*-worker-0.log")
    text = log.read_text()
    assert text.count("does not return") == 1 and "the driver restarts it" in text, text
    rows = evaluation_rows(url)
    assert {row.status for row in rows} == {"done"}
    assert sorted(row.lease_expiries for row in rows)[-1] == 1  # the hung one came back after its lease


@pytest.mark.slow
def test_real_training_past_its_limit_is_recorded_as_timeout(tmp_path: Path) -> None:
    """The torch trainer obeys the limit too (it polls should_stop between batches): in-process worker,
    real digits training of 10,000 epochs, limit 1 s. The lease is long: the first batch comes after
    the data load and model build (14 s at load 22 on 2 cores), and half a lease past the limit
    the watchdog would end this process."""
    import dataclasses

    from nascli.config import resolve, task_for
    from nascli.store import EvaluationRequest
    from nascli.worker import Worker, WorkerOptions

    cfg = resolve(preset="digits-quick", overrides=["train.epochs=10000", "train.patience=10000",
                                                    "train.max_seconds=1"])
    task = task_for(cfg, "In_8_8:C_3-3-1-1-16:P_2-2-2-2-0:D_1-1-1-1-32:D_10", 0)
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    store = open_store(url, create=True)
    try:
        run = store.create_run("limit", "random", None, 0, {"worker": {"lease_seconds": 600}})
        store.enqueue(run.id, [EvaluationRequest(None, dataclasses.replace(task, run_id=run.id))])
        started = time.monotonic()
        stats = Worker(store, WorkerOptions(run_id=run.id, max_tasks=1)).run()
        took = time.monotonic() - started
        (row,) = store.evaluations(run.id)
    finally:
        store.close()
    assert (stats.failed, row.status, row.result.error_kind) == (1, "failed", "timeout"), row.result
    assert "past its limit of 1 s" in row.result.error_message
    assert took < 120, f"the limit of 1 s ended the training after {took:.1f} s"
