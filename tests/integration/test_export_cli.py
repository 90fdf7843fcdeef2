"""`nas export` through the CLI: a synthetic run (store API), a real digits evaluation round trip,
--all tables, lineage, checkpoints and every bad-input path (one line, exit 2)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sqlite3
from copy import deepcopy

import pytest
import torch
from test_report_builder import GENOMES, build_run, sqlite_url
from typer.testing import CliRunner

from nascli.cli import app
from nascli.export.parity import import_model_file
from nascli.export.weights import checkpoint_path
from nascli.layers import build_model
from nascli.store import EvaluationRequest, NewIndividual, open_store
from tests.helpers import assert_bad_input, assert_one_line_error

torch.set_num_threads(1)
runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")


def nas(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="session")
def synthetic_template(tmp_path_factory):
    """The synthetic run, built once per module that uses it (~0.5 s); each test gets a copy (`synthetic`)."""
    url = sqlite_url(tmp_path_factory.mktemp("synthetic"))
    with open_store(url) as store:
        built = build_run(store, islands=2, population=3, generations=4,
                          overrides=("train.epochs=1", "train.batch_size=64"))
    return url, built


@pytest.fixture
def synthetic(synthetic_template, tmp_path):
    """A copy of the synthetic run in this test's tmp_path/nas.db: tests may write to it."""
    template_url, built = synthetic_template
    source, copy = sqlite3.connect(template_url.removeprefix("sqlite:///")), sqlite3.connect(tmp_path / "nas.db")
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    return f"sqlite:///{tmp_path / 'nas.db'}", deepcopy(built)


def best_individual(built) -> int:
    done = {i: r for i, r in built.metrics.items() if r.status == "done"}
    return max(done, key=lambda i: (done[i].val_accuracy, -done[i].params, -i))


def test_code_and_json_need_no_weights(synthetic, tmp_path):
    url, built = synthetic
    result = nas("export", built.run_id, "--db", url, "--out", tmp_path / "best", "--format", "code,json")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "best" / "metrics.json").read_text())
    best = best_individual(built)
    assert metrics["individual_id"] == best and metrics["rank"] == 1
    assert metrics["genome"] == built.individuals[best]["genome"]
    assert metrics["metrics"]["val_accuracy"] == built.metrics[best].val_accuracy
    assert metrics["weights"] == {"kind": "none"}
    assert metrics["config"]["ga"]["islands"] == 2 and metrics["training_config"]["epochs"] == 1


def test_lineage_goes_back_to_the_initial_population(synthetic, tmp_path):
    url, built = synthetic
    child = max(i for i, info in built.individuals.items() if info["generation"] >= 3
                and built.metrics[i].status == "done")
    result = nas("export", built.run_id, "--db", url, "--individual", child, "--out", tmp_path / "x", "-f", "code")
    assert result.exit_code == 0, result.output
    lineage = json.loads((tmp_path / "x" / "metrics.json").read_text())["lineage"]
    assert lineage[0]["individual_id"] == child
    for step, parent in zip(lineage, lineage[1:]):
        assert step["parents"][0] == parent["individual_id"]
        assert built.individuals[step["individual_id"]]["parents"][0] == parent["individual_id"]
    assert lineage[-1]["parents"] == [] and lineage[-1]["operator"] == "init" and lineage[-1]["generation"] == 0


@pytest.mark.slow
def test_train_epochs_exports_weights_that_match_everywhere(synthetic, tmp_path):
    url, built = synthetic
    out = tmp_path / "trained"
    result = nas("export", "latest", "--db", url, "--rank", 2, "--out", out, "--train-epochs", 1)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["rank"] == 2 and metrics["weights"]["kind"] == "trained_at_export"
    assert metrics["weights"]["metrics"]["epochs"] == 1
    state = torch.load(out / "weights.pt", weights_only=True)
    reference = build_model(metrics["genome"], activation=metrics["training_config"]["activation"],
                            bn_momentum=metrics["training_config"]["bn_momentum"],
                            dropout=metrics["training_config"]["dropout"])
    reference.load_state_dict(state, strict=True)
    reference.eval()
    module = import_model_file(out / "model.py")
    batch = torch.randn(4, *module.INPUT_SHAPE)
    with torch.inference_mode():
        assert torch.equal(module.load_model(out / "weights.pt")(batch), reference(batch))
        assert torch.equal(torch.jit.load(str(out / "model.ts"))(batch), reference(batch))


