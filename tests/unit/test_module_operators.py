"""Module-genome operators (seed 002): every child is a valid member of the space and round-trips;
each operator does what its name says; no valid move returns the parent object; same seed, same
child; the pure parameter count equals the autoencoder's."""

from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_strategies_support import complete_sections

from nascli.errors import ConfigError, GenomeError
from nascli.ga import module_operators as mo
from nascli.ga.module_operators import (
    ATTEMPTS,
    MUTATIONS,
    ModuleSpace,
    apply,
    autoencoder_params,
    crossover,
    minimal_module_genome,
    mutate,
    mutate_genotype,
    random_module_genome,
    uniform_module_genome,
    violations,
)
from nascli.ga.modules import DROPOUT2D, ModuleGenome, ModuleLayer, format_module_genome, parse_module_genome

PRESET = ModuleSpace(kernels=(1, 2, 3, 5, 7), filters=(8, 16, 32, 64), max_layers=10, channels=3, reductions=2)


@st.composite
def spaces(draw) -> ModuleSpace:
    """Spaces from roomy to so tight that the parameter cap refuses most moves."""
    kernels = draw(st.lists(st.integers(1, 7), min_size=1, max_size=5, unique=True))
    filters = draw(st.lists(st.sampled_from([1, 2, 4, 8, 16, 32, 64]), min_size=1, max_size=4, unique=True))
    space = ModuleSpace(kernels=tuple(kernels), filters=tuple(filters), max_layers=draw(st.integers(1, 10)),
                        max_params=10**12, channels=draw(st.integers(1, 3)), reductions=draw(st.integers(0, 3)),
                        dropout=draw(st.booleans()))
    floor = autoencoder_params(minimal_module_genome(space), space.channels, space.reductions)
    headroom = draw(st.one_of(st.just(0), st.integers(0, 20_000), st.just(10**9)))
    return dataclasses.replace(space, max_params=floor + headroom)


@st.composite
def space_and_module(draw, space_strategy=None):
    """A space and a valid module of it (drawn layer by layer, cut back to fit the cap)."""
    space = draw(spaces() if space_strategy is None else space_strategy)
    convolutions = st.builds(ModuleLayer, st.sampled_from(space.kernels), st.sampled_from(space.filters))
    layers = draw(st.lists(st.one_of(convolutions, st.just(DROPOUT2D)) if space.dropout else convolutions,
                           min_size=1, max_size=space.max_layers))
    genome = ModuleGenome(tuple(layers))
    while violations(genome, space) and len(genome.layers) > 1:
        genome = ModuleGenome(genome.layers[:-1])
    assume(not violations(genome, space))
    return space, genome


def assert_valid(genome: ModuleGenome, space: ModuleSpace) -> None:
    text = format_module_genome(genome)
    assert parse_module_genome(text) == genome
    assert violations(genome, space) == [], (text, violations(genome, space))


def is_subsequence(short: tuple, long: tuple) -> bool:
    items = iter(long)
    return all(any(x == y for y in items) for x in short)


# ------------------------------------------------------------------------------ validity

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=space_and_module(), operator=st.sampled_from(MUTATIONS), seed=st.integers(0, 2**32))
def test_every_mutation_is_valid_and_does_what_its_name_says(case, operator, seed):
    space, parent = case
    child = mutate(parent, operator, space, random.Random(seed))
    assert_valid(child, space)
    assert child == mutate(parent, operator, space, random.Random(seed))  # same seed, same child
    if child is parent:
        return  # no valid move found: the documented fallback
    old, new = parent.layers, child.layers
    if operator == "insert":
        assert len(new) == len(old) + 1 and is_subsequence(old, new)
    elif operator == "delete":
        assert len(new) == len(old) - 1 and is_subsequence(new, old)
    elif operator == "adjust":
        changed = [(a, b) for a, b in zip(old, new) if a != b]
        assert len(new) == len(old) and len(changed) == 1
        a, b = changed[0]
        assert (a.kernel != b.kernel) + (a.filters != b.filters) == 1
        assert b.kernel in space.kernels if a.kernel != b.kernel else b.filters in space.filters
    else:  # switch: the same layers, two positions exchanged
        moved = [i for i, (a, b) in enumerate(zip(old, new)) if a != b]
        assert Counter(old) == Counter(new) and len(moved) == 2
        i, j = moved
        assert (new[i], new[j]) == (old[j], old[i])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), seed=st.integers(0, 2**32))
