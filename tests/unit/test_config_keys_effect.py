"""Every configuration key does something: for each key of the config model, changing it (in a
context where it applies) changes what the run resolves to — the strategy (its settings and first
proposals), the worker (lease, heartbeat, poll, queue limits, an evaluation's time limit) or the
trainer (training settings, data split, the built network, checkpoints, the synthetic evaluator's
answer) — or the key is listed below as informational, with the reason. A new key must be put in
one of the two tables."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from nascli.config import known_keys, resolve, task_for
from nascli.driver.session import queue_limits
from nascli.driver.strategy import build_strategy

# key -> (context overrides, the changed value as --set writes it[; other keys the change needs])
CHANGES: dict[str, tuple[list[str], str]] = {
    "run.seed": ([], "7"),
    "run.strategy": ([], "random"),
    "task.kind": ([], "synthetic"),
    "task.dataset": ([], "mnist"),
    "task.data_dir": ([], "/elsewhere"),
    "task.val_fraction": ([], "0.2"),
    "task.genome_family": (["task.kind=synthetic"], "modules"),
    "task.noise_sigma": (["@autoencoder", "task.kind=denoise"], "0.1"),
    "task.reduction_modules": (["@autoencoder"], "3"),
    "task.synthetic_seconds": (["task.kind=synthetic"], "0.5"),
    "task.synthetic_fail_genomes": (["task.kind=synthetic"], "['D_']"),
    "task.synthetic_oom_genomes": (["task.kind=synthetic"], "['D_']"),
    "task.synthetic_shape": (["task.kind=synthetic", "task.dataset=synthetic"], "[3, 8, 8]"),
    "task.synthetic_classes": (["task.kind=synthetic", "task.dataset=synthetic"], "5"),
    "search_space.layers": ([], "['C', 'D']"),
    "search_space.inception_variants": ([], "[2]"),
    "search_space.kernels": ([], "[3]"),
    "search_space.strides": ([], "[1]"),
    "search_space.filters": ([], "[8]"),
    "search_space.dense_units": ([], "[32]"),
    "search_space.max_layers": ([], "2"),
    "search_space.max_params": (["task.kind=synthetic"], "1000"),
    "search_space.module_dropout": (["@autoencoder"], "false"),
    "ga.islands": ([], "2"),
    "ga.population": ([], "3"),
    "ga.generations": ([], "7"),
    "ga.init_mutations": ([], "3"),
    "ga.offspring_per_generation": ([], "2"),
    "ga.min_parent_age": ([], "3"),
    "ga.selection": (["ga.tournament_size=3"], "tournament"),
    "ga.replacement": ([], "aging"),
    "ga.tournament_size": (["run.strategy=regularized-evolution", "ga.population=6"], "3"),
    "ga.seed_genome": ([], "'In_8_8:C_3-3-1-1-16:D_10'"),
    # the probabilities must sum to 1: each change gives 0.1 to (or takes it from) adjust
    "ga.operators.insert": ([], "0.3; ga.operators.adjust=0.3"),
    "ga.operators.switch": ([], "0.2; ga.operators.adjust=0.3"),
    "ga.operators.delete": ([], "0.3; ga.operators.adjust=0.3"),
    "ga.operators.adjust": ([], "0.3; ga.operators.insert=0.3"),
    "ga.operators.crossover": ([], "0.2; ga.operators.adjust=0.3"),
    "migration.period": ([], "3"),
    "migration.candidates": ([], "0.5"),
    "migration.fraction": ([], "0.5"),
    "migration.datasets": ([], "2"),
    "fitness.primary": ([], "inverse_val_loss"),
    "fitness.threshold": ([], "0.5"),
    "fitness.secondary": ([], "flops"),
    "train.epochs": ([], "3"),
    "train.patience": ([], "2"),
    "train.batch_size": ([], "32"),
    "train.optimizer": ([], "sgd"),
    "train.lr": ([], "0.01"),
    "train.weight_decay": ([], "0.0"),
    "train.momentum": (["train.optimizer=sgd"], "0.5"),
    "train.loss": ([], "cross_entropy"),
    "train.activation": ([], "relu"),
    "train.dropout": ([], "0.1"),
    "train.bn_momentum": ([], "0.1"),
    "train.amp": ([], "bf16"),
    "train.mode": ([], "proxy"),
    "train.proxy_iterations": (["train.mode=proxy"], "7"),
    "train.keep_checkpoints": ([], "true"),
    "train.artifact_dir": (["train.keep_checkpoints=true"], "/artefacts"),
    "train.max_seconds": ([], "60"),
    "worker.lease_seconds": ([], "300"),
    "worker.heartbeat_seconds": ([], "5"),
    "worker.max_attempts": ([], "5"),
    "worker.max_lease_expiries": ([], "2"),
    "worker.poll_seconds": ([], "0.2"),
    "nsga2.objectives": (["run.strategy=nsga2"], "['val_accuracy', 'flops']"),
    "linas.predictor": (["run.strategy=linas"], "svr"),
    "linas.predictor_generations": (["run.strategy=linas"], "3"),
    "linas.evaluations_per_iteration": (["run.strategy=linas"], "3"),
    "linas.iterations": (["run.strategy=linas"], "3"),
}

# key -> why it changes none of the resolved settings, and where it does act
INFORMATIONAL: dict[str, str] = {
    "run.name": "a label shown by nas report and nas run; no decision reads it",
    "run.description": "the preset's one-line description (nas run --list-presets)",
    "store.url": "which database the commands open (resolve_db_url); not a setting of the search",
    "cache.scope": "whose results the driver's genotype cache reuses (nascli.driver.step.Driver), not a strategy, "
                   "worker or trainer setting; its tests are under tests/integration",
    "ga.init_proxy": "read by the driver (nascli.driver.proxy_init walks the initial individuals before the strategy's "
                     "first ask); tests/unit/test_proxy_init.py, tests/integration/test_proxy_init_resume.py",
    "ga.init_proxy_iterations": "the walks' proxy training "
                                "(nascli.driver.proxy_init.proxy_config -> train.proxy_iterations); "
                                "tests/unit/test_proxy_init.py",
    "ga.init_proxy_samples": "the walks' proxy training "
                             "(nascli.driver.proxy_init.proxy_config -> train.proxy_samples); "
                             "tests/unit/test_proxy_init.py",
    "ga.init_proxy_val_share": "the walks' proxy training "
                               "(nascli.driver.proxy_init.proxy_config -> train.proxy_val_share); "
                               "tests/unit/test_proxy_init.py",
    "train.proxy_val_share": "read by nascli.train.engine in proxy mode (the validation subset); "
                             "tests/unit/test_train.py",
    "train.kfolds": "read by nascli.train.evaluate (k-fold loop around one training); tests/unit/test_train.py",
    "train.proxy_samples": "read by nascli.train.engine._proxy_subset in proxy mode; tests/unit/test_train.py",
    "train.measure_latency": "read by nascli.train.engine after training (latency_ms); tests/unit/test_train.py",
    "train.threads": "torch.set_num_threads in the worker process before training",
    "train.stop_rule": "read by the driver (nascli.driver.step.Driver's stop curves sent with each task) and by the "
                       "trainer's per-epoch check; tests/unit/test_stop_rule.py, "
                       "tests/integration/test_stop_rule_runs.py",
    "train.stop_margin": "nascli.stop_rule.should_stop, with stop_rule; tests/unit/test_stop_rule.py",
    "train.stop_min_epochs": "nascli.stop_rule.should_stop, with stop_rule; tests/unit/test_stop_rule.py",
    "run.max_evaluations": "a run-level stopping rule the driver applies (nascli.run_stop); "
                           "tests/unit/test_run_stop.py, tests/integration/test_run_stop_rules.py",
    "run.max_hours": "a run-level stopping rule the driver applies (nascli.run_stop); "
                     "tests/unit/test_run_stop.py, tests/integration/test_run_stop_rules.py",
    "run.target": "a run-level stopping rule the driver applies (nascli.run_stop); "
                  "tests/unit/test_run_stop.py, tests/integration/test_run_stop_rules.py",
    "train.transfer": "read by the driver (nascli.transfer.Donors names each queued child's donor in its task) and "
                      "by the engine's transfer; tests/unit/test_transfer.py, tests/integration/test_resume.py",
    "train.transfer_epochs": "nascli.train.engine, for a child that got a donor's weights; tests/unit/test_transfer.py",
    "train.freeze_epochs": "nascli.train.trainer.fit thaws the transferred layers after them; "
                           "tests/unit/test_transfer.py",
    "train.repository_top_k": "nascli.transfer.Donors.kept (which stored weights stay); tests/unit/test_transfer.py",
    "train.store_weights": "nascli.train.engine stores the weights with the result (nascli.store.weights); "
                           "tests/integration/test_resume.py",
}

# ga.init_mutations=20, not the default 1000: every first proposal is 1000 mutations of the seed genome
# otherwise, which makes this file take a minute while 20 already separates every key's proposals.
BASE = ["ga.islands=3", "ga.population=4", "ga.generations=5", "migration.period=2", "task.dataset=digits",
        "train.epochs=4", "train.loss=mse", "ga.init_mutations=20"]
AUTOENCODER = ["task.kind=reconstruct", "task.genome_family=modules", "task.dataset=stl10", "train.loss=mse",
               "fitness.primary=inverse_val_loss", "run.strategy=mu-plus-lambda"]
LAYER_GENOME = "In_8_8:C_3-3-1-1-16:P_2-2-2-2-0:D_1-1-1-1-32:D_10"


def resolved(overrides: list[str]):
    expanded: list[str] = []
    for item in overrides:
        expanded += AUTOENCODER if item == "@autoencoder" else [item]
    return resolve(overrides=[*BASE, *expanded], project_file=None, env={})


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return repr(value)
    if isinstance(value, (int, float, str, bool, tuple, list, dict, type(None))):
        return repr(value)
    return None


def strategy_settings(cfg) -> tuple:
    strategy = build_strategy(cfg)
    attributes = {name: _plain(value) for name, value in sorted(vars(strategy).items())}
    proposals = strategy.ask(4 if strategy.asynchronous else None)
    return (type(strategy).__name__, attributes,
            [(p.key, str(p.genome), p.parents, p.operator) for p in proposals])


def worker_settings(cfg) -> tuple:
    from nascli.train.time_limit import limit_seconds
    from nascli.worker import Worker, WorkerOptions

    class RunStore:
        def get_run(self, run_id):
            return type("Run", (), {"config": cfg.model_dump(mode="json")})()

    worker = Worker(RunStore(), WorkerOptions(run_id="r-1"))
    lease = worker._lease_seconds("r-1")
    return (lease, worker._heartbeat_seconds("r-1", lease), worker._poll_seconds("r-1"), queue_limits(cfg),
            limit_seconds(task_for(cfg, LAYER_GENOME, 0)))


def trainer_settings(cfg) -> tuple:
    from nascli.train.data import DatasetSpec
    from nascli.train.engine import checkpoint_file, plan_model
    from nascli.train.synthetic import evaluate_synthetic
    from nascli.train.trainer import TrainSettings

    modules = cfg.task.genome_family == "modules"
    genome = "3x3conv2d:16,5x5conv2d:8" if modules else LAYER_GENOME
    if cfg.task.dataset != "digits" and not modules:
        from nascli.config import input_shape

        channels, height, width, classes = input_shape(cfg.task)
        genome = f"In_{width}_{height}_{channels}:C_3-3-1-1-16:P_2-2-2-2-0:D_1-1-1-1-32:D_{classes}"
    task = dataclasses.replace(task_for(cfg, genome, 0), run_id="r-1", evaluation_id=1)
    train = dict(cfg.train.model_dump(mode="json"))
    settings = (repr(TrainSettings.from_train(train)), repr(DatasetSpec.from_task(cfg.task.model_dump(mode="json"))),
                checkpoint_file(task, cfg.train))
    if cfg.task.kind == "synthetic":
        result = evaluate_synthetic(dataclasses.replace(task, task={**task.task, "synthetic_seconds": 0}))
        return (*settings, repr(dataclasses.replace(result, train_seconds=None)),
                task.task.get("synthetic_seconds"))
    plan = plan_model(genome, cfg.task, cfg.train)
    return (*settings, plan.params, plan.flops, plan.input_shape, repr(plan.objective), plan.scaling,
            repr(plan.build()))


def fingerprint(cfg) -> tuple:
    return strategy_settings(cfg), worker_settings(cfg), trainer_settings(cfg)


def test_every_key_is_classified():
    keys = set(known_keys())
    assert keys == set(CHANGES) | set(INFORMATIONAL), sorted(keys ^ (set(CHANGES) | set(INFORMATIONAL)))
    assert not set(CHANGES) & set(INFORMATIONAL)


@pytest.mark.parametrize("key", sorted(CHANGES))
def test_changing_a_key_changes_the_resolved_settings(key):
    context, change = CHANGES[key]
    value, *needed = [part.strip() for part in change.split(";")]
    before = resolved(context)
    after = resolved([*context, f"{key}={value}", *needed])
    assert before.model_dump() != after.model_dump(), f"{key}={value} is already the value in this context"
    assert fingerprint(before) != fingerprint(after), f"{key} has no effect on the strategy, worker or trainer"
