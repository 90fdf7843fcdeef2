"""Runs as things a user manages, through the real CLI on both backends: RUN references, cancel,
delete, a second run of an unfinished name, a run where everything failed, `--format json`, the
cache scope."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nascli.errors import RunNotFoundError
from nascli.store import open_store
from tests.helpers import assert_one_line_error, run_nas, wait_for

QUICK = ("--preset", "synthetic-quick", "--set", "ga.generations=3")  # 2 islands x (6 + 3): 18 evaluations


def nas(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_nas(*args, cwd=cwd, timeout=timeout)


one_error_line = assert_one_line_error


def run_json(store_url: str, tmp_path: Path, *args: str) -> dict:
    result = nas("run", *QUICK, "--db", store_url, "--format", "json", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # the whole of stdout is one JSON object


def same_network(best: dict, other: dict) -> bool:
    return (best["genome"], best["val_accuracy"], best["params"]) == (other["genome"], other["val_accuracy"],
                                                                     other["params"])




# ---------------------------------------------------------------- RUN references


def test_a_run_is_found_by_id_latest_name_or_unique_prefix(store):
    first = store.create_run("baseline", "island-ga", None, 0, {})
    second = store.create_run("replicate", "island-ga", None, 1, {})
    third = store.create_run("replicate", "island-ga", None, 2, {})
    assert store.get_run(first.id).id == first.id
    assert store.get_run("latest").id == third.id
    assert store.get_run("baseline").id == first.id
    others = (second.id, third.id)
    unique = next(first.id[:n] for n in range(3, len(first.id) + 1)
                  if not any(other.startswith(first.id[:n]) for other in others))
    assert store.get_run(unique).id == first.id
    assert store.get_run(unique.removeprefix("r-")).id == first.id  # the prefix without `r-` too
    with pytest.raises(RunNotFoundError) as ambiguous_name:
        store.get_run("replicate")
    assert second.id in ambiguous_name.value.hint and third.id in ambiguous_name.value.hint
    with pytest.raises(RunNotFoundError) as ambiguous_prefix:
        store.get_run("r-")
    assert "ambiguous" in ambiguous_prefix.value.message and first.id in ambiguous_prefix.value.hint
    with pytest.raises(RunNotFoundError) as unknown:
        store.get_run("nothing-like-it")
    assert "baseline" in unknown.value.hint and "'latest'" in unknown.value.hint


def test_a_driven_run_is_not_deleted_and_a_stopped_one_is_not_cancelled(store):
    from nascli.errors import StoreError

    run = store.create_run("busy", "island-ga", None, 0, {})
    store.set_run_status(run.id, "running")
    assert store.acquire_driver_lease(run.id, "host:1:abc", 30)
    with pytest.raises(StoreError, match="being driven") as refused:
        store.delete_run(run.id)
    assert f"nas cancel {run.id}" in refused.value.hint
    assert store.get_run(run.id).status == "running"
    cancelled = store.cancel_run(run.id)
    assert (cancelled.pending, cancelled.running) == (0, 0) and store.get_run(run.id).status == "cancelled"
    with pytest.raises(StoreError, match="already cancelled"):
        store.cancel_run(run.id)
    with pytest.raises(StoreError, match="being driven"):  # until its driver has let go
        store.delete_run(run.id)
    store.release_driver_lease(run.id, "host:1:abc")
    assert store.delete_run(run.id).rows["runs"] == 1


# ---------------------------------------------------------------- nas run


@pytest.mark.slow  # `nas run` processes
def test_a_second_run_of_an_unfinished_name_is_refused(store_url, tmp_path):
    with open_store(store_url, create=True) as store:
        unfinished = store.create_run("nightly", "island-ga", None, 0, {})
    result = nas("run", *QUICK, "--db", store_url, "--name", "nightly", cwd=tmp_path)
    assert result.returncode == 2
    line = one_error_line(result)
    assert unfinished.id in line and f"nas resume {unfinished.id}" in line
    with open_store(store_url) as store:
        assert [run.id for run in store.list_runs()] == [unfinished.id]  # nothing started


@pytest.mark.slow  # `nas run` processes
def test_run_format_json_is_one_object_on_stdout_and_names_resolve(store_url, tmp_path):
    outcome = run_json(store_url, tmp_path, "--name", "scripted")
    assert outcome["status"] == "finished" and outcome["name"] == "scripted"
    assert outcome["evaluations"]["done"] == outcome["evaluations"]["planned"] == 18
    assert outcome["best"]["val_accuracy"] > 0 and outcome["best"]["genome"].startswith("In_8_8")
    report = nas("report", "scripted", "--db", store_url, "--format", "json", cwd=tmp_path)
    assert report.returncode == 0 and json.loads(report.stdout)["run_id"] == outcome["run_id"]


@pytest.mark.slow  # `nas run` processes
def test_a_run_where_every_evaluation_failed_exits_1_with_the_failure_kinds(store_url, tmp_path):
    result = nas("run", *QUICK, "--db", store_url, "--set", "task.synthetic_fail_genomes=['In']",
                 "--set", "task.synthetic_seconds=0", cwd=tmp_path)
    line = one_error_line(result, exit_code=1)
    assert "every evaluation of run" in line and "(18 crash)" in line
    with open_store(store_url) as store:
        assert store.get_run("latest").status == "failed"


@pytest.mark.slow  # `nas run` processes
def test_cache_scope_decides_whose_results_are_reused(store_url, tmp_path):
    full = ("--set", "ga.generations=20")  # 52 evaluations: long enough for identical genomes within the run
    first = run_json(store_url, tmp_path, *full)
    assert first["evaluations"]["reused"] > 0 and first["reused_from"] == []  # its own duplicates
    again = run_json(store_url, tmp_path, *full)  # scope database: everything from the first run
    assert again["evaluations"]["reused"] == 52 and again["reused_from"] == [first["run_id"]]
    own = run_json(store_url, tmp_path, *full, "--set", 'cache.scope="run"')  # a seed replicate: only its own
    assert own["reused_from"] == [] and own["evaluations"]["reused"] == first["evaluations"]["reused"]
    off = run_json(store_url, tmp_path, *full, "--set", 'cache.scope="off"')
    assert off["evaluations"]["reused"] == 0 and same_network(off["best"], first["best"])


# ---------------------------------------------------------------- cancel


@pytest.mark.slow
def test_cancel_stops_the_driver_the_queue_and_running_evaluations(store_url, tmp_path):
    driver = subprocess.Popen(
        [sys.executable, "-m", "nascli", "run", "--preset", "synthetic-quick", "--db", store_url, "--workers", "0",
         "--name", "doomed", "--set", "task.synthetic_seconds=30", "--set", "worker.heartbeat_seconds=0.5",
         "--set", "worker.lease_seconds=20"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    worker_log = tmp_path / "worker.log"
    worker = None
    try:
        with open_store(store_url, create=True) as store:  # the driver may not have created it yet
            run = wait_for(lambda: next((r for r in store.list_runs() if r.name == "doomed"), None), 60, "the run")
            with worker_log.open("w") as log:
                worker = subprocess.Popen([sys.executable, "-m", "nascli", "worker", "--db", store_url, "--run",
                                           "doomed"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
            wait_for(lambda: store.queue_counts(run.id)["running"] >= 1, 60, "a running evaluation")
            cancelled = nas("cancel", "doomed", "--db", store_url, cwd=tmp_path)
            assert cancelled.returncode == 0 and f"cancelled run {run.id}" in cancelled.stdout
            # the driver notices at once (it checks its run's status every step) and ends with 1
            assert driver.wait(timeout=15) == 1
            # the worker's next heartbeat (0.5 s) is refused: it abandons the training, writes nothing
            wait_for(lambda: "abandoning the task" in worker_log.read_text(), 10, "the worker to abandon its task")
            counts = store.queue_counts(run.id)
            assert counts["pending"] == counts["running"] == counts["done"] == 0 and counts["cancelled"] >= 12
            assert store.get_run(run.id).status == "cancelled"
        report = nas("report", "doomed", "--db", store_url, "--format", "json", cwd=tmp_path)
        assert report.returncode == 0 and '"status": "cancelled"' in report.stdout
        resume = nas("resume", "doomed", "--db", store_url, cwd=tmp_path)
        assert resume.returncode == 2 and "cancelled" in one_error_line(resume)
        again = nas("cancel", run.id, "--db", store_url, cwd=tmp_path)
        assert again.returncode == 2 and "already cancelled" in one_error_line(again)
    finally:
        for process in (driver, worker):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


# ---------------------------------------------------------------- delete


@pytest.mark.slow
def test_delete_removes_one_run_in_full_and_other_runs_keep_what_they_reused(store_url, tmp_path):
    source = run_json(store_url, tmp_path, "--name", "source")
    reuser = run_json(store_url, tmp_path, "--name", "reuser")
    assert reuser["reused_from"] == [source["run_id"]]

    asked = nas("delete", "source", "--db", store_url, cwd=tmp_path)  # no terminal to ask in, no --yes
    assert asked.returncode == 2 and "--yes" in one_error_line(asked)
    with open_store(store_url) as store:
        assert store.get_run("source").id == source["run_id"]  # nothing deleted

    deleted = nas("delete", "source", "--yes", "--db", store_url, cwd=tmp_path)
    assert deleted.returncode == 0 and f"deleted run {source['run_id']}" in deleted.stdout
    with open_store(store_url) as store:
        with pytest.raises(RunNotFoundError):
            store.get_run(source["run_id"])
        left = store.db.read(lambda conn: [conn.exec_driver_sql(
            f"SELECT count(*) FROM {table} WHERE run_id = '{source['run_id']}'").scalar_one()
            for table in ("evaluation", "individual", "island", "migration", "event")], what="count")
        assert left == [0, 0, 0, 0, 0]
        assert store.queue_counts(reuser["run_id"])["done"] == 18
    report = nas("report", "reuser", "--db", store_url, "--format", "json", cwd=tmp_path)
    assert report.returncode == 0
    rows = nas("export", "reuser", "--all", "--format", "json", "--out", "-", "--db", store_url, cwd=tmp_path)
    assert rows.returncode == 0 and len(json.loads(rows.stdout)["rows"]) == 18
    third = run_json(store_url, tmp_path)  # the reusing run's copies serve the cache now
    assert third["reused_from"] == [reuser["run_id"]] and same_network(third["best"], source["best"])


def in_a_terminal(args: list[str], answer: str, cwd: Path) -> tuple[int, str]:
    """Run `nas ARGS` on a real pseudo-terminal; type `answer` once it asks. Returns (exit code, screen)."""
    import pty
    import select

    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "nascli", *args], cwd=cwd, stdin=slave, stdout=slave,
                               stderr=slave, close_fds=True)
    os.close(slave)
    screen, answered = b"", False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the terminal closed: the process ended
                    break
                if not chunk:
                    break
                screen += chunk
            if not answered and b"[y/N]" in screen:
                os.write(master, answer.encode() + b"\n")
                answered = True
            if process.poll() is not None and not ready:
                break
        return process.wait(timeout=30), screen.decode(errors="replace")
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()


@pytest.mark.slow  # two `nas` processes on a pseudo-terminal
def test_delete_asks_in_a_terminal_and_no_keeps_the_run(tmp_path):
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    with open_store(url, create=True) as store:
        run = store.create_run("keepsake", "island-ga", None, 0, {})
    code, screen = in_a_terminal(["delete", "keepsake", "--db", url], "n", tmp_path)
    assert code == 1 and f"Delete run {run.id} 'keepsake'" in screen and "nothing deleted" in screen
    with open_store(url) as store:
        assert store.get_run("keepsake").id == run.id
    code, screen = in_a_terminal(["delete", "keepsake", "--db", url], "y", tmp_path)
    assert code == 0 and f"deleted run {run.id}" in screen
    with open_store(url) as store:
        assert store.list_runs() == []
