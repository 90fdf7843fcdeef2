"""Every shipped preset starts: `nas run --preset NAME` with the synthetic task kind (same genome family,
same input shape and class count, a budget of a few evaluations) exits 0 with finished evaluations.

Validation alone does not catch a preset whose seed genome, search space or strategy settings break
at run time (cifar10-config9 once shipped a seed genome that does not parse); running it does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nascli.config import input_shape, preset_names, resolve
from nascli.store import open_store

TINY_BUDGET = ["ga.population=2", "ga.generations=1", "ga.init_mutations=10", "ga.tournament_size=2",
               "linas.iterations=1", "linas.evaluations_per_iteration=2", "linas.predictor_generations=2"]


def synthetic_overrides(name: str) -> list[str]:
    """The preset's own genome family and input shape, evaluated by the synthetic task kind."""
    cfg = resolve(preset=name, project_file=None, env={})
    channels, height, width, classes = input_shape(cfg.task)
    return ["task.kind=synthetic", "task.dataset=synthetic", f"task.synthetic_shape=[{channels}, {height}, {width}]",
            f"task.synthetic_classes={classes}", *TINY_BUDGET]


@pytest.mark.slow
@pytest.mark.parametrize("name", preset_names())
def test_every_preset_runs_with_the_synthetic_task(tmp_path: Path, name: str) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    command = [sys.executable, "-m", "nascli", "run", "--preset", name, "--db", url, "--workers", "1"]
    for override in synthetic_overrides(name):
        command += ["--set", override]
    completed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    store = open_store(url)
    try:
        (run,) = store.list_runs()
        results = store.results(run.id)
    finally:
        store.close()
    assert run.status == "finished"
    assert any(finished.result.status == "done" for finished in results), [r.result.error_message for r in results]
