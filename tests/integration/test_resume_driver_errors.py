"""`nas resume` against a run someone else drives, through the CLI as a user runs it: a live driver
refuses it in one line (exit 3), a dead driver's expired lease is taken over without `--force`, and
a paused driver whose lease `--force` took over stops in one line when it wakes (exit 2). Real
`nas run` / `nas resume` processes on both backends; the finished-run and nothing-to-resume errors
are in test_bad_input_writes_nothing.py."""

from __future__ import annotations

import signal

import pytest
from driver_harness import (
    Driver,
    environment,
    finished_evaluations,
    pause_outside_a_write,
    run_row,
    start_long_run,
)
from test_driver_takeover import EXIT_RUN_BUSY, assert_nothing_written_twice

from nascli.store import open_store
from tests.helpers import assert_one_line_error, run_nas, wait_for

# A lease short enough to expire within a test, long enough that a loaded machine's driver renews it
# (every lease/3 s and every step) before it does.
SHORT_LEASE = "6"


def lease_seconds_left(url: str, run_id: str) -> float:
    store = open_store(url)
    try:
        return (store.get_run(run_id).driver_lease_expires_at or 0) - store.db_now()
    finally:
        store.close()


def stop(driver: Driver) -> None:
    if driver.process.poll() is None:
        driver.process.send_signal(signal.SIGINT)
        assert driver.wait() == 130, driver.output


@pytest.mark.slow
def test_resume_of_a_run_a_live_driver_drives_is_refused_in_one_line(store_url: str) -> None:
    driver, run_id = start_long_run(store_url)
    owner = run_row(store_url, run_id).driver_owner
    try:
        line = assert_one_line_error(run_nas("resume", run_id, "--workers", "1", "--db", store_url),
                                     f"run {run_id} is being driven by a live driver, {owner} (its lease runs ",
                                     f"`nas resume {run_id} --wait`", exit_code=EXIT_RUN_BUSY)
        assert "--force` takes over once its lease has expired" in line
        # --force takes an expired lease only: this one is live
        assert_one_line_error(run_nas("resume", run_id, "--force", "--workers", "1", "--db", store_url),
                              f"run {run_id} is being driven by a live driver, {owner}",
                              "--force takes over an expired lease only", exit_code=EXIT_RUN_BUSY)
        # the driver drives on, unaffected
        assert run_row(store_url, run_id).driver_owner == owner and driver.process.poll() is None
        done = finished_evaluations(store_url, run_id)
        wait_for(lambda: finished_evaluations(store_url, run_id) > done, 60, "a result after the refused resumes")
        assert run_row(store_url, run_id).driver_owner == owner
    finally:
        stop(driver)
    assert_nothing_written_twice(store_url, run_id)


@pytest.mark.slow
def test_a_dead_drivers_expired_lease_is_taken_over_without_force(store_url: str) -> None:
    driver, run_id = start_long_run(store_url, env=environment(NASCLI_DRIVER_LEASE_SECONDS=SHORT_LEASE))
    dead_owner = run_row(store_url, run_id).driver_owner
    driver.kill()
    wait_for(lambda: lease_seconds_left(store_url, run_id) < 0, 30, "the dead driver's lease to expire")
    resumed = Driver("resume", run_id, "--workers", "1", "--db", store_url)
    try:
        resumed.wait_for_line(f"resuming run {run_id}")
        row = run_row(store_url, run_id)
        assert row.driver_owner not in (None, dead_owner) and row.status == "running"
        assert lease_seconds_left(store_url, run_id) > 20  # its own 30 s lease
        done = finished_evaluations(store_url, run_id)
        wait_for(lambda: finished_evaluations(store_url, run_id) > done, 60, "a result from the resumed driver")
    finally:
        stop(resumed)
    assert run_row(store_url, run_id).status == "interrupted"
    assert_nothing_written_twice(store_url, run_id)


@pytest.mark.slow
def test_a_paused_driver_whose_lease_was_taken_over_stops_in_one_line(store_url: str) -> None:
    driver, run_id = start_long_run(store_url, env=environment(NASCLI_DRIVER_LEASE_SECONDS=SHORT_LEASE),
                                    stderr_apart=True)
    owner = run_row(store_url, run_id).driver_owner
    pause_outside_a_write(driver, store_url)  # alive (it keeps its liveness token) but renews nothing
    forced = None
    try:
        wait_for(lambda: lease_seconds_left(store_url, run_id) < 0, 30, "the paused driver's lease to expire")
        # the token says a driver lives: without --force the expired lease is not taken
        line = assert_one_line_error(run_nas("resume", run_id, "--workers", "1", "--db", store_url),
                                     f"run {run_id} is being driven by a live driver, {owner} (its lease has expired)",
                                     exit_code=EXIT_RUN_BUSY)
        assert f"`nas resume {run_id} --force` takes over" in line
        assert run_row(store_url, run_id).driver_owner == owner
        forced = Driver("resume", run_id, "--force", "--workers", "1", "--db", store_url)
        forced.wait_for_line(f"resuming run {run_id}")
        assert run_row(store_url, run_id).driver_owner not in (None, owner)
    finally:
        driver.process.send_signal(signal.SIGCONT)
    try:
        assert driver.wait(60) == 2, driver.output
        assert len(driver.error_lines) == 1, driver.error_lines
        assert driver.error_lines[0] == (f"error: another driver took run {run_id} over; this one stops — nothing "
                                         "is lost: the other driver continues from the database")
        assert forced.process.poll() is None, forced.output
        done = finished_evaluations(store_url, run_id)
        wait_for(lambda: finished_evaluations(store_url, run_id) > done, 60, "a result from the forced driver")
        assert run_row(store_url, run_id).status == "running"  # the stopped driver marked nothing
    finally:
        driver.kill()
        if forced is not None:
            stop(forced)
    assert run_row(store_url, run_id).status == "interrupted"
    assert_nothing_written_twice(store_url, run_id)
