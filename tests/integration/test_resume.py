"""Kill the driver (SIGKILL) at random instants, `nas resume`, and compare with a run left alone.

Real processes: `nas run` / `nas resume` drivers with local `nas worker` children on SQLite, the
synthetic evaluator (deterministic fitness). The resumed run must have made exactly the same
decisions: the same individuals (key, genome, parents, operator), the same final populations,
and every individual evaluated exactly once.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from nascli.store import open_store
from nascli.transfer import TRANSFER_DONOR_KEY
from tests.helpers import clean_env, nas_command

SETTINGS = ["--set", "task.synthetic_seconds=0.02", "--set", "ga.generations=60", "--set", "ga.islands=3",
            "--set", "migration.period=4"]


nas = nas_command


def environment() -> dict[str, str]:
    return clean_env(NASCLI_DRIVER_LEASE_SECONDS="1.5")  # a dead driver's lease blocks resume this long


def run_state(url: str) -> dict:
    store = open_store(url)
    try:
        run = store.list_runs()[0]
        individuals = store.individuals(run.id)
        by_id = {i.id: (i.island, i.generation, i.slot) for i in individuals}
        evaluations = store.evaluations(run.id)
        final = [e.payload for e in store.events(run.id) if e.kind == "final"]
        key_of_evaluation = {e.id: by_id[e.individual_id] for e in evaluations if e.individual_id in by_id}
        genome_of = {e.id: e.genome for e in evaluations}
        donors = _donors(url, run.id)
        return {
            "status": run.status,
            "individuals": sorted(((i.island, i.generation, i.slot), i.genome,
                                   tuple(sorted(by_id[p] for p in i.parents)),
                                   i.operator) for i in individuals),
            "evaluated": sorted(by_id[e.individual_id] for e in evaluations if e.status in ("done", "failed")),
            "unfinished": [e.id for e in evaluations if e.status not in ("done", "failed")],
            "final_populations": [
                [(m["key"], m["genome"]) for m in island["population"]] for island in final[-1]["islands"]
            ] if final else None,
            "migrations": [(m.generation, m.from_island, m.to_island, by_id[m.individual_id])
                           for m in store.migrations(run.id)],
            # the stop rule's decisions: (key, epoch it stopped at, the accuracy it reached)
            "stopped": sorted((by_id[e.individual_id], e.result.extra["stopped_at_epoch"], e.result.val_accuracy)
                              for e in evaluations if e.result and "stopped_at_epoch" in e.result.extra),
            # the transfer donor each queued child was sent: (child key, donor genome); the same model may
            # be stored under another evaluation after a crash (an identical genome trained first)
            "donors": sorted((key_of_evaluation[child], genome_of[donor]) for child, donor in donors.items()),
            # children whose donor's weights were gone when they trained (evicted while they were in
            # flight, e.g. by a resumed driver that forgot who was waiting for them)
            "missing_donor": sorted(by_id[e.individual_id] for e in evaluations
                                    if e.result and (e.result.extra.get("transfer") or {}).get("missing")),
        }
    finally:
        store.close()


def _donors(url: str, run_id: str) -> dict[int, int]:
    """evaluation id -> the donor evaluation id its task names (train.transfer)."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        rows = connection.execute("SELECT id, task_json FROM evaluation WHERE run_id = ?", (run_id,)).fetchall()
    named = {evaluation: json.loads(task)["train"].get(TRANSFER_DONOR_KEY) for evaluation, task in rows}
    return {evaluation: donor for evaluation, donor in named.items() if donor is not None}


def finished_count(url: str) -> int:
    """Finished evaluations so far (0 while the database or run does not exist yet)."""
    if not run_exists(url):
        return 0
    store = open_store(url)
    try:
        counts = store.queue_counts()
        return counts["done"] + counts["failed"]
    finally:
        store.close()


