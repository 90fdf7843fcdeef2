"""train.keep_checkpoints: the evaluator keeps the best-validation weights where `nas export` looks,
writes them atomically (also under SIGKILL), and `nas export` uses them instead of retraining.
Also: a dataset missing on this host is a DatasetError from `evaluate`, not a failed Result."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from nascli.config import TrainSection, resolve, task_for, training_config_hash
from nascli.errors import DatasetError, FileWriteError
from nascli.export import weights as export_weights
from nascli.export.parity import import_model_file
from nascli.ga.genome import genome_hash, parse_genome
from nascli.layers import build_model
from nascli.task import Task
from nascli.train import engine
from nascli.train.data import OFFLINE_ENV, DatasetSpec, load_dataset
from nascli.train.evaluate import evaluate
from nascli.train.objectives import Classification
from nascli.train.trainer import TrainSettings, score
from tests.helpers import one_torch_thread  # noqa: F401 - autouse: training on one thread, as a worker trains

SMALL = "In_8_8:C_3-3-1-1-16:P_2-2-2-2-0:D_10"
QUICK_TRAIN = {"epochs": 3, "patience": 3, "batch_size": 64, "lr": 3e-3, "loss": "cross_entropy", "dropout": 0.25,
               "threads": 1}




def digits_task(tmp_path: Path, *, run_id: str | None = "r-abc123", evaluation_id: int | None = 7,
                **train) -> Task:
    return Task(genome=SMALL, task={"kind": "classification", "dataset": "digits"},
                train={**QUICK_TRAIN, "keep_checkpoints": True, "artifact_dir": str(tmp_path / "artifacts"), **train},
                search_space={"max_params": 100_000}, seed=3, run_id=run_id, evaluation_id=evaluation_id, attempt=1)


def train_section(task: Task) -> TrainSection:
    return TrainSection.model_validate(task.train)


def test_checkpoint_file_follows_the_export_convention(tmp_path, monkeypatch):
    task = digits_task(tmp_path)
    expected = export_weights.checkpoint_path(tmp_path / "artifacts", "r-abc123", 7)
    assert engine.checkpoint_file(task, train_section(task)) == expected.absolute()
    # no artifact_dir: <data dir>/../artifacts, the same default `nas export` looks in
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    plain = dataclasses.replace(task, train={**task.train, "artifact_dir": None})
    default = export_weights.checkpoint_path(export_weights.default_artifact_dir(plain.task), "r-abc123", 7)
    assert engine.checkpoint_file(plain, train_section(plain)) == default.absolute()
    assert default == tmp_path / "cache" / "nascli" / "artifacts" / "r-abc123" / "evaluation-7.pt"
    with_data_dir = dataclasses.replace(plain, task={**plain.task, "data_dir": str(tmp_path / "d" / "data")})
    assert engine.checkpoint_file(with_data_dir, train_section(with_data_dir)) == \
        tmp_path / "d" / "artifacts" / "r-abc123" / "evaluation-7.pt"
    # a relative artifact_dir is recorded as an absolute path (export may run elsewhere)
    monkeypatch.chdir(tmp_path)
    relative = dataclasses.replace(task, train={**task.train, "artifact_dir": "kept"})
    assert engine.checkpoint_file(relative, train_section(relative)) == \
        tmp_path / "kept" / "r-abc123" / "evaluation-7.pt"
    # nothing kept: switched off, or an evaluation outside a run
    off = dataclasses.replace(task, train={**task.train, "keep_checkpoints": False})
    assert engine.checkpoint_file(off, train_section(off)) is None
    assert engine.checkpoint_file(digits_task(tmp_path, run_id=None), train_section(task)) is None
    assert engine.checkpoint_file(digits_task(tmp_path, evaluation_id=None), train_section(task)) is None


def test_evaluation_keeps_the_best_validation_weights(tmp_path):
    task = digits_task(tmp_path)
    result = evaluate(task)
    assert result.status == "done", result.error_message
    path = Path(result.extra["checkpoint"])
    assert path == tmp_path / "artifacts" / "r-abc123" / "evaluation-7.pt"
    assert sorted(p.name for p in path.parent.iterdir()) == ["evaluation-7.pt"]  # no temporary file left
    state = torch.load(path, weights_only=True)
    assert all(t.device.type == "cpu" and t.is_contiguous() for t in state.values())
    model = build_model(SMALL, activation="leaky_relu", bn_momentum=0.01, dropout=0.25)
    model.load_state_dict(state, strict=True)
    # These are the weights the recorded metrics were measured on: the same validation and test loss.
    data = load_dataset(DatasetSpec.from_task(task.task))
    settings = TrainSettings.from_train(task.train)
    objective = Classification("cross_entropy", 10)
    for x, y, split, loss in ((data.val_x, data.val_y, 1, result.val_loss),
                              (data.test_x, data.test_y, 2, result.test_loss)):
        loss_sum, correct = score(model, x, y, objective, settings, split=split)
        assert loss_sum.item() / len(x) == pytest.approx(loss, rel=1e-4)
    assert correct.item() / len(data.test_x) == pytest.approx(result.test_accuracy, abs=1.5 / len(data.test_x))


def test_no_checkpoint_unless_asked(tmp_path):
    result = evaluate(digits_task(tmp_path, keep_checkpoints=False, epochs=1))
    assert result.status == "done" and "checkpoint" not in result.extra
    assert not (tmp_path / "artifacts").exists()


def test_kfold_keeps_the_last_folds_weights(tmp_path):
    result = evaluate(digits_task(tmp_path, kfolds=2, epochs=1))
    assert result.status == "done", result.error_message
    assert result.extra["checkpoint_fold"] == 1 and Path(result.extra["checkpoint"]).is_file()


def test_an_unwritable_artifact_dir_costs_the_weights_not_the_result(tmp_path):
    (tmp_path / "artifacts").write_text("a file where the directory should be")
    result = evaluate(digits_task(tmp_path, epochs=1))
    assert result.status == "done" and result.val_accuracy is not None
    assert "checkpoint" not in result.extra
    assert result.extra["checkpoint_error"].startswith(f"could not write {tmp_path / 'artifacts'}")


def test_a_failed_write_keeps_the_previous_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "run" / "evaluation-1.pt"
    model = torch.nn.Linear(64, 10)
    engine.save_checkpoint(model, path)
    before = path.read_bytes()

    def half_then_fail(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(engine.torch, "save", half_then_fail)
    with pytest.raises(FileWriteError, match="No space left on device"):  # the OSError, as one line
        engine.save_checkpoint(torch.nn.Linear(64, 10), path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["evaluation-1.pt"]


KILL_CHILD = """
import sys, torch
from pathlib import Path
from nascli.train.engine import save_checkpoint
torch.set_num_threads(1)
path = Path(sys.argv[1])
for generation in range(1, 10**6):
    model = torch.nn.Linear(1024, 2048)  # 8 MB of weights: a write takes a while
    with torch.no_grad():
        model.weight.fill_(generation)
        model.bias.fill_(generation)
    save_checkpoint(model, path)
    print(generation, flush=True)
