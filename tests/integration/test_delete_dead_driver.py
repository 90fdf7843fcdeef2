"""`nas delete` and a driver's lease: refused while the driver lives; once the driver is dead (its
liveness token is free) the run is deleted at once, however long its lease still runs, and no
token file is left beside a SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest
from driver_harness import LONG_RUN, Driver, environment, finished_evaluations

from tests.helpers import assert_one_line_error, run_nas, wait_for


@pytest.mark.slow
def test_a_killed_drivers_run_is_deleted_before_its_lease_expires(store_url: str, tmp_path: Path) -> None:
    driver = Driver("run", *LONG_RUN, "--workers", "1", "--db", store_url,
                    env=environment(NASCLI_DRIVER_LEASE_SECONDS="600"))
    try:
        run_id = driver.wait_for_line("started run").split()[-1]
        wait_for(lambda: finished_evaluations(store_url, run_id) >= 1, 90, "a first result")
        refused = run_nas("delete", run_id, "--yes", "--db", store_url)
        assert_one_line_error(refused, "is being driven")
        assert driver.process.poll() is None  # the live driver was not disturbed
    finally:
        driver.kill()  # SIGKILL: its lease has 10 minutes left
    deleted = run_nas("delete", run_id, "--yes", "--db", store_url)
    assert deleted.returncode == 0 and f"deleted run {run_id}" in deleted.stdout, deleted.stderr
    if store_url.startswith("sqlite"):
        database = Path(store_url.removeprefix("sqlite:///"))
        assert not list(database.parent.glob(f"{database.name}.{run_id}.*")), list(database.parent.iterdir())
