"""Restart PostgreSQL under running `nas worker` processes: they reconnect and finish, nothing lost.

Uses a PRIVATE cluster (initdb into a temp dir owned by `postgres`, a random free port on
127.0.0.1), never the shared server, and removes it afterwards.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from worker_harness import (
    REQUIRE_PG,
    assert_done_exactly_once,
    log_text,
    prepare_run,
    start_worker,
    synthetic_tasks,
    wait_all,
)

from nascli.store import open_store
from tests.helpers import free_port

PG_BIN = Path(os.environ.get("NASCLI_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _unavailable() -> str | None:
    if not (PG_BIN / "initdb").exists():
        return f"no PostgreSQL server binaries in {PG_BIN}"
    if os.geteuid() != 0:
        return "needs root to run a private cluster as the postgres user"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres user"
    return None


def as_postgres(command: str, timeout: float = 60) -> None:
    subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", command], check=True, timeout=timeout,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class PrivateCluster:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="nascli-pg-"))
        self.data = self.dir / "data"
        shutil.chown(self.dir, "postgres")
        self.port = free_port()
        as_postgres(f"{PG_BIN}/initdb -D {self.data} -A trust -U postgres --no-sync")
        self.start()
        as_postgres(f"{PG_BIN}/createdb -h 127.0.0.1 -p {self.port} -U postgres nascli")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/nascli"

    def start(self) -> None:
        as_postgres(f"{PG_BIN}/pg_ctl -D {self.data} -l {self.dir}/server.log -w -o "
                    f"'-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off' start")

    def stop(self, mode: str = "fast") -> None:
        as_postgres(f"{PG_BIN}/pg_ctl -D {self.data} -m {mode} -w stop")

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_cluster():
    reason = _unavailable()
    if reason:
        if REQUIRE_PG:
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = PrivateCluster()
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.mark.slow
@pytest.mark.postgres
def test_workers_survive_a_postgresql_restart(private_cluster, tmp_path):
    url = private_cluster.url
    tasks = 90
    run_id = prepare_run(url, synthetic_tasks(tasks, seconds=0.3))
    logs = tmp_path / "logs"
    workers = [start_worker(url, logs, "--run", run_id, "--lease", "20", "--idle-timeout", "3") for _ in range(3)]
    store = open_store(url)
    try:
        deadline = time.monotonic() + 60
        while store.queue_counts(run_id)["done"] < 15:
            assert time.monotonic() < deadline, "workers made no progress before the restart"
            time.sleep(0.1)
    finally:
        store.close()
    # A crash-like stop (connections cut, no checkpoint) and 2 s of downtime: longer than any one
    # query, shorter than the 20 s lease, so each worker's claim is still valid when the server is back.
    private_cluster.stop("immediate")
    time.sleep(2.0)
    private_cluster.start()
    assert wait_all(workers, timeout=120) == [0, 0, 0]
    assert_done_exactly_once(url, run_id, tasks)
    text = log_text(logs)
    assert "Traceback" not in text