def test_crossover_splices_a_prefix_of_a_and_a_suffix_of_b(data, seed):
    space, a = data.draw(space_and_module())
    _, b = data.draw(space_and_module(st.just(space)))
    child = crossover(a, b, space, random.Random(seed))
    assert_valid(child, space)
    assert child == crossover(a, b, space, random.Random(seed))
    if child is a:
        return
    splits = [(i, j) for i in range(1, len(a.layers) + 1) for j in range(len(b.layers))
              if child.layers == (a.layers[:i] + b.layers[j:])[:space.max_layers]]
    assert splits, (a, b, child)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=space_and_module(), steps=st.lists(st.sampled_from(MUTATIONS + ("crossover", "genotype")), max_size=30),
       seed=st.integers(0, 2**32))
def test_lineages_of_any_operators_stay_in_the_space(case, steps, seed):
    space, genome = case
    rng = random.Random(seed)
    other = minimal_module_genome(space)
    for step in steps:
        if step == "genotype":
            genome = mutate_genotype(genome, space, rng)
        else:
            genome = apply(step, [genome, other], space, rng)
        other = apply("insert", [other], space, rng)
        assert_valid(genome, space)


# ------------------------------------------------------------------------------ fallbacks

def test_no_valid_move_returns_the_parent_object():
    rng = random.Random(0)
    single = ModuleGenome((ModuleLayer(3, 16),))
    assert mutate(single, "delete", PRESET, rng) is single
    assert mutate(single, "switch", PRESET, rng) is single
    twins = ModuleGenome((ModuleLayer(3, 16),) * 3)
    assert mutate(twins, "switch", PRESET, rng) is twins
    full = ModuleGenome((ModuleLayer(3, 16),) * PRESET.max_layers)
    assert mutate(full, "insert", PRESET, rng) is full
    frozen = ModuleSpace(kernels=(3,), filters=(16,), max_layers=4)
    assert mutate(single, "adjust", frozen, rng) is single  # nothing else to change to
    # A cap that fits exactly the smallest module: every insertion adds parameters and is refused.
    smallest = ModuleGenome((ModuleLayer(1, 8),))
    tight = dataclasses.replace(PRESET, max_params=autoencoder_params(smallest, 3, 2))
    assert mutate(smallest, "insert", tight, rng) is smallest


def test_crossover_of_single_layers_makes_two_layers_and_respects_max_layers():
    a, b = ModuleGenome((ModuleLayer(3, 16),)), ModuleGenome((ModuleLayer(5, 32),))
    assert crossover(a, b, PRESET, random.Random(0)).layers == a.layers + b.layers
    one = dataclasses.replace(PRESET, max_layers=1)
    assert crossover(a, b, one, random.Random(0)) == a  # seed 002 cuts the splice to MaxNumLayers


def test_every_operator_finishes_within_the_attempt_bound():
    calls = 0

    class CountingRandom(random.Random):
        def random(self):
            nonlocal calls
            calls += 1
            return super().random()

    tight = dataclasses.replace(PRESET, max_params=autoencoder_params(ModuleGenome((ModuleLayer(3, 8),)), 3, 2))
    mutate(ModuleGenome((ModuleLayer(3, 8),)), "insert", tight, CountingRandom(1))
    assert calls <= 4 * ATTEMPTS  # bounded proposals, then the parent


# ------------------------------------------------------------------------------ Alg. 3 and initialisation

