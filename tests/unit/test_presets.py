"""Shipped presets: every one validates, the paper ones say exactly what the papers say, and the
generated nascli.toml.example is up to date."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from nascli.config import (
    RunConfig,
    check_seed_genome,
    dataset_shape,
    list_presets,
    load_preset,
    preset_names,
    resolve,
)
from nascli.config.example import example_toml

REPO = Path(__file__).resolve().parents[2]
REQUIRED = (
    ["cifar10-island5", "mnist-island5", "fashion-mnist-island5"]
    + [f"cifar10-config{n}" for n in range(1, 10)]
    + ["cifar10-regevo", "cifar10-nsga2", "cifar10-linas", "cifar10-random", "cifar10-mu-plus-lambda",
       "stl10-denoise", "stl10-manifold", "digits-quick", "digits-regevo", "digits-nsga2", "digits-random",
       "digits-mu-plus-lambda", "digits-linas", "synthetic-quick"]
)


def preset(name: str) -> RunConfig:
    return resolve(preset=name, project_file=None, env={})


def test_presets_ship_as_package_data():
    names = {entry.name for entry in resources.files("nascli.presets").iterdir()}
    assert "digits-quick.toml" in names and "cifar10-island5.toml" in names


def test_every_required_preset_exists():
    assert set(REQUIRED) <= set(preset_names())


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_validates_and_describes_itself_in_one_line(name):
    cfg = preset(name)
    description = dict(list_presets())[name]
    assert description and "\n" not in description and len(description) <= 100
    assert cfg.run.description == description
    assert RunConfig.model_validate(cfg.model_dump(mode="json")) == cfg


def klos_table5(cfg: RunConfig, init_mutations: int = 1000) -> None:
    """Klos et al., Appendix A, Table 5 (evolution, migration and training rows); config #9 builds its
    initial individuals with 50 mutations instead (Sec. 4.2)."""
    assert cfg.run.strategy == "island-ga"
    assert cfg.ga.init_mutations == init_mutations and cfg.ga.generations == 1000
    assert cfg.ga.operators.model_dump() == {"insert": 0.2, "switch": 0.1, "delete": 0.2, "adjust": 0.4,
                                             "crossover": 0.1}
    assert (cfg.ga.selection, cfg.ga.replacement, cfg.ga.offspring_per_generation) == ("roulette",
                                                                                         "worst-if-better", 1)
    assert (cfg.fitness.primary, cfg.fitness.secondary) == ("val_accuracy", "params")
    train = cfg.train
    assert (train.epochs, train.patience, train.loss, train.batch_size, train.optimizer) == (100, 6, "mse", 256, "adam")
    assert (train.lr, train.weight_decay, train.dropout, train.bn_momentum) == (1e-3, 1e-5, 0.5, 0.01)
    assert cfg.task.val_fraction == pytest.approx(1 / 11, abs=1e-15)
    assert cfg.task.kind == "classification" and cfg.task.genome_family == "layers"


@pytest.mark.parametrize("name, dataset, threshold", [
    ("cifar10-island5", "cifar10", 0.90), ("mnist-island5", "mnist", 0.996),
    ("fashion-mnist-island5", "fashion-mnist", 0.94),
])
def test_island5_presets_are_klos_table_5(name, dataset, threshold):
    cfg = preset(name)
    klos_table5(cfg)
    assert (cfg.ga.islands, cfg.ga.population, cfg.ga.min_parent_age) == (5, 20, 1)
    assert (cfg.migration.period, cfg.migration.candidates, cfg.migration.fraction) == (20, 0.30, 0.05)
    assert cfg.train.activation == "leaky_relu" and cfg.train.kfolds == 1
    assert cfg.search_space.layers == ["C", "P", "R", "D", "I"] and cfg.search_space.inception_variants == [1, 2, 3]
    assert (cfg.task.dataset, cfg.fitness.threshold) == (dataset, threshold)


# Klos Table 2: additional layers (C, P, D always), min. age, k-folds, population, seeded.
TABLE_2 = {
    1: (["R"], [1, 2, 3], 1, 1, 20, False),
    2: (["R", "I"], [1, 2, 3], 1, 1, 20, False),
    3: (["I"], [1, 2, 3], 1, 1, 20, False),
    4: (["R"], [1, 2, 3], 5, 1, 20, False),
    5: (["R"], [1, 2, 3], 1, 5, 20, False),
    6: (["I"], [1], 1, 1, 20, False),
    7: (["R", "I"], [1], 1, 1, 20, False),
    8: (["I"], [1], 1, 1, 100, False),
    9: (["I"], [1], 1, 1, 20, True),
}


@pytest.mark.parametrize("number", sorted(TABLE_2))
def test_config_presets_are_klos_table_2(number):
    extra, variants, min_age, kfolds, population, seeded = TABLE_2[number]
    cfg = preset(f"cifar10-config{number}")
    klos_table5(cfg, init_mutations=50 if seeded else 1000)
    assert set(cfg.search_space.layers) == {"C", "P", "D", *extra}
    if "I" in extra:
        assert cfg.search_space.inception_variants == variants
    assert (cfg.ga.islands, cfg.ga.population, cfg.ga.min_parent_age, cfg.train.kfolds) == (1, population, min_age,
                                                                                            kfolds)
    assert (cfg.ga.seed_genome is not None) == seeded
    # Sec. 4.2: after each of the 50 mutations a proxy training (5 iterations, 256 samples, validation on
    # 1/10 of the training set size) approximates the fitness
    assert cfg.ga.init_proxy == seeded
    if seeded:
        assert (cfg.ga.init_proxy_iterations, cfg.ga.init_proxy_samples, cfg.ga.init_proxy_val_share) == (5, 256, 0.1)
    assert cfg.train.activation == "relu" and cfg.task.dataset == "cifar10"


def test_seed_genome_of_config9_fits_cifar10():
    cfg = preset("cifar10-config9")
    check_seed_genome(cfg)  # what `nas run` checks first: it parses, fits the input, the classes and the space
    genome = cfg.ga.seed_genome
    layers = genome.split(":")
    channels, height, width, classes = dataset_shape("cifar10")
    assert layers[0] == f"In_{width}_{height}_{channels}" and layers[-1] == f"D_{classes}"
    assert {layer[0] for layer in layers[1:-1]} <= {"C", "P", "D", "I"}
    check_seed_genome(preset("cifar10-config9"))  # parses, fits the input and the search space


def test_strategy_presets_use_their_strategy():
    expected = {"regevo": "regularized-evolution", "nsga2": "nsga2", "linas": "linas", "random": "random",
                "mu-plus-lambda": "mu-plus-lambda"}
    for suffix, strategy in expected.items():
        for dataset in ("cifar10", "digits"):
            assert preset(f"{dataset}-{suffix}").run.strategy == strategy
    regevo = preset("cifar10-regevo")
    assert (regevo.ga.population, regevo.ga.tournament_size, regevo.ga.replacement) == (100, 5, "aging")
    assert regevo.ga.population + regevo.ga.generations == 1000  # seed 004: 1,000 candidates
    assert preset("cifar10-linas").nsga2.objectives == ["val_accuracy", "latency_ms"]


def test_stl10_presets_follow_hajewski():
    for name, kind in (("stl10-denoise", "denoise"), ("stl10-manifold", "reconstruct")):
        cfg = preset(name)
        assert (cfg.task.kind, cfg.task.dataset, cfg.task.genome_family) == (kind, "stl10", "modules")
        assert (cfg.ga.population, cfg.ga.generations, cfg.run.strategy) == (10, 20, "mu-plus-lambda")
        assert cfg.fitness.primary == "inverse_val_loss" and cfg.train.loss == "mse"
        assert cfg.search_space.max_layers == 10 and cfg.search_space.filters == [8, 16, 32, 64]
    assert preset("stl10-denoise").task.noise_sigma ** 2 == pytest.approx(1 / 3)
    assert preset("stl10-denoise").train.epochs == 2


def test_quick_presets_are_small():
    for name in preset_names():
        if not name.startswith(("digits-", "synthetic-")):
            continue
        cfg = preset(name)
        assert cfg.task.dataset in ("digits", "synthetic")
        assert cfg.search_space.max_params <= 100_000 and cfg.search_space.max_layers <= 6
        budget = cfg.ga.islands * (cfg.ga.population + cfg.ga.generations * cfg.ga.offspring_per_generation)
        if cfg.run.strategy == "linas":
            budget = cfg.linas.iterations * cfg.linas.evaluations_per_iteration
        assert budget <= 120, (name, budget)
        if name.startswith("digits-"):
            assert cfg.train.epochs <= 10 and cfg.train.threads == 1


def test_synthetic_quick_needs_no_training():
    cfg = preset("synthetic-quick")
    assert cfg.task.kind == "synthetic" and cfg.task.dataset == "synthetic"


def test_load_preset_returns_raw_tables():
    assert load_preset("digits-quick")["task"]["dataset"] == "digits"


def test_example_file_is_up_to_date():
    checked_in = (REPO / "nascli.toml.example").read_text(encoding="utf-8")
    assert checked_in == example_toml(), (
        "nascli.toml.example is stale: run `python -m nascli.config.example > nascli.toml.example`")


def test_example_documents_every_key():
    text = example_toml()
    from nascli.config import known_keys

    for key in known_keys():
        section, _, leaf = key.rpartition(".")
        assert f"[{section}]" in text and (f"\n{leaf} = " in text or f"\n# {leaf} = " in text), key
