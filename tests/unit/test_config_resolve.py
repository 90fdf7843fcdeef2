"""Configuration resolution's exact words: every kind of problem's message and hint, file errors, the
layer blamed, stored configurations, nascli.toml's store URL."""

from __future__ import annotations

import importlib

import pytest

from nascli.config import RunConfig
from nascli.config.resolve import (
    DEFAULTS_SOURCE,
    Layers,
    _blame,
    _describe,
    _dotted_key,
    _short,
    _suggest,
    field_annotation,
    parse_override,
    read_project_store_url,
    read_toml,
    resolve,
    validate_stored,
)
from nascli.errors import ConfigError

resolve_module = importlib.import_module("nascli.config.resolve")  # the package exports a function of that name
EXAMPLE_HINT = "see nascli.toml.example for every key and its default"


def config_error(*overrides: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        resolve(overrides=list(overrides), project_file=None, env={})
    return caught.value


@pytest.mark.parametrize(("kind", "expected"), [
    ("int_type", "an integer"), ("int_parsing", "an integer"), ("float_type", "a number"),
    ("float_parsing", "a number"), ("bool_type", "true or false"), ("bool_parsing", "true or false"),
    ("string_type", "a string"), ("list_type", "a list, e.g. [1, 3]"), ("model_type", "a table"),
    ("dict_type", "a table"), ("int_from_float", "an integer")])
def test_every_type_problem_names_the_expected_type(kind, expected):
    assert _describe({"type": kind}, "ga.islands") == (f"wrong type, expected {expected}",
                                                      f"e.g. --set ga.islands=<{expected}>")


@pytest.mark.parametrize(("kind", "limit", "key", "expected"), [
    ("greater_than", 0, "task.val_fraction", ("must be > 0", "allowed: a number > 0")),
    ("greater_than_equal", 1, "ga.islands", ("must be >= 1", "allowed: an integer >= 1")),
    ("less_than", 1, "task.val_fraction", ("must be < 1", "allowed: a number < 1")),
    ("less_than_equal", 1, "ga.operators.insert", ("must be <= 1", "allowed: a number <= 1")),
    ("less_than_equal", 64, "ga.islands",
     ("must be <= 64", "allowed: an integer <= 64; larger sizes would not finish")),
    ("less_than", 64, "ga.islands", ("must be < 64", "allowed: an integer < 64"))])
def test_every_bound_names_its_limit_and_the_kind_of_number(kind, limit, key, expected):
    assert _describe({"type": kind, "ctx": {"bound": limit}}, key) == expected


def test_the_other_problems_have_their_own_words():
    assert _describe({"type": "finite_number"}, "task.val_fraction") == (
        "must be a finite number (not inf or nan)", "e.g. --set task.val_fraction=<a number>")
    assert _describe({"type": "literal_error", "ctx": {"expected": "'a', 'b' or 'c d'"}}, "ga.selection") == (
        "not an allowed value", "allowed: a, b, c d")
    assert _describe({"type": "literal_error", "ctx": {"expected": "'aX' or 'Xb'"}}, "k") == (
        "not an allowed value", "allowed: aX, Xb")
    assert _describe({"type": "literal_error"}, "ga.selection") == ("not an allowed value", "allowed: ")
    assert _describe({"type": "config_rule", "ctx": {"message": "x needs y"}}, "ga") == (
        "x needs y", "see docs/configuration.md")
    assert _describe({"type": "extra_forbidden"}, "ga.islandz") == ("unknown key", "did you mean ga.islands?")
    assert _describe({"type": "value_error", "msg": "Value error, odd size"}, "k") == ("odd size", EXAMPLE_HINT)
    assert _describe({"type": "something_else"}, "k") == ("invalid", EXAMPLE_HINT)


def test_unknown_keys_suggest_a_key_then_the_section_then_the_sections():
    assert _suggest("ga.islandz") == "did you mean ga.islands?"
    assert _suggest("cache.zzzzzzzzzz") == "keys of [cache]: scope"
    assert _suggest("zzzzzzzzzzzz") == ("sections: run, task, search_space, ga, cache, migration, fitness, train, "
                                        "worker, store, nsga2, linas")


def test_short_keeps_sixty_characters():
    assert _short("x" * 58) == repr("x" * 58)  # 60 characters with the quotes
    assert _short("x" * 59) == "'" + "x" * 56 + "..."
    assert _short("abcdef", limit=5) == "'a..."


def test_a_resolved_error_shows_source_key_value_and_the_count_of_the_rest():
    error = config_error("ga.islands=0", "ga.population=0")
    assert error.message == "--set ga.islands=0: ga.islands = 0: must be >= 1 (and 1 more)"
    assert error.hint == "allowed: an integer >= 1"
    error = config_error("gaa.islands=3")
    assert error.message == "--set gaa.islands=3: gaa.islands: unknown key"
    assert error.hint == "did you mean ga.islands?"
    error = config_error("run.name=" + "n" * 70, "ga.islands=x")
    assert error.message == "--set ga.islands=x: ga.islands = 'x': wrong type, expected an integer"


def test_layers_name_the_source_of_a_key_its_parent_or_its_last_child():
    layers = Layers()
    layers.add({"ga": {"islands": 3, "population": 4}}, "file a")
    layers.set("ga.population", 5, "--set b")
    layers.set("run.name", "x", "file c")
    assert layers.source_of("ga.islands") == "file a"
    assert layers.source_of("ga.islands.deeper.still") == "file a"
    assert layers.source_of("ga") == "--set b"
    assert layers.source_of("run") == "file c"
    assert layers.source_of("train") == DEFAULTS_SOURCE
    assert layers.source_of("") == DEFAULTS_SOURCE
    assert layers.source_of("g") == DEFAULTS_SOURCE
    assert layers.nested() == {"ga": {"islands": 3, "population": 5}, "run": {"name": "x"}}


def test_read_toml_names_each_failure(tmp_path):
    with pytest.raises(ConfigError) as caught:
        read_toml(tmp_path / "absent.toml", "LABEL")
    assert (caught.value.message, caught.value.hint) == ("LABEL: file not found", "check the path")
    with pytest.raises(ConfigError) as caught:
        read_toml(tmp_path, "LABEL")
    assert (caught.value.message, caught.value.hint) == ("LABEL: cannot read it (Is a directory)",
                                                         "check the path and permissions")
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b"a = '\xe9'\n")
    with pytest.raises(ConfigError) as caught:
        read_toml(latin, "LABEL")
    assert (caught.value.message, caught.value.hint) == ("LABEL: not UTF-8 text (byte 5 is 0xe9)",
                                                         "save it as UTF-8 (TOML files are UTF-8)")
    broken = tmp_path / "broken.toml"
    broken.write_text("a = \n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_toml(broken, "LABEL")
    assert caught.value.message == "LABEL: not valid TOML: Invalid value (at line 1, column 5)"
    assert caught.value.hint == "see nascli.toml.example for the format"
    good = tmp_path / "good.toml"
    good.write_text("a = 'é'\n", encoding="utf-8")
    assert read_toml(good, "LABEL") == {"a": "é"}


def test_a_stored_configuration_validates_or_names_the_run():
    assert validate_stored("r-1", RunConfig().model_dump(mode="json")) == RunConfig()
    with pytest.raises(ConfigError) as caught:
        validate_stored("r-1", {"ga": {"islands": "x"}})
    assert caught.value.message == ("run r-1: its stored configuration is invalid: ga.islands: "
                                    "wrong type, expected an integer")
    assert caught.value.hint == ("the run row was edited or written by another nascli version; "
                                 "start a new run with `nas run`")
    with pytest.raises(ConfigError) as caught:
        validate_stored("r-2", [1])
    assert caught.value.message.startswith("run r-2: its stored configuration is invalid: the whole: ")


def test_project_store_url_is_read_only_when_set_as_text(tmp_path):
    project = tmp_path / "nascli.toml"
    assert read_project_store_url(None) is None
    assert read_project_store_url(project) is None
    project.write_text("[run]\nname = 'x'\n")
    assert read_project_store_url(project) is None
    project.write_text("store = 3\n")
    assert read_project_store_url(project) is None
    project.write_text("[store]\nurl = ''\n")
    assert read_project_store_url(project) is None
    project.write_text("[store]\nurl = 'sqlite:///x.db'\n")
    assert read_project_store_url(project) == "sqlite:///x.db"
    project.write_text("[store]\nurl = 5\n")
    with pytest.raises(ConfigError) as caught:
        read_project_store_url(project)
    assert caught.value.message == f"{project}: store.url = 5: wrong type, expected a string"
    assert caught.value.hint == 'e.g. url = "sqlite:///nas.db"'


def test_a_malformed_override_shows_an_example():
    with pytest.raises(ConfigError) as caught:
        parse_override("no-equals-sign")
    assert caught.value.message == "--set 'no-equals-sign': expected section.key=value"
    assert caught.value.hint == "e.g. --set ga.islands=3 --set task.kind=synthetic"


def test_a_choice_of_words_takes_a_number_as_a_word():
    assert parse_override("ga.selection=1") == ("ga.selection", "1")
    assert parse_override("ga.islands=1") == ("ga.islands", 1)


def test_field_annotation_is_none_below_a_leaf():
    assert field_annotation("ga.islands") is int
    assert field_annotation("ga.islands.deeper") is None
    assert field_annotation("run.name.deeper") is None
    assert field_annotation("nothing.here") is None


def test_a_later_key_replaces_the_scalar_above_it_and_the_keys_beneath_it():
    layers = Layers()
    layers.set("ga", 3, "first")
    layers.set("ga.islands", 2, "second")
    assert (layers.values, layers.sources) == ({"ga.islands": 2}, {"ga.islands": "second"})
    layers.set("ga", 4, "third")
    assert (layers.values, layers.sources) == ({"ga": 4}, {"ga": "third"})


def test_a_rule_no_layer_touched_blames_the_defaults():
    rule = {"type": "config_rule", "ctx": {"message": "ga.islands must divide train.epochs"}}
    assert _blame(rule, "ga", Layers()) == DEFAULTS_SOURCE
    layers = Layers()
    layers.set("run.name", "x", "file")
    assert _blame(rule, "ga", layers) == DEFAULTS_SOURCE
    layers.set("train.epochs", 3, "--set train.epochs=3")
    assert _blame(rule, "ga", layers) == "--set train.epochs=3"


def test_only_a_rule_adds_its_key_to_the_location():
    assert _dotted_key({"type": "int_type", "loc": ("ga", 0, "islands"), "ctx": {"key": "other"}}) == "ga.islands"
    assert _dotted_key({"type": "config_rule", "loc": ("ga",), "ctx": {"key": "islands"}}) == "ga.islands"


def test_errors_name_the_project_file_that_set_the_value(tmp_path):
    project = tmp_path / "nascli.toml"
    project.write_text("[ga]\nislands = 0\n")
    with pytest.raises(ConfigError) as caught:
        resolve(project_file=project, env={})
    assert caught.value.message == f"{project}: ga.islands = 0: must be >= 1"
    project.write_text("[ga\n")
    with pytest.raises(ConfigError) as caught:
        resolve(project_file=project, env={})
    assert caught.value.message.startswith(f"{project}: not valid TOML: ")


def test_a_rule_over_several_keys_shows_no_value():
    error = config_error("task.kind=denoise")
    assert error.message == ("--set task.kind=denoise: task.genome_family: must be modules for task.kind denoise "
                             "(autoencoders are built from Hajewski modules)")
    assert error.hint == "see docs/configuration.md"
    error = config_error("ga=3")
    assert error.message == "--set ga=3: ga = 3: wrong type, expected a table"
    assert error.hint == "e.g. --set ga=<a table>"


def test_section_keys_are_listed_below_the_section_nested_tables_included():
    hint = _suggest("ga.zzzzzzzzzzzzzzzzzz")
    assert hint.startswith("keys of [ga]: islands, population, generations, ")
    assert hint.endswith(", seed_genome, operators.insert, operators.switch, operators.delete, operators.adjust, "
                         "operators.crossover")


def test_a_source_is_found_at_every_depth_above_the_key():
    layers = Layers()
    layers.set("ga.islands", 3, "deep")
    layers.set("run", {}, "top")
    assert layers.source_of("ga.islands.deeper") == "deep"
    assert layers.source_of("run.name") == "top"


def test_a_stored_configuration_out_of_range_names_the_bound():
    with pytest.raises(ConfigError) as caught:
        validate_stored("r-3", {"ga": {"islands": 0}})
    assert caught.value.message == "run r-3: its stored configuration is invalid: ga.islands: must be >= 1"


def test_the_project_file_labels_its_own_errors_when_read_for_the_store_url(tmp_path):
    project = tmp_path / "nascli.toml"
    project.write_text("[store\n")
    with pytest.raises(ConfigError) as caught:
        read_project_store_url(project)
    assert caught.value.message.startswith(f"{project}: not valid TOML: ")


def test_an_error_in_a_preset_names_the_preset(monkeypatch):
    # the shipped presets are valid (test_presets.py), so a broken one stands in for a preset's own value
    monkeypatch.setattr(resolve_module, "load_preset", lambda name: {"ga": {"islands": 0}})
    with pytest.raises(ConfigError) as caught:
        resolve("broken", project_file=None, env={})
    assert caught.value.message == "preset 'broken': ga.islands = 0: must be >= 1"