@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=space_and_module(), seed=st.integers(0, 2**32))
def test_mutate_genotype_appends_or_replaces_one_layer(case, seed):
    space, parent = case
    child = mutate_genotype(parent, space, random.Random(seed))
    assert_valid(child, space)
    if child is parent:
        return
    if len(child.layers) == len(parent.layers) + 1:
        assert child.layers[:-1] == parent.layers  # appended
    else:
        assert len(child.layers) == len(parent.layers)
        assert sum(a != b for a, b in zip(parent.layers, child.layers)) == 1


def test_mutate_genotype_takes_both_branches():
    parent = ModuleGenome((ModuleLayer(3, 16), ModuleLayer(5, 32)))
    lengths = Counter(len(mutate_genotype(parent, PRESET, random.Random(s)).layers) for s in range(200))
    assert set(lengths) == {2, 3} and 60 < lengths[3] < 140  # append with probability about 1/2


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(space=spaces(), n=st.integers(0, 40), seed=st.integers(0, 2**32))
def test_random_module_genome_is_valid_and_deterministic(space, n, seed):
    seed_genome = minimal_module_genome(space)
    genome = random_module_genome(seed_genome, space, n, random.Random(seed))
    assert_valid(genome, space)
    assert genome == random_module_genome(seed_genome, space, n, random.Random(seed))
    if n == 0:
        assert genome is seed_genome


def test_random_module_genome_spreads_out_and_follows_the_weights():
    seed_genome = minimal_module_genome(PRESET)
    population = {random_module_genome(seed_genome, PRESET, 3, random.Random(s)) for s in range(50)}
    assert len(population) > 20  # the preset's three mutations give a diverse first generation
    insert_only = {len(random_module_genome(seed_genome, PRESET, 4, random.Random(s), {"insert": 1.0}).layers)
                   for s in range(20)}
    assert insert_only == {5}
    with pytest.raises(ConfigError, match="init_mutations"):
        random_module_genome(seed_genome, PRESET, -1, random.Random(0))
    with pytest.raises(ConfigError, match="unknown operator"):
        random_module_genome(seed_genome, PRESET, 1, random.Random(0), {"grow": 1.0})
    with pytest.raises(ConfigError, match="is 0"):
        random_module_genome(seed_genome, PRESET, 1, random.Random(0), {"crossover": 1.0})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(space=spaces(), seed=st.integers(0, 2**32))
def test_uniform_module_genome_is_valid(space, seed):
    genome = uniform_module_genome(space, random.Random(seed))
    assert_valid(genome, space)
    assert genome == uniform_module_genome(space, random.Random(seed))


def test_uniform_module_genome_covers_one_to_max_layers():
    lengths = Counter(len(uniform_module_genome(PRESET, random.Random(s)).layers) for s in range(500))
    assert set(lengths) == set(range(1, PRESET.max_layers + 1))
    assert max(lengths.values()) < 3 * min(lengths.values())  # roughly U[1, 10]


# ------------------------------------------------------------------------------ parents, spaces, cost

def test_invalid_parents_are_refused_with_a_hint():
    rng = random.Random(0)
    too_long = ModuleGenome((ModuleLayer(3, 16),) * (PRESET.max_layers + 1))
    with pytest.raises(GenomeError, match="max_layers") as error:
        mutate(too_long, "delete", PRESET, rng)
    assert error.value.hint
    huge = ModuleGenome((ModuleLayer(7, 64),) * 3)
    with pytest.raises(GenomeError, match="max_params"):
        mutate(huge, "delete", dataclasses.replace(PRESET, max_params=1000), rng)
    with pytest.raises(GenomeError, match="ModuleGenome"):
        crossover("3x3conv2d:16", huge, PRESET, rng)  # type: ignore[arg-type]
    with pytest.raises(GenomeError):
        mutate(ModuleGenome(()), "insert", PRESET, rng)
    with pytest.raises(ConfigError, match="unknown mutation"):
        mutate(huge, "crossover", PRESET, rng)
    with pytest.raises(ValueError):
        apply("crossover", [huge], PRESET, rng)


