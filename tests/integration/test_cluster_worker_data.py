"""A worker on a host without the dataset gives the task back (no attempt used) and exits 2 with
one line, so a host that has the data can take it; it never records a failed evaluation."""

from __future__ import annotations

import pytest

from nascli.config import resolve, task_for
from nascli.store import EvaluationRequest, open_store
from tests.helpers import BACKENDS, clean_env, database, run_nas


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_dataset_releases_the_task_and_exits_2(backend, tmp_path):
    empty = tmp_path / "no-data-here"
    empty.mkdir()
    cfg = resolve("mnist-island5", overrides=[f"task.data_dir={empty}"], project_file=None, env={})
    with database(backend, tmp_path) as url:
        store = open_store(url, create=True)
        try:
            run = store.create_run("no-data", "island-ga", None, 0, cfg.model_dump(mode="json"))
            [evaluation_id] = store.enqueue(run.id, [EvaluationRequest(None, task_for(cfg, "In_28_28:D_10", 1))])
        finally:
            store.close()
        done = run_nas("worker", "--db", url, "--idle-timeout", "30", env=clean_env(NASCLI_OFFLINE="1", COLUMNS="400"),
                       timeout=240)
        assert done.returncode == 2, done.stderr[-2000:]
        error_lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(error_lines) == 1, done.stderr[-2000:]
        assert "mnist" in error_lines[0] and str(empty) in error_lines[0]
        assert "Traceback" not in done.stderr

        store = open_store(url)
        try:
            row = store.evaluation(evaluation_id)
            counts = store.queue_counts(run.id)
        finally:
            store.close()
        # Given back: claimed once (attempt 1), released, no failure counted, nothing recorded.
        assert (row.status, row.attempt, row.failures, row.releases) == ("pending", 1, 0, 1)
        assert counts["failed"] == counts["done"] == 0
