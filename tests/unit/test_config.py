"""The typed run configuration: defaults, resolution order, --set parsing, one-line errors, helpers."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nascli.config import (
    DEFAULT_DB_URL,
    RunConfig,
    data_dir_of,
    dataset_shape,
    default_data_dir,
    input_shape,
    known_keys,
    parse_override,
    resolve,
    resolve_db_url,
    search_space_dict,
    task_for,
    training_config_hash,
)
from nascli.errors import ConfigError
from nascli.task import Task

NO_ENV: dict[str, str] = {}


def resolve_clean(*overrides: str, **kwargs) -> RunConfig:
    """resolve() isolated from the working directory's nascli.toml and the caller's environment."""
    kwargs.setdefault("project_file", None)
    kwargs.setdefault("env", NO_ENV)
    return resolve(overrides=list(overrides), **kwargs)


def config_error(*overrides: str, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        resolve_clean(*overrides, **kwargs)
    return caught.value


# ---------------------------------------------------------------- defaults


def test_defaults_follow_klos_table_5():
    cfg = RunConfig()
    assert (cfg.ga.islands, cfg.ga.population, cfg.ga.generations, cfg.ga.init_mutations) == (5, 20, 1000, 1000)
    assert cfg.ga.operators.model_dump() == {"insert": 0.2, "switch": 0.1, "delete": 0.2, "adjust": 0.4,
                                             "crossover": 0.1}
    assert (cfg.migration.period, cfg.migration.candidates, cfg.migration.fraction) == (20, 0.30, 0.05)
    assert (cfg.ga.selection, cfg.ga.replacement, cfg.ga.min_parent_age) == ("roulette", "worst-if-better", 1)
    train = cfg.train
    assert (train.epochs, train.patience, train.batch_size, train.optimizer, train.lr, train.weight_decay) == (
        100, 6, 256, "adam", 1e-3, 1e-5)
    assert (train.loss, train.activation, train.dropout, train.bn_momentum) == ("mse", "leaky_relu", 0.5, 0.01)
    assert cfg.task.val_fraction == pytest.approx(1 / 11)
    assert cfg.worker.heartbeat_seconds < cfg.worker.lease_seconds
    assert cfg.nsga2.objectives == ["val_accuracy", "params"]  # filled from [fitness]


def test_round_trip_through_json_is_exact():
    cfg = resolve_clean("ga.islands=3", "fitness.threshold=0.5", "task.data_dir=/data")
    stored = json.loads(json.dumps(cfg.model_dump(mode="json")))
    assert RunConfig.model_validate(stored) == cfg


def test_lists_are_canonical_so_equal_spaces_hash_equal():
    cfg = resolve_clean("search_space.kernels=[5, 3, 3, 1]", "search_space.layers=['I', 'C']")
    assert cfg.search_space.kernels == [1, 3, 5]
    assert cfg.search_space.layers == ["C", "I"]


def test_known_keys_cover_nested_tables():
    keys = known_keys()
    assert "ga.operators.crossover" in keys and "worker.lease_seconds" in keys and "task.synthetic_shape" in keys
    assert "ga.operators" not in keys


# ---------------------------------------------------------------- resolution order


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_each_layer_overrides_the_one_below(tmp_path):
    project = write(tmp_path / "nascli.toml", "[ga]\nislands = 3\npopulation = 7\n[store]\nurl = 'sqlite:///p.db'\n")
    config = write(tmp_path / "run.toml", "[ga]\npopulation = 9\ngenerations = 11\n")
    env = {"NAS_DB_URL": "sqlite:///env.db"}
    cfg = resolve("digits-quick", config, [], project_file=project, env=env)
    assert cfg.task.dataset == "digits"  # from the preset
    assert cfg.ga.islands == 3  # nascli.toml beats the preset (2)
    assert cfg.ga.population == 9  # config file beats nascli.toml
    assert cfg.ga.generations == 11
    assert cfg.store.url == "sqlite:///env.db"  # NAS_DB_URL beats files
    cfg = resolve("digits-quick", config, ["ga.population=4", "store.url=sqlite:///set.db"], project_file=project,
                  env=env)
    assert cfg.ga.population == 4 and cfg.store.url == "sqlite:///set.db"  # --set beats everything


def test_missing_project_file_is_fine_but_missing_config_file_is_an_error(tmp_path):
    assert resolve_clean(project_file=tmp_path / "absent.toml").ga.islands == 5
    error = config_error(config_file=tmp_path / "absent.toml")
    assert "absent.toml" in error.message and "not found" in error.message


def test_a_table_replaces_only_what_it_sets(tmp_path):
    config = write(tmp_path / "c.toml", "[ga.operators]\ninsert = 0.3\nadjust = 0.3\n")
    cfg = resolve_clean(config_file=config)
    assert cfg.ga.operators.insert == 0.3 and cfg.ga.operators.switch == 0.1


def test_later_scalar_replaces_a_table_and_later_table_replaces_a_scalar():
    cfg = resolve_clean("ga.operators={insert=0.5, switch=0.0, delete=0.0, adjust=0.5, crossover=0.0}")
    assert cfg.ga.operators.insert == 0.5
    error = config_error("ga.islands=2", "ga=3")
    assert "ga = 3" in error.message and "table" in error.message


# ---------------------------------------------------------------- --set parsing


@pytest.mark.parametrize("text, key, value", [
    ("ga.islands=3", "ga.islands", 3),
    ("train.lr=1e-4", "train.lr", 1e-4),
    ("train.keep_checkpoints=true", "train.keep_checkpoints", True),
    ("train.amp=bf16", "train.amp", "bf16"),
    ("search_space.kernels=[1, 3]", "search_space.kernels", [1, 3]),
    ("train.activation=relu", "train.activation", "relu"),  # bare word -> string
    ('train.activation="relu"', "train.activation", "relu"),
    ("store.url=postgresql+psycopg://u@h:5432/db", "store.url", "postgresql+psycopg://u@h:5432/db"),
    ("run.name=2024", "run.name", "2024"),  # a string key keeps the text, not the number
    ("task.data_dir= /tmp/x ", "task.data_dir", "/tmp/x"),
    ("run.description=a=b", "run.description", "a=b"),
])
def test_parse_override(text, key, value):
    assert parse_override(text) == (key, value)


@pytest.mark.parametrize("text", ["noequals", "=3", ".a=1", "a..b=1", "a b=1"])
def test_malformed_override_is_a_config_error(text):
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override(text)


def test_none_word_clears_optional_keys():
    cfg = resolve("digits-quick", overrides=["fitness.threshold=none", "ga.seed_genome=none"], project_file=None,
                  env=NO_ENV)
    assert cfg.fitness.threshold is None and cfg.ga.seed_genome is None


def test_set_works_as_the_design_promises():
    cfg = resolve_clean("ga.islands=3", "task.kind=synthetic", "worker.lease_seconds=5", "worker.heartbeat_seconds=1")
    assert (cfg.ga.islands, cfg.task.kind, cfg.worker.lease_seconds) == (3, "synthetic", 5.0)


# ---------------------------------------------------------------- errors: one line, source, key, allowed


def test_unknown_key_suggests_the_closest():
    error = config_error("ga.island=3")
    assert error.message == "--set ga.island=3: ga.island: unknown key"
    assert error.hint == "did you mean ga.islands?"
    assert config_error("gaa.islands=3").hint == "did you mean ga.islands?"
    assert "sections: run, task" in config_error("zzz=1").hint


def test_wrong_type_names_key_value_and_expected_type():
    error = config_error("ga.islands=abc")
    assert error.message == "--set ga.islands=abc: ga.islands = 'abc': wrong type, expected an integer"
    assert "ga.islands" in config_error('ga.islands="5"').message  # strict: a TOML string is not a number
    assert "true or false" in config_error("train.keep_checkpoints=yes").message
    assert config_error("train.amp=yes").hint == "allowed: auto, bf16, fp16, off"


def test_out_of_range_gives_the_bound():
    error = config_error("ga.islands=0")
    assert "ga.islands = 0: must be >= 1" in error.message and error.hint == "allowed: an integer >= 1"
    assert "must be < 1" in config_error("task.val_fraction=1.0").message
    assert "must be > 0" in config_error("task.val_fraction=0").message


def test_bad_choice_lists_the_allowed_values():
    error = config_error("run.strategy=genetic")
    assert "run.strategy = 'genetic'" in error.message
    assert error.hint == "allowed: island-ga, mu-plus-lambda, regularized-evolution, nsga2, linas, random"
    assert config_error("search_space.layers=['C', 'X']").hint == "allowed: C, P, R, D, I"


def test_errors_name_the_file_they_came_from(tmp_path):
    project = write(tmp_path / "nascli.toml", "[ga]\nislands = -1\n")
    assert config_error(project_file=project).message.startswith(f"{project}: ga.islands = -1")
    config = write(tmp_path / "my.toml", "[train]\noptimiser = 'adam'\n")
    error = config_error(config_file=config)
    assert error.message.startswith(f"config file {config}: train.optimiser: unknown key")
    assert error.hint == "did you mean train.optimizer?"
    broken = write(tmp_path / "broken.toml", "[ga\n")
    assert "not valid TOML" in config_error(config_file=broken).message
    error = config_error("store.url=[1]", env={"NAS_DB_URL": ""})
    assert error.message.startswith("--set store.url=[1]")


def test_unknown_preset_lists_the_available_ones():
    error = config_error(preset="cifar11-island5")
    assert "cifar11-island5" in error.message
    assert "cifar10-island5" in error.hint and "digits-quick" in error.hint


@pytest.mark.parametrize("overrides, key, words", [
    (["worker.heartbeat_seconds=200"], "worker.heartbeat_seconds", "below worker.lease_seconds"),
    (["ga.operators.crossover=0.5"], "ga.operators.crossover", "sum to 1"),
    (["fitness.threshold=1.5"], "fitness.threshold", "[0, 1]"),
    (["fitness.primary=inverse_val_loss", "fitness.threshold=-1"], "fitness.threshold", "> 0"),
    (["search_space.kernels=[]"], "search_space.kernels", "must not be empty"),
    (["search_space.filters=[0, 8]"], "search_space.filters", "positive"),
    (["search_space.layers=[]"], "search_space.layers", "at least one"),
    (["search_space.inception_variants=[]"], "search_space.inception_variants", "at least one variant"),
    (["ga.min_parent_age=0"], "ga.min_parent_age", ">= 1"),
    (["task.kind=denoise"], "task.genome_family", "modules"),
    (["ga.selection=tournament", "ga.population=3"], "ga.tournament_size", "ga.population"),
    (["fitness.secondary=latency_ms"], "fitness.secondary", "measure_latency"),
    (["run.strategy=nsga2", "nsga2.objectives=['params']"], "nsga2.objectives", "two objectives"),
    (["nsga2.objectives=['params', 'params']"], "nsga2.objectives", "distinct"),
    (["migration.datasets=6"], "migration.datasets", "ga.islands"),
    (["task.synthetic_shape=[1, 8]"], "task.synthetic_shape", "three positive"),
    (["run.strategy=regularized-evolution", "ga.replacement=worst-if-better"], "ga.replacement", "use aging"),
    (["run.strategy=nsga2", "ga.replacement=aging"], "ga.replacement", "own survivor selection"),
    # seed 001's modular classifier repeats the module after each reduction: mnist's 28x28 halves only twice
    (["task.genome_family=modules", "task.dataset=mnist", "task.reduction_modules=3"], "task.reduction_modules",
     "divisible by 8; mnist is 28x28"),
    (["task.kind=denoise", "task.genome_family=modules", "train.loss=mse", "fitness.primary=inverse_val_loss",
      "task.dataset=stl10", "ga.seed_genome=In_96_96_3:C_3-3-1-1-8:D_10"], "ga.seed_genome", "not a modules genome"),
    (["ga.seed_genome=3x3conv2d:16"], "ga.seed_genome", "not a layers genome"),
])
def test_cross_field_and_range_rules(overrides, key, words):
    error = config_error(*overrides)
    assert key in error.message and words in error.message
    assert "\n" not in str(error)


def test_rule_over_two_keys_blames_the_layer_that_broke_it():
    # task.genome_family keeps its default, but the user's --set task.kind=denoise made it wrong
    assert config_error("task.kind=denoise").message.startswith("--set task.kind=denoise: task.genome_family")


def test_denoise_needs_sizes_divisible_by_the_reductions():
    cfg = resolve("stl10-denoise", project_file=None, env=NO_ENV)
    assert cfg.task.kind == "denoise"
    error = config_error("task.dataset=mnist", "task.reduction_modules=3", preset="stl10-denoise")
    assert "divisible by 8; mnist is 28x28" in error.message


def test_many_problems_report_the_first_and_count_the_rest():
    error = config_error("ga.islands=0", "ga.population=0")
    assert error.message.endswith("(and 1 more)")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_override_text_gives_a_config_or_a_one_line_config_error(text):
    try:
        resolve_clean(text)
    except ConfigError as error:
        assert "\n" not in error.message


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(known_keys()), st.one_of(st.integers(-5, 5), st.floats(allow_nan=False), st.booleans(),
                                                st.text(max_size=8), st.lists(st.integers(-2, 9), max_size=4)))
def test_any_value_for_any_key_validates_or_fails_cleanly(key, value):
    try:
        cfg = resolve_clean()
        layers = cfg.model_dump(mode="json")
        section, _, rest = key.partition(".")
        node = layers[section]
        *parents, leaf = rest.split(".")
        for parent in parents:
            node = node[parent]
        node[leaf] = value
        validated = RunConfig.model_validate(layers)
        assert RunConfig.model_validate(validated.model_dump(mode="json")) == validated
    except Exception as error:  # pydantic's ValidationError is what resolve() turns into ConfigError
        from pydantic import ValidationError

        assert isinstance(error, ValidationError)


# ---------------------------------------------------------------- database URL


def test_resolve_db_url_order(tmp_path):
    project = write(tmp_path / "nascli.toml", "[store]\nurl = 'sqlite:///project.db'\n")
    env = {"NAS_DB_URL": "sqlite:///env.db"}
    assert resolve_db_url("sqlite:///cli.db", project, env) == "sqlite:///cli.db"
    assert resolve_db_url(None, project, env) == "sqlite:///env.db"
    assert resolve_db_url(None, project, {}) == "sqlite:///project.db"
    assert resolve_db_url(None, tmp_path / "absent.toml", {}) == DEFAULT_DB_URL
    assert resolve_db_url(None, None, {"NAS_DB_URL": ""}) == DEFAULT_DB_URL
    bad = write(tmp_path / "bad.toml", "[store]\nurl = 3\n")
    with pytest.raises(ConfigError, match="store.url"):
        resolve_db_url(None, bad, {})


def test_redact_db_url_hides_passwords_only():
    from nascli.url_secrets import redact as redact_db_url

    assert redact_db_url("postgresql+psycopg://nas:s3cret@db:5432/nas") == "postgresql+psycopg://nas:***@db:5432/nas"
    assert redact_db_url("postgresql+psycopg://nas@db/nas") == "postgresql+psycopg://nas@db/nas"
    assert redact_db_url("sqlite:///nas.db") == "sqlite:///nas.db"


# ---------------------------------------------------------------- shapes, tasks, cache key, paths


def test_dataset_shapes():
    assert dataset_shape("digits") == (1, 8, 8, 10)
    assert dataset_shape("mnist") == (1, 28, 28, 10)
    assert dataset_shape("fashion-mnist") == (1, 28, 28, 10)
    assert dataset_shape("cifar10") == (3, 32, 32, 10)
    assert dataset_shape("stl10") == (3, 96, 96, 10)
    with pytest.raises(ConfigError, match="synthetic"):
        dataset_shape("synthetic")


def test_input_shape_of_synthetic_is_configured():
    cfg = resolve_clean("task.kind=synthetic", "task.dataset=synthetic", "task.synthetic_shape=[3, 16, 12]",
                        "task.synthetic_classes=4")
    assert input_shape(cfg.task) == (3, 16, 12, 4)
    assert input_shape(cfg.task.model_dump(mode="json")) == (3, 16, 12, 4)


def test_task_for_is_self_contained_json():
    cfg = resolve("digits-quick", project_file=None, env=NO_ENV)
    task = task_for(cfg, "In_8_8_1:D_10", seed=7)
    assert Task.from_json(task.to_json()) == task
    assert task.task["dataset"] == "digits" and task.train["epochs"] == cfg.train.epochs and task.seed == 7
    assert set(task.search_space) == {"layers", "inception_variants", "kernels", "strides", "filters", "dense_units",
                                      "max_layers", "max_params"}
    assert search_space_dict(cfg)["kernels"] == [1, 3]


def test_training_config_hash_ignores_cosmetics_only():
    base = resolve_clean()
    same = resolve_clean("task.synthetic_seconds=3", "task.data_dir=/elsewhere", "train.threads=2",
                         "train.keep_checkpoints=true", "ga.islands=2", "run.seed=9")
    assert training_config_hash(same) == training_config_hash(base)
    assert len(training_config_hash(base)) == 16
    for change in ("train.epochs=5", "train.lr=0.01", "task.dataset=mnist", "task.val_fraction=0.2", "train.amp=off"):
        assert training_config_hash(resolve_clean(change)) != training_config_hash(base), change


def test_default_data_dir_honours_xdg(tmp_path):
    assert default_data_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "nascli" / "data"
    assert default_data_dir({"HOME": "/home/u"}) == Path("/home/u/.cache/nascli/data")
    assert data_dir_of({"data_dir": None}, {"XDG_CACHE_HOME": "/c"}) == Path("/c/nascli/data")
    assert data_dir_of({"data_dir": "/d"}, {}) == Path("/d")


def test_noise_sigma_default_is_hajewski():
    assert RunConfig().task.noise_sigma == pytest.approx(math.sqrt(1 / 3))


def test_example_file_reads_back_to_the_defaults():
    text = (Path(__file__).resolve().parents[2] / "nascli.toml.example").read_text(encoding="utf-8")
    assert RunConfig.model_validate(tomllib.loads(text)) == RunConfig()


def test_replacement_defaults_to_the_strategys_own_rule():
    assert resolve_clean().ga.replacement == "worst-if-better"
    assert resolve_clean("run.strategy=regularized-evolution").ga.replacement == "aging"
    assert resolve_clean("run.strategy=mu-plus-lambda").ga.replacement is None
    assert resolve_clean("ga.replacement=aging").ga.replacement == "aging"


def test_resolve_checks_the_seed_genome_against_the_task_and_the_space():
    # part of validating a configuration: `nas run --show-config` refuses it as `nas run` does
    with pytest.raises(ConfigError, match="has 10 classes"):
        resolve("digits-quick", overrides=['ga.seed_genome="In_8_8:D_7"'], project_file=None, env={})
    with pytest.raises(ConfigError, match="outside the search space"):
        resolve("digits-quick", overrides=['ga.seed_genome="In_8_8:C_3-3-1-1-32:C_3-3-1-1-32:D_1-1-1-1-64:D_10"',
                                           "search_space.max_layers=2"], project_file=None, env={})
    assert resolve("digits-quick", overrides=['ga.seed_genome="In_8_8:D_10"'], project_file=None,
                   env={}).ga.seed_genome == "In_8_8:D_10"
