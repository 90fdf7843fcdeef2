"""Klos #9 initial walks (ga.init_proxy) are distributed and resumable: the driver is killed (SIGKILL)
while the proxy evaluations of the walks are under way, `nas resume` carries on, and the run makes
exactly the decisions of a run left alone: the same proxy evaluations (each genome once), the same
initial individuals, the same search after them.

Real processes: `nas run` / `nas resume` with local workers on SQLite, the synthetic evaluator."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from nascli.store import open_store
from tests.helpers import clean_env, nas_command

SETTINGS = ["--preset", "synthetic-quick", "--seed", "7", "--set", "ga.init_proxy=true",
            "--set", "ga.init_mutations=10", "--set", "ga.generations=2", "--set", "task.synthetic_seconds=0.03"]


def state(url: str) -> dict:
    store = open_store(url)
    try:
        (run,) = store.list_runs()
        individuals = store.individuals(run.id)
        by_id = {i.id: (i.island, i.generation, i.slot) for i in individuals}
        evaluations = store.evaluations(run.id)
        proxies = [e for e in evaluations if e.individual_id is None]
        return {
            "status": run.status,
            "individuals": sorted((by_id[i.id], i.genome, tuple(sorted(by_id[p] for p in i.parents)), i.operator)
                                  for i in individuals),
            "proxy_genomes": sorted(e.genome for e in proxies),
            "proxy_scores": sorted((e.genome, e.result.val_accuracy) for e in proxies if e.result),
            "unfinished": [e.id for e in evaluations if e.status not in ("done", "failed")],
        }
    finally:
        store.close()


def run_started(url: str) -> bool:
    if not Path(url.removeprefix("sqlite:///")).exists():
        return False
    try:
        store = open_store(url)
    except Exception:  # noqa: BLE001 - the schema is being created
        return False
    try:
        return bool(store.list_runs())
    finally:
        store.close()


def progress(url: str) -> tuple[int, int, int]:
    """(finished proxy evaluations, pending ones, individual rows)."""
    store = open_store(url)
    try:
        (run,) = store.list_runs()
        proxies = [e.status for e in store.evaluations(run.id) if e.individual_id is None]
        return proxies.count("done"), proxies.count("pending"), len(store.individuals(run.id))
    finally:
        store.close()


@pytest.mark.slow
def test_an_initial_walk_killed_midway_resumes_to_the_same_decisions(tmp_path: Path) -> None:
    env = clean_env(NASCLI_DRIVER_LEASE_SECONDS="1.5")
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    subprocess.run(nas_command("run", *SETTINGS, "--workers", "2", "--db", reference), env=env, check=True,
                   capture_output=True, timeout=300)
    expected = state(reference)
    assert expected["status"] == "finished"
    walked = [individual for individual in expected["individuals"] if individual[0][1] == 0]
    assert len(walked) == 2 * 6
    assert len(set(expected["proxy_genomes"])) == len(expected["proxy_genomes"]) > 25  # each genome trained once

    # The first driver of the crashed run has one external worker that stops after 12 tasks, so the
    # walks are midway when the driver is killed: proxy evaluations finished, others still queued.
    crashed = f"sqlite:///{tmp_path / 'crashed.db'}"
    driver = subprocess.Popen(nas_command("run", *SETTINGS, "--workers", "0", "--db", crashed), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not run_started(crashed):
        assert driver.poll() is None, driver.stderr.read().decode()
        assert time.monotonic() < deadline, "the run did not start"
        time.sleep(0.05)
    worker = subprocess.run(nas_command("worker", "--db", crashed, "--max-tasks", "12", "--lease", "2"), check=False,
                            env=env, capture_output=True, text=True, timeout=120)
    assert worker.returncode == 0, worker.stderr
    time.sleep(0.5)  # the driver reads the last results and queues the next candidates
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    trained, pending, individuals = progress(crashed)
    assert trained == 12 and pending > 0 and individuals == 0  # midway through the walks
    time.sleep(1.6)  # the dead driver's lease expires
    subprocess.run(nas_command("resume", "--workers", "2", "--force", "--db", crashed), env=env, check=True,
                   capture_output=True, timeout=300)

    actual = state(crashed)
    assert actual["status"] == "finished" and actual["unfinished"] == []
    assert actual["proxy_genomes"] == expected["proxy_genomes"]  # the same proxy trainings, none twice
    assert actual["proxy_scores"] == expected["proxy_scores"]
    assert actual["individuals"] == expected["individuals"]  # the same walked genomes and search after them