def test_kept_checkpoint_is_used(synthetic, tmp_path, monkeypatch):
    url, built = synthetic
    best = best_individual(built)
    with open_store(url) as store:
        evaluation = next(e for e in store.evaluations(built.run_id) if e.individual_id == best)
    artifacts = tmp_path / "artifacts"
    path = checkpoint_path(artifacts, built.run_id, evaluation.id)
    path.parent.mkdir(parents=True)
    torch.manual_seed(5)
    model = build_model(built.individuals[best]["genome"], activation="leaky_relu", bn_momentum=0.01, dropout=0.5)
    torch.save(model.state_dict(), path)
    # the run's [train] section names the artifact directory
    with open_store(url) as store:
        run = store.get_run(built.run_id)
    train = dict(run.config["train"], artifact_dir=str(artifacts))
    from nascli.export import weights as weights_module

    found = weights_module.find_checkpoint({}, train, run.config["task"], built.run_id, evaluation.id)
    assert found == path
    loaded = weights_module.load_checkpoint(found)
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    # recorded in Result.extra['checkpoint'] (what an evaluator with keep_checkpoints writes)
    assert weights_module.find_checkpoint({"checkpoint": str(path)}, {}, run.config["task"], "x", 0) == path
    # `nas export` itself: the checkpoint kept in the run's default artifact directory becomes weights.pt
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    kept = checkpoint_path(weights_module.default_artifact_dir(run.config["task"]), built.run_id, evaluation.id)
    assert kept.is_relative_to(tmp_path / "cache")
    kept.parent.mkdir(parents=True)
    torch.save(model.state_dict(), kept)
    weights = export_with_weights_of(model, url, built.run_id, best, tmp_path / "out")
    assert weights == {"kind": "checkpoint", "path": str(kept)}


def test_all_rows_as_csv_and_json(synthetic, tmp_path):
    url, built = synthetic
    result = nas("export", built.run_id, "--db", url, "--all", "--format", "csv", "--out", tmp_path / "all.csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO((tmp_path / "all.csv").read_text())))
    assert len(rows) == len(built.individuals)
    by_id = {int(row["individual_id"]): row for row in rows}
    for ident, info in built.individuals.items():
        assert by_id[ident]["genome"] == info["genome"]
        assert json.loads(by_id[ident]["parents"]) == list(info["parents"])
        assert by_id[ident]["status"] == built.metrics[ident].status
    result = nas("export", built.run_id, "--db", url, "--all", "-f", "json", "--out", tmp_path / "all.json")
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "all.json").read_text())
    assert document["schema"] == "nascli.export-all/1" and document["run"]["run_id"] == built.run_id
    assert len(document["rows"]) == len(built.individuals)
    failed = [r for r in document["rows"] if r["status"] == "failed"]
    assert {r["error_kind"] for r in failed} == {"oom", "crash"} and all(r["val_accuracy"] is None for r in failed)
    assert_one_line_error(nas("export", built.run_id, "--db", url, "--all", "-f", "json", "--out",
                              tmp_path / "all.json"),
                   "already exists")


def export_with_weights_of(model, url: str, run_id: str, individual: int, out) -> dict:
    """`nas export` one individual; its weights.pt must equal `model`'s; returns metrics.json's weights."""
    result = nas("export", run_id, "--db", url, "--individual", individual, "--out", out)
    assert result.exit_code == 0, result.output
    exported = torch.load(out / "weights.pt", weights_only=True)
    assert exported.keys() == model.state_dict().keys()
    assert all(torch.equal(exported[k], v) for k, v in model.state_dict().items())
    return json.loads((out / "metrics.json").read_text())["weights"]


def test_weights_from_the_repository_are_exported_without_training(synthetic, tmp_path, monkeypatch):
    from nascli.train.transfer import state_bytes

    url, built = synthetic
    best = best_individual(built)
    torch.manual_seed(11)
    model = build_model(built.individuals[best]["genome"], activation="leaky_relu", bn_momentum=0.01, dropout=0.5)
    with open_store(url) as store:
        evaluation = next(e for e in store.evaluations(built.run_id) if e.individual_id == best)
        store.db.write(lambda conn: store.weight_repository.put(conn, built.run_id, evaluation.id, state_bytes(model)),
                       what="store weights")
    monkeypatch.setattr("nascli.export.weights.train_now", lambda *a, **k: pytest.fail("trained at export"))
    weights = export_with_weights_of(model, url, built.run_id, best, tmp_path / "out")
    assert weights == {"kind": "repository", "evaluation_id": evaluation.id}