def test_parents_may_carry_values_outside_the_space_but_children_add_none():
    parent = ModuleGenome((ModuleLayer(9, 100), ModuleLayer(3, 16)))
    space = ModuleSpace(kernels=(3,), filters=(16,), max_layers=4, dropout=False)
    for seed in range(50):
        child = mutate(parent, "insert", space, random.Random(seed))
        new = Counter(child.layers) - Counter(parent.layers)
        assert all(layer == ModuleLayer(3, 16) for layer in new)
    with_dropout = dataclasses.replace(space, dropout=True)
    added = Counter()
    for seed in range(50):
        added += Counter(mutate(parent, "insert", with_dropout, random.Random(seed)).layers) - Counter(parent.layers)
    assert set(added) == {ModuleLayer(3, 16), DROPOUT2D}  # 1 convolution + the dropout: each about half


def test_dropout_is_one_choice_among_the_convolutions():
    """Seed 002: 4 kernels x 4 filters + 2D dropout = 17 equally likely layer choices."""
    space = ModuleSpace(kernels=(1, 3, 5, 7), filters=(8, 16, 32, 64), max_layers=10)
    rng = random.Random(7)
    draws = [mo._random_layer(space, rng) for _ in range(17_000)]
    assert 800 < draws.count(DROPOUT2D) < 1200
    assert DROPOUT2D not in [mo._random_layer(dataclasses.replace(space, dropout=False), rng) for _ in range(2000)]


def test_adjust_leaves_a_dropout_alone_and_delete_removes_it():
    parent = parse_module_genome("dropout2d,3x3conv2d:16")
    for seed in range(30):
        adjusted = mutate(parent, "adjust", PRESET, random.Random(seed))
        assert adjusted.layers[0] == DROPOUT2D and adjusted.layers[1] != ModuleLayer(3, 16)
    deleted = {mutate(parent, "delete", PRESET, random.Random(seed)) for seed in range(30)}
    assert deleted == {parse_module_genome("dropout2d"), parse_module_genome("3x3conv2d:16")}


def test_a_space_without_dropout_calls_a_dropout_a_violation():
    genome = parse_module_genome("3x3conv2d:16,dropout2d")
    assert violations(genome, PRESET) == []
    assert violations(genome, dataclasses.replace(PRESET, dropout=False)) == [
        "dropout2d is not a layer choice of this space"]


def test_module_space_rejects_bad_values():
    with pytest.raises(ConfigError, match="kernels"):
        ModuleSpace(kernels=())
    with pytest.raises(ConfigError, match="filters"):
        ModuleSpace(filters=(0, 8))
    with pytest.raises(ConfigError, match="max_layers"):
        ModuleSpace(max_layers=0)
    with pytest.raises(ConfigError, match="reductions"):
        ModuleSpace(reductions=-1)
    assert ModuleSpace(kernels=(5, 3, 3)).kernels == (3, 5)


def test_minimal_module_genome_is_one_small_convolution():
    assert format_module_genome(minimal_module_genome(PRESET)) == "3x3conv2d:8"
    assert format_module_genome(minimal_module_genome(ModuleSpace(kernels=(5, 7), filters=(32,)))) == "5x5conv2d:32"
    with pytest.raises(GenomeError, match="max_params"):
        minimal_module_genome(dataclasses.replace(PRESET, max_params=10))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=space_and_module())
def test_parameter_count_equals_the_autoencoder_cost_model(case):
    autoencoder = pytest.importorskip("nascli.layers.autoencoder")
    space, genome = case
    expected = autoencoder.autoencoder_cost(genome, (space.channels, 8 << space.reductions, 8 << space.reductions),
                                            space.reductions).params
    assert autoencoder_params(genome, space.channels, space.reductions) == expected


