"""Who drives a run: the liveness token lets `nas resume` take over from a dead driver at once, and
refuses (exit 3) while the driver lives — killed, concurrent, SIGSTOPped drivers, on both backends.
Real `nas run` / `nas resume` processes with the default 30 s driver lease, so nothing here waits
for a lease to expire."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest
from driver_harness import LONG_RUN, Driver, pause_outside_a_write, run_row, start_long_run

from nascli.store import open_store

EXIT_RUN_BUSY = 3


def written_rows(url: str, run_id: str) -> dict:
    """What the drivers of a run have written so far."""
    store = open_store(url)
    try:
        return {"events": len(store.events(run_id)), "individuals": len(store.individuals(run_id)),
                "evaluations": len(store.evaluations(run_id))}
    finally:
        store.close()


def assert_nothing_written_twice(url: str, run_id: str) -> None:
    store = open_store(url)
    try:
        individuals = store.individuals(run_id)
        keys = Counter((i.island, i.generation, i.slot) for i in individuals)
        per_individual = Counter(e.individual_id for e in store.evaluations(run_id) if e.individual_id is not None)
        asks = [e.payload["keys"] for e in store.events(run_id) if e.kind == "ask"]
    finally:
        store.close()
    assert max(keys.values()) == 1
    assert max(per_individual.values()) == 1, "an individual was queued twice"
    issued = Counter(tuple(key) for keys_of_ask in asks for key in keys_of_ask)
    assert max(issued.values()) == 1, "a child was asked for twice"


@pytest.mark.slow
def test_resume_right_after_a_sigkill_takes_over_at_once(store_url: str) -> None:
    driver, run_id = start_long_run(store_url)
    dead_owner = run_row(store_url, run_id).driver_owner
    driver.process.send_signal(signal.SIGKILL)
    driver.wait()
    killed_at = time.monotonic()
    resumed = Driver("resume", run_id, "--workers", "1", "--db", store_url)
    try:
        resumed.wait_for_line(f"resuming run {run_id}")
        took = time.monotonic() - killed_at
        row = run_row(store_url, run_id)
        assert row.driver_owner not in (None, dead_owner)
        assert row.driver_lease_expires_at - time.time() > 20  # the dead driver's 30 s lease was not waited for
        assert took < 25, f"took {took:.1f} s"  # generous: start-up on a loaded machine; the benchmark measures
    finally:
        resumed.process.send_signal(signal.SIGINT)
        assert resumed.wait() == 130, resumed.output
    assert run_row(store_url, run_id).status == "interrupted"
    assert_nothing_written_twice(store_url, run_id)


@pytest.mark.slow
def test_concurrent_resumes_one_drives_the_other_exits_busy(store_url: str) -> None:
    driver, run_id = start_long_run(store_url)
    driver.kill()
    first = Driver("resume", run_id, "--workers", "1", "--db", store_url)
    second = Driver("resume", run_id, "--workers", "1", "--db", store_url)
    try:
        busy = None
        deadline = time.monotonic() + 90
        while busy is None and time.monotonic() < deadline:
            busy = next((d for d in (first, second) if d.process.poll() is not None), None)
            time.sleep(0.05)
        assert busy is not None, "neither resume was refused"
        driving = second if busy is first else first
        assert busy.wait() == EXIT_RUN_BUSY, busy.output
        assert f"run {run_id} is being driven by a live driver" in busy.output
        assert busy.output.count("error:") == 1 and "Traceback" not in busy.output
        driving.wait_for_line(f"resuming run {run_id}")
        assert driving.process.poll() is None
    finally:
        for process in (first, second):
            if process.process.poll() is None:
                process.process.send_signal(signal.SIGINT)
                assert process.wait() == 130, process.output
    assert_nothing_written_twice(store_url, run_id)


@pytest.mark.slow
def test_a_stopped_driver_keeps_its_run_and_wait_takes_over_when_it_ends(store_url: str) -> None:
    driver, run_id = start_long_run(store_url)
    owner = run_row(store_url, run_id).driver_owner
    pause_outside_a_write(driver, store_url)
    try:
        before = written_rows(store_url, run_id)
        for force in ([], ["--force"]):  # the lease is live: --force does not take it either
            refused = Driver("resume", run_id, "--workers", "1", "--db", store_url, *force)
            assert refused.wait() == EXIT_RUN_BUSY, refused.output
            assert "is being driven by a live driver" in refused.output
        assert written_rows(store_url, run_id) == before  # nothing written while the driver is stopped
        assert run_row(store_url, run_id).driver_owner == owner
        waiting = Driver("resume", run_id, "--wait", "--workers", "1", "--db", store_url)
        time.sleep(1.0)
        assert waiting.process.poll() is None and "resuming" not in waiting.output
        assert written_rows(store_url, run_id) == before
    finally:
        driver.process.send_signal(signal.SIGCONT)
    driver.process.send_signal(signal.SIGINT)
    assert driver.wait() == 130, driver.output
    try:
        waiting.wait_for_line(f"resuming run {run_id}")
    finally:
        waiting.process.send_signal(signal.SIGINT)
        assert waiting.wait() == 130, waiting.output
    assert_nothing_written_twice(store_url, run_id)


@pytest.mark.slow
def test_an_error_after_the_run_exists_marks_it_failed_with_the_reason(store_url: str) -> None:
    # The driver finds its only local worker gone (killed here): a NascliError in the drive loop.
    from test_local_workers import children_of

    driver, run_id = start_long_run(store_url)
    for worker in children_of(driver.process.pid):
        os.kill(worker, signal.SIGKILL)
    assert driver.wait(60) == 2, driver.output
    assert driver.output.count("error:") == 1 and "every local worker" in driver.output
    store = open_store(store_url)
    try:
        run = store.get_run(run_id)
        failed = [e.payload for e in store.events(run_id) if e.kind == "failed"]
    finally:
        store.close()
    assert run.status == "failed" and run.driver_owner is None
    assert len(failed) == 1 and "every local worker" in failed[0]["reason"]


@pytest.mark.slow
@pytest.mark.postgres
def test_a_driver_whose_token_connection_was_cut_is_taken_over_and_stops(pg_schema_url: str) -> None:
    import psycopg
    from worker_harness import libpq_dsn

    driver, run_id = start_long_run(pg_schema_url)
    driver.process.send_signal(signal.SIGSTOP)  # paused, so it cannot take its token again before the resume does
    with psycopg.connect(libpq_dsn(pg_schema_url.split("?")[0]), autocommit=True) as admin:
        schema = pg_schema_url.rsplit("%3D", 1)[1]
        (cut,) = admin.execute(  # the session holding this run's advisory lock: the driver's token connection
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND "
            "((classid::bigint << 32) | objid::bigint) = hashtextextended('nascli-driver:' || %s || ':' || %s, 0)",
            (schema, run_id)).fetchone()
    assert cut
    resumed = Driver("resume", run_id, "--workers", "1", "--db", pg_schema_url)
    try:
        resumed.wait_for_line(f"resuming run {run_id}")
        driver.process.send_signal(signal.SIGCONT)
        assert driver.wait(60) == 2, driver.output  # its next fenced step (or token check) finds the takeover
        assert f"another driver took run {run_id} over" in driver.output
        assert resumed.process.poll() is None
    finally:
        driver.process.send_signal(signal.SIGCONT)
        driver.kill()
        resumed.process.send_signal(signal.SIGINT)
        assert resumed.wait() == 130, resumed.output
    assert run_row(pg_schema_url, run_id).status == "interrupted"
    assert_nothing_written_twice(pg_schema_url, run_id)


@pytest.mark.slow
def test_a_resumed_driver_says_which_evaluations_it_waits_on(tmp_path) -> None:
    from worker_harness import start_worker

    url = f"sqlite:///{tmp_path / 'nas.db'}"
    driver = Driver("run", *LONG_RUN, "--set", "task.synthetic_seconds=60", "--workers", "0", "--db", url)
    run_id = driver.wait_for_line("started run").split()[-1]
    worker = start_worker(url, tmp_path / "logs", "--run", run_id, "--lease", "120")
    try:
        store = open_store(url)
        try:
            deadline = time.monotonic() + 90
            while not (held := store.evaluations(run_id, status="running")):
                assert time.monotonic() < deadline, "the external worker never claimed a task"
                time.sleep(0.1)
        finally:
            store.close()
        driver.kill()  # the external worker keeps its task
        resumed = Driver("resume", run_id, "--workers", "0", "--db", url)
        try:
            line = resumed.wait_for_line("waiting on evaluations still held by workers")
            assert f"{held[0].id} (" in line
        finally:
            resumed.process.send_signal(signal.SIGINT)
            assert resumed.wait() == 130, resumed.output
    finally:
        worker.kill()
        worker.wait()
