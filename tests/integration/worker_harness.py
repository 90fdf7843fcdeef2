"""Helpers for the `nas worker` process tests: fresh databases, queued synthetic tasks, worker processes.

Every test gets its own database (a temp SQLite file, or a fresh PostgreSQL database created on
the server in NASCLI_TEST_PG_URL and dropped afterwards) so parallel test runs never share a queue.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest

from nascli.store import EvaluationRequest, open_store
from nascli.task import Task
from tests.helpers import clean_env, nas_command

PG_URL = os.environ.get("NASCLI_TEST_PG_URL")
REQUIRE_PG = os.environ.get("NASCLI_REQUIRE_PG") == "1"

# "<worker> evaluation 12 val_accuracy=..." / "... failed (...)"; discarded results say so.
_WRITTEN = re.compile(r" evaluation (\d+) (?:val_accuracy=|failed \()(?!.*-- discarded)")


def need_pg() -> str:
    if PG_URL:
        return PG_URL
    if REQUIRE_PG:
        pytest.fail("NASCLI_REQUIRE_PG=1 but NASCLI_TEST_PG_URL is not set")
    pytest.skip("NASCLI_TEST_PG_URL not set (PostgreSQL tests)")


def libpq_dsn(sqlalchemy_url: str, database: str | None = None) -> str:
    """postgresql+psycopg://u@h:p/db -> postgresql://u@h:p/<database or db> (for psycopg directly)."""
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


@contextmanager
def fresh_pg_database(server_url: str):
    """A new, empty database on the server of `server_url`; dropped (with its connections) afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"nascli_worker_{secrets.token_hex(4)}"
    with psycopg.connect(libpq_dsn(server_url, "postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq_dsn(server_url, "postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def synthetic_tasks(count: int, seconds: float = 0.0, **task_keys) -> list[Task]:
    """`count` distinct valid genomes (different filters and kernels) as synthetic tasks."""
    tasks = []
    for index in range(count):
        filters, kernel = 1 + index % 500, 1 + (index // 500) % 5
        genome = f"In_8_8:C_{kernel}-{kernel}-1-1-{filters}:D_10"
        tasks.append(Task(genome=genome, task={"kind": "synthetic", "dataset": "synthetic",
                                               "synthetic_seconds": seconds, **task_keys},
                          train={"epochs": 3, "patience": 1}, search_space={"max_params": 10_000_000}))
    return tasks


def prepare_run(url: str, tasks: list[Task], worker_config: dict | None = None) -> str:
    store = open_store(url, create=True)
    try:
        run = store.create_run("worker-test", "random", None, 0, {"worker": worker_config or {}})
        store.enqueue(run.id, [EvaluationRequest(None, task) for task in tasks])
        return run.id
    finally:
        store.close()


def start_worker(url: str, log_dir: Path, *args: str) -> subprocess.Popen:
    """A real `nas worker` process; stderr (its log) goes to a file in log_dir."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / f"worker-{time.monotonic_ns()}-{secrets.token_hex(2)}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(nas_command("worker", "--db", url, *args), stdout=log, stderr=subprocess.STDOUT,
                               env=clean_env(PYTHONUNBUFFERED="1"))
    process.log_path = log.name  # type: ignore[attr-defined]
    log.close()
    return process


def wait_all(processes: list[subprocess.Popen], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(timeout=max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            for other in processes:
                if other.poll() is None:
                    other.send_signal(signal.SIGKILL)
            raise AssertionError(f"workers still running after {timeout} s; logs: "
                                 f"{[p.log_path for p in processes]}") from None
    return codes


def written_by_logs(log_dir: Path) -> Counter:
    """How many times the workers' logs say they wrote each evaluation's result."""
    counts: Counter = Counter()
    for path in log_dir.glob("*.log"):
        for match in _WRITTEN.finditer(path.read_text(errors="replace")):
            counts[int(match.group(1))] += 1
    return counts


def log_text(log_dir: Path) -> str:
    return "\n".join(path.read_text(errors="replace") for path in sorted(log_dir.glob("*.log")))


def assert_done_exactly_once(url: str, run_id: str, expected: int) -> None:
    """Every queued task finished, once: one done row each, one completion sequence number each."""
    store = open_store(url)
    try:
        rows = store.evaluations(run_id)
        finished = store.results(run_id)
    finally:
        store.close()
    assert len(rows) == expected
    statuses = Counter(row.status for row in rows)
    failures = [(row.id, row.attempt, row.lease_expiries, row.failures, row.result and row.result.error_kind,
                 row.result and row.result.error_message) for row in rows if row.status != "done"]
    assert statuses == {"done": expected}, (statuses, failures[:5])
    ids = [f.evaluation_id for f in finished]
    assert len(ids) == len(set(ids)) == expected
    assert sorted(f.seq for f in finished) == list(range(1, expected + 1))