def test_features_name_the_exact_parameter_count():
    genome = parse_module_genome("5x5conv2d:16,3x3conv2d:32")
    features = mo.module_features(genome, PRESET)
    assert features["params"] == autoencoder_params(genome, 3, 2)
    assert features["depth"] == 2 and features["max_kernel"] == 5 and features["kernel_area"] == 34


def test_module_variation_wires_the_module_operators():
    from nascli.ga.strategies import make_module_variation

    seed_genome = minimal_module_genome(PRESET)
    mutated = make_module_variation(PRESET, seed_genome, init_mutations=3)
    uniform = make_module_variation(PRESET, seed_genome, init_mutations=3, uniform_init=True)
    rng = random.Random
    assert mutated.random_init(rng(5)) == random_module_genome(seed_genome, PRESET, 3, rng(5))
    assert uniform.random_init(rng(5)) == uniform_module_genome(PRESET, rng(5))
    parents = [parse_module_genome("3x3conv2d:16"), parse_module_genome("5x5conv2d:32,1x1conv2d:8")]
    assert mutated.vary("crossover", parents, rng(2)) == crossover(*parents, PRESET, rng(2))
    assert mutated.vary("adjust", parents, rng(2)) == mutate(parents[0], "adjust", PRESET, rng(2))
    assert mutated.features(parents[1])["depth"] == 2


def test_module_operators_import_only_the_standard_library():
    code = ("import sys; import nascli.ga.module_operators; "
            "print(sorted(m for m in ('torch', 'numpy', 'pydantic', 'sqlalchemy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_canonical_hash_is_each_familys_own_hash():
    from nascli.ga.genome import genome_hash, parse_genome
    from nascli.ga.modules import module_genome_hash
    from nascli.ga.strategies import canonical_hash

    module = parse_module_genome("5x5conv2d:16,3x3conv2d:32")
    layers = parse_genome("In_8_8_1:C_3-3-1-1-16:D_10")
    assert canonical_hash(module) == module_genome_hash(module)
    assert canonical_hash(layers) == genome_hash(layers)
    assert canonical_hash(module) != canonical_hash(parse_module_genome("3x3conv2d:32,5x5conv2d:16"))


@pytest.mark.parametrize("strategy", ["island-ga", "mu-plus-lambda", "regularized-evolution", "nsga2", "linas",
                                      "random"])
def test_every_strategy_searches_module_genomes(strategy):
    """Each strategy runs to its budget on the module operators (a loss that favours 3x3 convs and
    some width stands in for training); every proposal is a valid module of the space."""
    from nascli.ga.strategies import Outcome, make_module_variation, make_strategy

    space = dataclasses.replace(PRESET, max_layers=4)
    variation = make_module_variation(space, minimal_module_genome(space), init_mutations=3,
                                      uniform_init=strategy == "random")
    sections = {"run": {"strategy": strategy, "seed": 1},
                "ga": {"islands": 2, "population": 4, "generations": 3, "offspring_per_generation": 2,
                       "tournament_size": 2},
                "migration": {"period": 2}, "fitness": {"primary": "inverse_val_loss", "secondary": "params"},
                "nsga2": {"objectives": ["inverse_val_loss", "params"]},
                "linas": {"evaluations_per_iteration": 4, "iterations": 2, "predictor_generations": 3}}
    search = make_strategy(complete_sections(sections), variation)
    seen = 0
    while not search.finished:
        proposals = search.ask(2 if search.asynchronous else None)
        assert proposals, "a strategy stalled: nothing to evaluate and not finished"
        for proposal in proposals:
            genome = proposal.genome
            assert isinstance(genome, ModuleGenome) and violations(genome, space) == []
            loss = 1.0 / (1 + sum(layer.filters for layer in genome.layers if layer != DROPOUT2D and layer.kernel == 3))
            search.tell(Outcome(proposal.key, "done", {"val_loss": loss, "inverse_val_loss": 1 / loss,
                                                       "params": autoencoder_params(genome, 3, 2)}))
            seen += 1
    assert seen >= 6
