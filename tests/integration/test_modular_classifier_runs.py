"""Seed 001 modular classifiers end to end: `nas run --preset digits-modules` (real training on the
bundled digits, a tiny budget) and `nas export` of its best network, whose standalone model.py
reproduces the recorded test accuracy."""

from __future__ import annotations

import json

import pytest
import torch

from nascli.export.parity import import_model_file
from tests.helpers import run_nas


@pytest.mark.slow
def test_digits_modules_runs_and_exports_a_runnable_network(tmp_path):
    from nascli.config import resolve
    from nascli.train.data import DatasetSpec, load_dataset

    db = f"sqlite:///{tmp_path / 'nas.db'}"
    budget = ["--set", "ga.population=2", "--set", "ga.offspring_per_generation=2", "--set", "ga.generations=1",
              "--set", "train.epochs=3"]
    run = run_nas("run", "--preset", "digits-modules", "--workers", "1", "--db", db, *budget, timeout=600)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "best"
    exported = run_nas("export", "latest", "--db", db, "--out", out, "--train-epochs", "3", timeout=600)
    assert exported.returncode == 0, exported.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["parity"]["passed"] is True
    assert metrics["outputs"] == 10 and metrics["input_shape"] == [1, 8, 8]
    assert "conv2d:" in metrics["genome"]

    model = import_model_file(out / "model.py").load_model(out / "weights.pt")  # standalone: torch only
    cfg = resolve("digits-modules", project_file=None, env={})
    data = load_dataset(DatasetSpec.from_task(cfg.task.model_dump(mode="json")))
    with torch.inference_mode():
        accuracy = (model(data.test_x).argmax(dim=1) == data.test_y).float().mean().item()
    recorded = metrics["metrics"]["test_accuracy"]
    assert abs(accuracy - recorded) <= 0.02, (accuracy, recorded)