"""


@pytest.mark.slow
def test_sigkill_during_writes_never_leaves_a_half_checkpoint(tmp_path):
    path = tmp_path / "run" / "evaluation-1.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, str(path)], stdout=subprocess.PIPE, text=True,
                             env=env)
    try:
        line = child.stdout.readline().strip()
        assert line == "1"  # one whole checkpoint exists
        # Then kill it while a write is under way: its temporary file exists (not yet renamed).
        deadline = time.monotonic() + 10
        while not any(p.suffix == ".tmp" for p in path.parent.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.001)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    written = int(([line] + child.stdout.read().split())[-1])  # the last write announced whole
    state = torch.load(path, weights_only=True)  # loads: a whole file, never a torn one
    generation = state["bias"][0].item()
    assert torch.all(state["weight"] == generation) and torch.all(state["bias"] == generation)
    assert written <= generation <= written + 1  # the last announced write, or the one just renamed
    leftovers = [p.name for p in path.parent.iterdir() if p != path]
    assert all(name.startswith(".evaluation-1.pt.") and name.endswith(".tmp") for name in leftovers)


def test_missing_dataset_raises_dataset_error_not_a_failed_result(tmp_path, monkeypatch):
    """No data on this host is the host's problem, not the genome's: the worker must not record it."""
    monkeypatch.setenv(OFFLINE_ENV, "1")
    task = Task(genome="In_28_28:C_3-3-1-1-8:D_10",
                task={"kind": "classification", "dataset": "mnist", "data_dir": str(tmp_path / "empty")},
                train=QUICK_TRAIN, search_space={"max_params": 1_000_000}, seed=1)
    with pytest.raises(DatasetError) as info:
        evaluate(task)
    assert "mnist" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(DatasetError):
        evaluate(dataclasses.replace(task, train={**QUICK_TRAIN, "kfolds": 2}))


def test_nas_export_uses_the_kept_checkpoint_instead_of_retraining(tmp_path, monkeypatch):
    """Worker path end to end: claim -> evaluate (keeps weights) -> complete; then `nas export RUN --out DIR`."""
    from nascli.cli import app
    from nascli.store import EvaluationRequest, NewIndividual, open_store

    monkeypatch.chdir(tmp_path)
    for name in ("NAS_DB_URL", "NAS_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    cfg = resolve(preset="digits-quick", project_file=None, env={},
                  overrides=["train.epochs=3", "train.keep_checkpoints=true",
                             f"train.artifact_dir={tmp_path / 'kept'}"])
    with open_store(url, create=True) as store:
        run = store.create_run("digits", cfg.run.strategy, "digits-quick", 11, cfg.model_dump(mode="json"))
        (ident,) = store.add_individuals(run.id, [NewIndividual(0, 0, 0, SMALL, genome_hash(parse_genome(SMALL)),
                                                                (), "init")])
        store.enqueue(run.id, [EvaluationRequest(ident, task_for(cfg, SMALL, 11),
                                                 config_hash=training_config_hash(cfg))])
        claim = store.claim("test-worker", run_id=run.id, lease_seconds=60)
        result = evaluate(claim.task)
        assert result.status == "done", result.error_message
        assert store.complete(claim.evaluation_id, claim.attempt, result)
    kept = Path(result.extra["checkpoint"])
    assert kept == export_weights.checkpoint_path(tmp_path / "kept", run.id, claim.evaluation_id)

    def no_retraining(*args, **kwargs):
        raise AssertionError("export retrained although a checkpoint was kept")

    monkeypatch.setattr(export_weights, "train_now", no_retraining)
    out = tmp_path / "exported"
    exported = CliRunner().invoke(app, ["export", run.id, "--db", url, "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["weights"] == {"kind": "checkpoint", "path": str(kept)}
    checkpoint = torch.load(kept, weights_only=True)
    written = torch.load(out / "weights.pt", weights_only=True)
    assert written.keys() == checkpoint.keys() and all(torch.equal(written[k], checkpoint[k]) for k in checkpoint)
    # the exported network is the evaluated one: its test accuracy is the recorded one
    model = import_model_file(out / "model.py").load_model(out / "weights.pt")
    data = load_dataset(DatasetSpec.from_task(cfg.task.model_dump(mode="json")))
    with torch.inference_mode():
        accuracy = (model(data.test_x).argmax(dim=1) == data.test_y).float().mean().item()
    assert accuracy == pytest.approx(result.test_accuracy, abs=1.5 / len(data.test_x))
