"""Variation operators: every child parses, round-trips, fits its input and respects the space; each
operator does what its name says; the 1,000-mutation initialisation is deterministic."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter

import pytest
from genome_strategies import genomes, inceptions, layer_specs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nascli.errors import ConfigError, GenomeError
from nascli.ga import operators
from nascli.ga.cost import analyse
from nascli.ga.genome import (
    Branch,
    Genome,
    InceptionSpec,
    LayerSpec,
    format_genome,
    format_layer,
    parse_genome,
)
from nascli.ga.operators import (
    MUTATIONS,
    OPERATORS,
    apply,
    crossover,
    minimal_genome,
    mutate,
    random_genome,
    violations,
)
from nascli.ga.search_space import SearchSpace
from nascli.ga.selection import choose_operator
from nascli.ga.strategies.base import operator_table

SHAPES = ((28, 28, 1), (32, 32, 3), (8, 8, 1), (96, 96, 3))  # width, height, channels
DEFAULT = SearchSpace()
KLOS_IF1 = SearchSpace(layers=("C", "P", "D", "I"), inception_variants=(1,))
TIGHT = SearchSpace(kernels=(3, 5, 7), strides=(1, 2, 3), filters=(8, 16), dense_units=(16,), max_layers=6,
                    max_params=400_000)
DENSE_ONLY = SearchSpace(layers=("D",), dense_units=(8, 32), max_layers=3)
SPACES = (DEFAULT, KLOS_IF1, TIGHT, DENSE_ONLY)


def assert_valid(genome: Genome, space: SearchSpace) -> None:
    text = format_genome(genome)
    assert parse_genome(text) == genome, text
    assert format_genome(parse_genome(text)) == text
    assert violations(genome, space) == [], text


def lineage(shape, space: SearchSpace, rng: random.Random, steps: int) -> list[Genome]:
    """A chain of public operator calls; crossover mixes in a second, independent lineage."""
    other = current = minimal_genome(*shape, 10)
    chain = []
    for _ in range(steps):
        name = rng.choice(OPERATORS)
        other = mutate(other, rng.choice(MUTATIONS), space, rng)
        current = apply(name, [current, other], space, rng)
        chain.append(current)
    return chain


# ------------------------------------------------------------------------- validity of every child

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.sampled_from(SHAPES), space=st.sampled_from(SPACES), seed=st.integers(0, 2**32))
def test_random_operator_sequences_always_give_valid_genomes(shape, space, seed):
    for genome in lineage(shape, space, random.Random(seed), steps=25):
        assert_valid(genome, space)


@pytest.mark.parametrize("shape", SHAPES)
def test_long_chains_stay_valid_at_every_step(shape):
    # 600 steps reach the max_layers cap and the parameter cap many times over.
    for space in (DEFAULT, TIGHT):
        for genome in lineage(shape, space, random.Random(hash(shape) % 1000), steps=300):
            assert_valid(genome, space)


@settings(max_examples=40, deadline=None)
@given(shape=st.sampled_from(SHAPES), space=st.sampled_from(SPACES), seed=st.integers(0, 2**32))
def test_random_genome_is_valid_and_uses_the_space(shape, space, seed):
    genome = random_genome(minimal_genome(*shape, 10), space, 300, random.Random(seed))
    assert_valid(genome, space)


def test_initialisation_reaches_every_allowed_layer_type():
    population = [random_genome(minimal_genome(32, 32, 3, 10), DEFAULT, 300, random.Random(i)) for i in range(10)]
    types = Counter(layer.type for g in population for layer in g.hidden)
    assert set(types) == set(DEFAULT.layers)
    if1 = [random_genome(minimal_genome(32, 32, 3, 10), KLOS_IF1, 300, random.Random(i)) for i in range(10)]
    assert {layer.type for g in if1 for layer in g.hidden} <= set(KLOS_IF1.layers)
    assert {b.factorisation for g in if1 for layer in g.hidden if layer.type == "I"
            for b in layer.enabled_branches} == {1}


# ------------------------------------------------------------------ the fast cost mirror vs cost.py

@st.composite
def genome_plus_one_layer(draw):
    """A valid genome with one more drawn layer at the end, which may well not fit."""
    genome = draw(genomes(max_filters=64))
    last_dense = bool(genome.hidden) and genome.hidden[-1].type == "D"
    kind = draw(st.sampled_from("D" if last_dense else "CPRDI"))
    layer = draw(inceptions(max_kernel=9) if kind == "I" else layer_specs(kind, max_kernel=9))
    return Genome(genome.input, genome.hidden + (layer,), genome.output)


@settings(max_examples=300, deadline=None)
@given(st.one_of(genomes(max_filters=64), genome_plus_one_layer()))
def test_operator_shape_and_parameter_mirror_equals_the_cost_model(genome):
    profile = operators._walk(genome.input, genome.hidden, genome.output.units, None, 0, None, 0, 0)
    try:
        analysis = analyse(genome)
    except GenomeError:
        assert profile is None
        return
    assert profile is not None
    assert profile.shapes == analysis.shapes[:-1]
    assert profile.params == analysis.params


@settings(max_examples=100, deadline=None)
@given(shape=st.sampled_from(SHAPES), seed=st.integers(0, 2**32))
def test_incremental_profiles_equal_a_fresh_walk(shape, seed):
    # random_genome keeps the profile of the current genome from step to step; it must equal the
    # profile computed from scratch, or the parameter cap would be enforced on wrong numbers.
    rng = random.Random(seed)
    current = operators._individual(minimal_genome(*shape, 10), DEFAULT)
    for _ in range(60):
        current = operators._MUTATION_FUNCTIONS[rng.choice(MUTATIONS)](current, DEFAULT, rng) or current
        g = current.genome
        fresh = operators._walk(g.input, g.hidden, g.output.units, None, 0, None, 0, 0)
        assert (fresh.shapes, fresh.layer_params, fresh.params) == (
            current.profile.shapes, current.profile.layer_params, current.profile.params)


# -------------------------------------------------------------------------- each operator's property

def grown(seed: int, shape=(32, 32, 3), space: SearchSpace = DEFAULT, n: int = 200) -> Genome:
    return random_genome(minimal_genome(*shape, 10), space, n, random.Random(seed))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_insert_adds_one_layer_and_keeps_the_others_in_order(seed):
    rng = random.Random(seed)
    parent = grown(seed % 97, n=50)
    child = mutate(parent, "insert", DEFAULT, rng)
    if child is parent:
        return  # no valid insertion found within the attempt bound (documented fallback)
    assert len(child.hidden) == len(parent.hidden) + 1
    assert any(child.hidden[:i] + child.hidden[i + 1:] == parent.hidden for i in range(len(child.hidden)))


def test_insert_into_a_full_genome_returns_the_parent():
    space = SearchSpace(max_layers=3)
    parent = random_genome(minimal_genome(28, 28, 1, 10), SearchSpace(layers=("D",), max_layers=3),
                           100, random.Random(1), {"insert": 1.0})
    assert len(parent.hidden) == 3
    assert mutate(parent, "insert", space, random.Random(2)) is parent


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_delete_removes_exactly_one_layer(seed):
    rng = random.Random(seed)
    parent = grown(seed % 97)
    child = mutate(parent, "delete", DEFAULT, rng)
    if not parent.hidden:
        assert child is parent
        return
    if child is parent:  # every tried deletion would exceed max_params
        return
    assert len(child.hidden) == len(parent.hidden) - 1
    assert any(parent.hidden[:i] + parent.hidden[i + 1:] == child.hidden for i in range(len(parent.hidden)))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_switch_swaps_two_different_layers_of_the_same_block(seed):
    rng = random.Random(seed)
    parent = grown(seed % 97)
    child = mutate(parent, "switch", DEFAULT, rng)
    assert Counter(map(format_layer, child.hidden)) == Counter(map(format_layer, parent.hidden))
    if child is parent:
        return
    moved = [i for i, (a, b) in enumerate(zip(parent.hidden, child.hidden)) if a != b]
    assert len(moved) == 2
    i, j = moved
    assert (child.hidden[i], child.hidden[j]) == (parent.hidden[j], parent.hidden[i])
    assert (parent.hidden[i].type == "D") == (parent.hidden[j].type == "D")


def changed_fields(a, b) -> set[str]:
    names = ("type", "kernel_w", "kernel_h", "stride_w", "stride_h", "filters")
    return {n for n in names if getattr(a, n) != getattr(b, n)}


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32), space=st.sampled_from((DEFAULT, KLOS_IF1)))
def test_adjust_changes_one_parameter_of_one_layer(seed, space):
    rng = random.Random(seed)
    parent = grown(seed % 97, space=space)
    child = mutate(parent, "adjust", space, rng)
    if child is parent:
        return
    assert len(child.hidden) == len(parent.hidden)
    diffs = [(a, b) for a, b in zip(parent.hidden, child.hidden) if a != b]
    assert len(diffs) == 1
    before, after = diffs[0]
    assert before.type == after.type
    if isinstance(before, LayerSpec):
        assert changed_fields(before, after) in ({"kernel_w", "kernel_h"}, {"stride_w", "stride_h"}, {"filters"})
        return
    assert after.enabled_branches  # at least one branch stays enabled
    branch_diffs = [i for i in range(4) if before.branches[i] != after.branches[i]]
    if len(branch_diffs) > 1:  # the shared stride moved on every enabled branch
        assert len({b.stride_w for b in after.enabled_branches}) == 1
        assert after.stride != before.stride
    else:
        assert len(branch_diffs) == 1


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_crossover_joins_a_prefix_of_a_and_a_suffix_of_b(seed):
    rng = random.Random(seed)
    a, b = grown(seed % 89), grown(seed % 89 + 1000)
    child = crossover(a, b, DEFAULT, rng)
    assert child.input == a.input and child.output == a.output
    if child is a:
        return
    la, lb = len(a.hidden), len(b.hidden)
    cuts = [(i, j) for i in range(la + 1) for j in range(lb + 1) if child.hidden == a.hidden[:i] + b.hidden[j:]]
    assert cuts, "the child's layers are not a prefix of a followed by a suffix of b"
    assert set(cuts) - {(la, lb), (0, 0)}, "a copy of a parent is not a crossover"


def test_crossover_of_two_minimal_genomes_returns_the_first():
    a, b = minimal_genome(28, 28, 1, 10), minimal_genome(28, 28, 1, 10)
    assert crossover(a, b, DEFAULT, random.Random(0)) is a


def test_operators_without_a_move_return_the_parent():
    seed = minimal_genome(28, 28, 1, 10)
    for name in ("switch", "delete", "adjust"):
        assert mutate(seed, name, DEFAULT, random.Random(0)) is seed
    one = mutate(seed, "insert", DEFAULT, random.Random(0))
    assert len(one.hidden) == 1
    assert mutate(one, "switch", DEFAULT, random.Random(0)) is one


def test_the_parameter_cap_refuses_children_that_would_exceed_it():
    # 28x28x1 -> D_10 has 7,850 parameters; a hidden dense layer of 64 units needs 50,890.
    space = SearchSpace(layers=("D",), dense_units=(64,), max_params=20_000)
    seed = minimal_genome(28, 28, 1, 10)
    assert mutate(seed, "insert", space, random.Random(0)) is seed


# ------------------------------------------------------------------------------------- determinism

def population(seed: int, size: int = 5, shape=(32, 32, 3)) -> list[str]:
    rng = random.Random(seed)
    start = minimal_genome(*shape, 10)
    return [format_genome(random_genome(start, DEFAULT, 1000, rng)) for _ in range(size)]


def test_same_seed_same_population_byte_for_byte_and_different_seeds_differ():
    first = population(7)
    assert population(7) == first
    assert population(8) != first
    assert len(set(first)) == len(first)


def test_population_does_not_depend_on_string_hash_randomisation():
    code = ("import random; from nascli.ga.operators import *; from nascli.ga.search_space import SearchSpace;"
            "r = random.Random(3); s = minimal_genome(28, 28, 1, 10);"
            "print([str(random_genome(s, SearchSpace(), 300, r)) for _ in range(3)])")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(outputs) == 1


def test_choose_operator_follows_the_probabilities():
    rng = random.Random(0)
    weights = {"insert": 0.2, "switch": 0.1, "delete": 0.2, "adjust": 0.4, "crossover": 0.1}
    counts = Counter(choose_operator(operator_table(weights), rng) for _ in range(20_000))
    for name, weight in weights.items():
        assert abs(counts[name] / 20_000 - weight) < 0.015
    assert choose_operator(operator_table({"delete": 1.0}), rng) == "delete"


def test_random_genome_uses_only_the_given_operators():
    grown_only = random_genome(minimal_genome(28, 28, 1, 10), DEFAULT, 12, random.Random(0), {"insert": 1.0})
    assert len(grown_only.hidden) == 12
    emptied = random_genome(grown_only, DEFAULT, 12, random.Random(0), {"delete": 1, "crossover": 5})
    assert emptied.hidden == ()
    assert random_genome(grown_only, DEFAULT, 0, random.Random(0)) is grown_only


# -------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("probabilities", [{}, {"insert": 0, "crossover": 1}, {"insert": -1}, {"grow": 1},
                                           {"insert": "0.5"}])
def test_bad_probabilities_are_config_errors(probabilities):
    with pytest.raises(ConfigError):
        random_genome(minimal_genome(8, 8, 1, 2), DEFAULT, 5, random.Random(0), probabilities)


def test_unknown_operator_and_missing_parents():
    seed = minimal_genome(8, 8, 1, 2)
    with pytest.raises(ConfigError, match="unknown mutation operator"):
        mutate(seed, "crossover", DEFAULT, random.Random(0))
    with pytest.raises(ValueError):
        apply("crossover", [seed], DEFAULT, random.Random(0))


def test_parents_outside_the_caps_or_not_fitting_are_genome_errors():
    parent = parse_genome("In_28_28:C_3-3-1-1-32:C_3-3-1-1-32:D_10")
    with pytest.raises(GenomeError, match="max_layers"):
        mutate(parent, "adjust", SearchSpace(max_layers=1), random.Random(0))
    with pytest.raises(GenomeError, match="max_params"):
        mutate(parent, "adjust", SearchSpace(max_params=1000), random.Random(0))
    too_big = Genome(parent.input, (LayerSpec("C", 29, 29, 1, 1, 8),), parent.output)
    with pytest.raises(GenomeError, match="does not fit"):
        mutate(too_big, "adjust", DEFAULT, random.Random(0))
    with pytest.raises(GenomeError, match="different tasks"):
        crossover(parent, minimal_genome(28, 28, 1, 2), DEFAULT, random.Random(0))
    with pytest.raises(GenomeError):
        minimal_genome(0, 28, 1, 10)


def test_parent_values_outside_the_space_are_kept_but_never_added():
    # A hand-written seed may use a 9x9 kernel; operators keep it but draw every new value from the space.
    parent = parse_genome("In_32_32_3:C_9-9-1-1-20:D_10")
    assert violations(parent, DEFAULT)
    rng = random.Random(0)
    for _ in range(50):
        child = mutate(parent, "insert", DEFAULT, rng)
        new = [layer for layer in child.hidden if layer != parent.hidden[0]]
        assert not violations(Genome(child.input, tuple(new), child.output), DEFAULT)


def test_violations_name_the_problem():
    genome = Genome(parse_genome("In_32_32_3:D_10").input, (
        LayerSpec("C", 3, 3, 1, 1, 20),
        InceptionSpec((Branch(1, True, 0, 3, 3, 1, 1, 16), Branch(2, False, 0, 1, 1, 1, 1, 0),
                       Branch(3, False, 0, 1, 1, 1, 1, 0), Branch(4, True, 0, 3, 3, 1, 1, 16))),
    ), parse_genome("In_32_32_3:D_10").output)
    problems = violations(genome, KLOS_IF1)
    assert any("20 filters" in p for p in problems)
    assert any("factorisation 0" in p and "branch 1" in p for p in problems)
    assert not any("branch 4" in p for p in problems)  # a pool branch has no factorisation
    capped = violations(genome, SearchSpace(max_params=10))
    assert f"{analyse(genome).params} parameters > max_params 10" in capped
    assert violations(parse_genome("In_32_32_3:C_3-3-1-1-16:D_10"), KLOS_IF1) == []


def preset_seeds():
    from nascli.config import input_shape, preset_names, resolve, search_space_of

    for name in preset_names():
        cfg = resolve(preset=name, project_file=None, env={})
        if cfg.task.genome_family != "layers":
            continue  # Hajewski module genomes have their own operators
        channels, height, width, classes = input_shape(cfg.task)
        yield name, minimal_genome(width, height, channels, classes), search_space_of(cfg), cfg


def test_every_preset_seed_genome_evolves_validly():
    # Each preset's seed genome (its dataset's input and classes) through its own search space and
    # operator probabilities: initialisation plus operator chains, every child valid.
    checked = 0
    for name, seed, space, cfg in preset_seeds():
        rng = random.Random(name)
        probabilities = cfg.ga.operators.model_dump()
        population = [random_genome(seed, space, 200, rng, probabilities) for _ in range(3)]
        for _ in range(40):
            operator = choose_operator(operator_table(probabilities), rng)
            child = apply(operator, rng.sample(population, 2), space, rng)
            assert_valid(child, space)
            population[rng.randrange(3)] = child
        checked += 1
    assert checked >= 20