def wait_then_kill(driver: subprocess.Popen, ready, delay: float, timeout: float = 240) -> bool:
    """SIGKILL the driver `delay` s after `ready()` holds; False if it exited by itself first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if driver.poll() is not None:
            return False
        if time.monotonic() > deadline:
            driver.kill()
            pytest.fail("the driver made no progress")
        time.sleep(0.05)
    try:
        driver.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        return True


def run_status(url: str) -> str | None:
    if not run_exists(url):
        return None
    store = open_store(url)
    try:
        return store.list_runs()[0].status
    finally:
        store.close()


def run_exists(url: str) -> bool:
    if not Path(url.removeprefix("sqlite:///")).exists():
        return False
    try:
        store = open_store(url)
    except Exception:  # killed while the schema was being created: start again
        return False
    try:
        return bool(store.list_runs())
    finally:
        store.close()


# The stop rule's comparison curve (below-worst: the destination island's worst member) travels
# with each task; a resumed run must send the same curves and so stop the same children.
STOP_RULE = ["--set", "train.stop_rule=below-worst", "--set", "train.stop_margin=0.01", "--set",
             "train.stop_min_epochs=2"]


# The transfer donor (repository: the kept model with the longest common genome prefix) travels with
# each task too; a resumed run must name the same donors.
TRANSFER = ["--set", "train.transfer=repository", "--set", "train.repository_top_k=3"]


@pytest.mark.slow
@pytest.mark.parametrize("extra", [pytest.param([], id="plain"), pytest.param(STOP_RULE, id="stop-rule"),
                                   pytest.param(TRANSFER + STOP_RULE, id="transfer-and-stop-rule")])
def test_killed_and_resumed_run_equals_uninterrupted_run(tmp_path: Path, extra: list[str]) -> None:
    env = environment()
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    subprocess.run(nas("run", "--preset", "synthetic-quick", "--seed", "7", "--workers", "2", "--db", reference,
                       *SETTINGS, *extra), env=env, check=True, capture_output=True, timeout=300)
    expected = run_state(reference)
    assert expected["status"] == "finished"
    children = [individual for individual in expected["individuals"] if individual[3] != "migration"]
    assert len(children) == 3 * 6 + 3 * 60
    # every migrant's copy is an individual of its destination island
    assert len(expected["individuals"]) == len(children) + len(expected["migrations"])
    assert bool(expected["stopped"]) == bool(extra)  # the rule stopped children, and only when asked
    assert bool(expected["donors"]) == (TRANSFER[1] in extra)  # donors were named, and only when asked

    crashed = f"sqlite:///{tmp_path / 'crashed.db'}"
    rng = random.Random(2026)
    kills = 0
    command = nas("run", "--preset", "synthetic-quick", "--seed", "7", "--workers", "2", "--db", crashed, *SETTINGS,
                  *extra)
    for _ in range(60):
        driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Kill points are chosen by progress, not by wall time, so a loaded machine still crashes the
        # driver mid-run: after 1-15 more finished evaluations plus up to 0.3 s, or (1 in 5) at any
        # instant of its first 1.5 s (start-up, replay, the initial asks).
        if kills < 12 and rng.random() < 0.2:
            killed = wait_then_kill(driver, lambda: True, delay=rng.uniform(0.0, 1.5))
        elif kills < 12:
            baseline = finished_count(crashed)
            target = baseline + rng.randint(1, 15)
            killed = wait_then_kill(driver, lambda target=target: finished_count(crashed) >= target,
                                    delay=rng.uniform(0, 0.3))
        else:
            killed = wait_then_kill(driver, lambda: False, delay=0.0)
        if killed and run_status(crashed) == "finished":
            break  # killed after it recorded the finish, before it exited: nothing left to resume
        if killed:
            kills += 1
            time.sleep(1.6)  # let the dead driver's lease expire
            if run_exists(crashed):  # killed before the run row was written: start it again
                command = nas("resume", "--workers", "2", "--force", "--db", crashed)
            continue
        assert driver.returncode == 0, driver.stderr.read().decode()
        break
    else:
        pytest.fail("the run did not finish after 60 restarts")
    assert kills >= 10, f"only {kills} kills happened; make the run longer"

    actual = run_state(crashed)
    assert actual["status"] == "finished"
    assert actual["unfinished"] == []
    assert actual["individuals"] == expected["individuals"]
    assert actual["evaluated"] == [key for key, *_ in expected["individuals"]]  # each exactly once
    assert actual["final_populations"] == expected["final_populations"]
    assert actual["migrations"] == expected["migrations"]
    assert actual["stopped"] == expected["stopped"]
    assert actual["missing_donor"] == expected["missing_donor"] == []
    assert actual["donors"] == expected["donors"]
