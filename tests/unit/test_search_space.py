"""SearchSpace: built from the [search_space] table, validated, canonical."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nascli.errors import ConfigError
from nascli.ga.search_space import SearchSpace


def test_defaults_match_the_config_defaults():
    from nascli.config import RunConfig, search_space_of

    assert search_space_of(RunConfig()) == SearchSpace()


@pytest.mark.parametrize("preset", ["cifar10-island5", "cifar10-config6", "digits-quick", "mnist-island5"])
def test_every_preset_maps_onto_a_space(preset):
    from nascli.config import resolve, search_space_of

    space = search_space_of(resolve(preset=preset, project_file=None, env={}))
    assert space.layers and space.max_layers >= 1


def test_klos_if1_space():
    space = SearchSpace.from_dict({"layers": ["C", "P", "D", "I"], "inception_variants": [1]})
    assert space.layers == ("C", "P", "D", "I")
    assert space.inception_variants == (1,)
    assert space.spatial_layers == ("C", "P", "I")


def test_lists_are_canonical_so_equal_spaces_compare_equal():
    a = SearchSpace.from_dict({"layers": ["I", "C"], "kernels": [5, 3, 3], "filters": [64, 16]})
    b = SearchSpace.from_dict({"layers": ["C", "I"], "kernels": [3, 5], "filters": [16, 64]})
    assert a == b and hash(a) == hash(b)
    assert a.layers == ("C", "I") and a.kernels == (3, 5)


@given(st.builds(
    SearchSpace,
    layers=st.lists(st.sampled_from("CPRDI"), min_size=1),
    inception_variants=st.lists(st.integers(0, 3), min_size=1),
    kernels=st.lists(st.integers(1, 9), min_size=1),
    strides=st.lists(st.integers(1, 3), min_size=1),
    filters=st.lists(st.integers(1, 512), min_size=1),
    max_layers=st.integers(1, 50),
    max_params=st.integers(1, 10**9),
))
def test_to_dict_round_trips(space):
    assert SearchSpace.from_dict(space.to_dict()) == space


@pytest.mark.parametrize("data, words", [
    ({"layers": []}, "at least one layer type"),
    ({"layers": ["X"]}, "unknown layer type"),
    ({"layers": "CP"}, "must be a list"),
    ({"layers": ["I"], "inception_variants": []}, "at least one variant"),
    ({"inception_variants": [4]}, "not allowed"),
    ({"kernels": []}, "must not be empty"),
    ({"kernels": [0, 3]}, "integers >= 1"),
    ({"filters": [16, "32"]}, "integers >= 1"),
    ({"strides": [True]}, "integers >= 1"),
    ({"max_layers": 0}, "positive integer"),
    ({"max_params": 1.5}, "positive integer"),
    ({"kernel": [3]}, "unknown key"),
])
def test_bad_spaces_are_config_errors_naming_the_key(data, words):
    with pytest.raises(ConfigError) as caught:
        SearchSpace.from_dict(data)
    assert words in caught.value.message
    assert caught.value.hint


def test_inception_variants_may_be_empty_without_inception():
    assert SearchSpace.from_dict({"layers": ["C"], "inception_variants": []}).inception_variants == ()


def test_violations_check_count_types_and_values():
    from nascli.ga.genome import parse_genome

    space = SearchSpace.from_dict({"layers": ["C", "P", "D"], "kernels": [3], "strides": [1],
                                   "filters": [16], "dense_units": [64], "max_layers": 3})
    assert space.violations(parse_genome("In_28_28:C_3-3-1-1-16:P_2-2-2-2-0:D_1-1-1-1-64:D_10")) == []
    problems = space.violations(parse_genome(
        "In_28_28:C_5-5-1-1-16:C_3-3-2-2-16:C_3-3-1-1-8:R_3-3-1-1-16:P_3-3-2-2-0:C_3-1-1-1-16:D_1-1-1-1-32:D_10"))
    assert problems == [
        "7 hidden layers > max_layers 3",
        "layer 1 (C): kernel 5x5 not in (3,)",
        "layer 2 (C): stride 2x2 not in (1,)",
        "layer 3 (C): 8 filters not in filters (16,)",
        "layer 4 (R): type not in layers ('C', 'P', 'D')",
        "layer 6 (C): kernel 3x1 not in (3,)",
        "layer 7 (D): 32 units not in dense_units (64,)",
    ]


def test_violations_ignore_disabled_branches_and_pool_branch_factorisation():
    from nascli.ga.genome import parse_genome

    space = SearchSpace.from_dict({"layers": ["I"], "inception_variants": [1], "kernels": [3], "strides": [1],
                                   "filters": [16]})
    ok = parse_genome("In_28_28:I.1-1-1_3-3-1-1-16.2-0-0_1-1-1-1-0.3-0-0_1-1-1-1-0.4-1-0_3-3-1-1-16:D_10")
    assert space.violations(ok) == []
    bad = parse_genome("In_28_28:I.1-1-2_3-3-1-1-16.2-1-1_5-5-1-1-32.3-0-0_1-1-1-1-0.4-0-0_1-1-1-1-0:D_10")
    assert space.violations(bad) == [
        "layer 1 (I) branch 1: factorisation 2 not in (1,)",
        "layer 1 (I) branch 2: kernel 5x5 not in (3,)",
        "layer 1 (I) branch 2: 32 filters not in (16,)",
    ]