def test_without_a_checkpoint_export_trains_with_the_runs_own_epochs(synthetic, tmp_path):
    url, built = synthetic
    result = nas("export", built.run_id, "--db", url, "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    weights = json.loads((tmp_path / "o" / "metrics.json").read_text())["weights"]
    assert weights["kind"] == "trained_at_export"
    assert weights["why"] == "the run kept no checkpoints"


def test_bad_input_is_one_line_exit_2(synthetic, tmp_path):
    url, built = synthetic
    assert_bad_input(lambda: nas("export", "r-nope00", "--db", url, "--out", tmp_path / "o"), "r-nope00")
    assert_bad_input(lambda: nas("export", built.run_id, "--db", url, "--out", tmp_path / "o", "-f", "pdf"), "pdf")
    assert_bad_input(lambda: nas("export", built.run_id, "--db", url, "--out", tmp_path / "o", "--rank", 999,
                                 "-f", "code"),
                   "rank 999")
    assert_bad_input(lambda: nas("export", built.run_id, "--db", url, "--out", tmp_path / "o", "--individual", 99999),
                   "no individual 99999")
    failed = next(i for i, r in built.metrics.items() if r.status == "failed")
    assert_bad_input(lambda: nas("export", built.run_id, "--db", url, "--out", tmp_path / "o", "--individual", failed),
                   "no finished evaluation")
    assert_bad_input(lambda: nas("export", built.run_id, "--db", url, "--all", "--out", tmp_path / "a.csv"), "--format")
    assert_bad_input(lambda: nas("export", built.run_id, "--db", url, "--all", "-f", "code", "--out",
                                 tmp_path / "a"), "csv")
    assert_bad_input(lambda: nas("export", built.run_id, "--db", url, "-f", "code"), "--out")
    assert nas("export", built.run_id, "--db", url, "--out", tmp_path / "o", "-f", "code").exit_code == 0
    assert_bad_input(lambda: nas("export", built.run_id, "--db", url, "--out", tmp_path / "o", "-f", "code"), "--force")
    assert nas("export", built.run_id, "--db", url, "--out", tmp_path / "o", "-f", "code", "--force").exit_code == 0
    with open_store(url) as store:
        empty = store.create_run("empty", "island-ga", None, 0, built_config(store, built.run_id))
    assert_bad_input(lambda: nas("export", empty.id, "--db", url, "--out", tmp_path / "e", "-f", "code"),
                   "no finished evaluation")


def built_config(store, run_id):
    return store.get_run(run_id).config


# ---------------------------------------------------------------------------------- real digits


@pytest.mark.slow
def test_digits_round_trip_reproduces_the_recorded_test_accuracy(tmp_path):
    """Train one genome for real through nascli.train.evaluate, record it like a worker would, export it
    with --train-epochs (same config, same seed), and evaluate model.py + weights.pt on the same test split."""
    from nascli.config import resolve, task_for, training_config_hash
    from nascli.ga.genome import genome_hash, parse_genome
    from nascli.train.data import DatasetSpec, load_dataset
    from nascli.train.evaluate import evaluate

    url = sqlite_url(tmp_path)
    cfg = resolve(preset="digits-quick", overrides=["train.epochs=4", "train.patience=4"], project_file=None, env={})
    genome = GENOMES[3]
    task = dataclasses.replace(task_for(cfg, genome, 11))
    result = evaluate(task)
    assert result.status == "done", result.error_message
    with open_store(url) as store:
        run = store.create_run("digits", cfg.run.strategy, "digits-quick", 11, cfg.model_dump(mode="json"))
        (ident,) = store.add_individuals(run.id, [NewIndividual(0, 0, 0, genome, genome_hash(parse_genome(genome)),
                                                                (), "init")])
        store.enqueue(run.id, [EvaluationRequest(ident, task, config_hash=training_config_hash(cfg))])
        claim = store.claim("test-worker", run_id=run.id, lease_seconds=60)
        assert store.complete(claim.evaluation_id, claim.attempt, result)
    out = tmp_path / "digits"
    exported = nas("export", run.id, "--db", url, "--out", out, "--train-epochs", cfg.train.epochs)
    assert exported.exit_code == 0, exported.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metrics"]["test_accuracy"] == result.test_accuracy

    module = import_model_file(out / "model.py")  # standalone: torch only
    model = module.load_model(out / "weights.pt")
    data = load_dataset(DatasetSpec.from_task(cfg.task.model_dump(mode="json")))
    with torch.inference_mode():
        predictions = model(data.test_x).argmax(dim=1)
    accuracy = (predictions == data.test_y).float().mean().item()
    assert accuracy > 0.8
    assert abs(accuracy - result.test_accuracy) <= 0.02, (accuracy, result.test_accuracy)
    # model.py's standardise() turns raw images into exactly what the network was trained on
    from nascli.train.data import raw_of

    raw = raw_of(DatasetSpec.from_task(cfg.task.model_dump(mode="json")))
    assert torch.allclose(module.standardise(torch.from_numpy(raw.test_x)), data.test_x, atol=1e-4)
    print(f"digits round trip: recorded test accuracy {result.test_accuracy:.4f}, exported {accuracy:.4f}")
