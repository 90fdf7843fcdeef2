"""Variation operators, exactly: every message and hint, the caps at their boundary, the draws each
operator takes from its `random.Random`, and every move an operator offers actually being reachable.
(test_operators.py holds the validity properties; these pin what a silent one-line change would break.)"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from nascli.errors import GenomeError, NascliError
from nascli.ga import operators
from nascli.ga.cost import analyse
from nascli.ga.genome import (
    Branch,
    Genome,
    InceptionSpec,
    LayerSpec,
    check_structure,
    parse_genome,
    parse_layer,
)
from nascli.ga.operators import (
    ATTEMPTS,
    MUTATIONS,
    apply,
    crossover,
    cumulative_weights,
    minimal_genome,
    mutate,
    random_genome,
    violations,
)
from nascli.ga.search_space import SearchSpace

DEFAULT = SearchSpace()
SEEDS = range(40)


def error_of(call: Callable[[], object]) -> tuple[str, str | None]:
    with pytest.raises(NascliError) as info:
        call()
    return info.value.message, info.value.hint


# ----------------------------------------------------------------------------- messages and hints

def test_unknown_mutation_operator_names_the_allowed_ones_and_points_to_crossover():
    seed = minimal_genome(8, 8, 1, 2)
    assert error_of(lambda: mutate(seed, "crossover", DEFAULT, random.Random(0))) == (
        "unknown mutation operator 'crossover'; allowed: insert, switch, delete, adjust",
        "crossover takes two parents: use crossover() or apply()")


def test_crossover_of_different_tasks_says_so_with_both_tasks():
    a, b = parse_genome("In_8_8:D_2"), parse_genome("In_8_8:D_3")
    message, hint = error_of(lambda: crossover(a, b, DEFAULT, random.Random(0)))
    assert message == f"crossover parents solve different tasks: {a.input}/{a.output} vs {b.input}/{b.output}"
    assert hint == "cross only genomes of the same run"


def test_apply_without_enough_parents_says_how_many_it_needs():
    seed = minimal_genome(8, 8, 1, 2)
    with pytest.raises(ValueError) as crossing:
        apply("crossover", [seed], DEFAULT, random.Random(0))
    assert str(crossing.value) == "crossover needs two parents"
    with pytest.raises(ValueError) as deleting:
        apply("delete", [], DEFAULT, random.Random(0))
    assert str(deleting.value) == "delete needs a parent"


def test_negative_initial_mutations_are_a_config_error_naming_the_setting():
    seed = minimal_genome(8, 8, 1, 2)
    assert error_of(lambda: random_genome(seed, DEFAULT, -1, random.Random(0))) == (
        "the number of initial mutations must be >= 0, got -1", "set ga.init_mutations to 0 or more")


def test_operator_weights_messages_and_hints():
    assert error_of(lambda: cumulative_weights({"grow": 1, "insert": 1, "shrink": 1}, MUTATIONS)) == (
        "unknown operator(s) grow, shrink; allowed: insert, switch, delete, adjust, crossover",
        "set ga.operators.insert/switch/delete/adjust/crossover")
    for bad in (-1, True, "0.5", float("nan")):
        assert error_of(lambda bad=bad: cumulative_weights({"delete": 1, "insert": bad}, MUTATIONS)) == (
            f"operator probability insert = {bad!r} is not a number >= 0",
            "set ga.operators.<name> to a number between 0 and 1")
    assert error_of(lambda: cumulative_weights({"insert": 0, "crossover": 1}, MUTATIONS)) == (
        "every operator probability among insert, switch, delete, adjust is 0",
        "give at least one of ga.operators.insert/switch/delete/adjust a weight > 0")


def test_operator_weights_give_running_totals_of_the_positive_ones_in_the_allowed_order():
    names, cumulative = cumulative_weights({"crossover": 0.1, "adjust": 0.4, "delete": 0.2, "switch": 0.1,
                                            "insert": 0.2}, MUTATIONS)
    assert names == ["insert", "switch", "delete", "adjust"]
    assert cumulative == pytest.approx([0.2, 0.3, 0.5, 0.9])
    assert cumulative_weights({"insert": 0, "delete": 2, "adjust": 1}, MUTATIONS) == (["delete", "adjust"],
                                                                                     [2.0, 3.0])


# ----------------------------------------------------------------- the parameter cap at its boundary

def test_a_genome_exactly_at_max_params_is_valid():
    genome = parse_genome("In_28_28:D_10")  # 784 * 10 + 10 parameters
    assert violations(genome, SearchSpace(max_params=7850)) == []
    assert violations(genome, SearchSpace(max_params=7849)) == ["7850 parameters > max_params 7849"]


def test_a_child_exactly_at_max_params_is_accepted():
    # 28x28x1 -> D_64 -> D_10 has 784 * 64 + 64 + 64 * 10 + 10 = 50,890 parameters.
    seed = minimal_genome(28, 28, 1, 10)
    at_cap = SearchSpace(layers=("D",), dense_units=(64,), max_params=50_890)
    assert mutate(seed, "insert", at_cap, random.Random(0)) == parse_genome("In_28_28:D_1-1-1-1-64:D_10")
    below = SearchSpace(layers=("D",), dense_units=(64,), max_params=50_889)
    assert mutate(seed, "insert", below, random.Random(0)) is seed


# ------------------------------------------------------------------------------------------ apply

def test_apply_hands_the_first_parent_to_a_mutation_and_both_in_order_to_crossover():
    a, b = parse_genome("In_8_8:D_1-1-1-1-64:D_2"), parse_genome("In_8_8:D_1-1-1-1-128:D_1-1-1-1-256:D_2")
    for seed in SEEDS:
        assert apply("delete", [a], DEFAULT, random.Random(seed)) == mutate(a, "delete", DEFAULT,
                                                                           random.Random(seed))
        assert apply("adjust", [a, b], DEFAULT, random.Random(seed)) == mutate(a, "adjust", DEFAULT,
                                                                              random.Random(seed))
        assert apply("crossover", [a, b], DEFAULT, random.Random(seed)) == crossover(a, b, DEFAULT,
                                                                                    random.Random(seed))


# -------------------------------------------------------------------------------------- crossover

def first_valid_cut(a: Genome, b: Genome, space: SearchSpace, rng: random.Random) -> Genome:
    """The promise, from the public rules: up to ATTEMPTS cut pairs (i in a, j in b), each drawn
    `randint(0, len)`; a pair that copies a parent is skipped; the first child a[:i] + b[j:] with no
    violation is the result, `a` if none."""
    la, lb = len(a.hidden), len(b.hidden)
    for _ in range(ATTEMPTS):
        i, j = rng.randint(0, la), rng.randint(0, lb)
        if (i, j) in ((la, lb), (0, 0)):
            continue
        child = Genome(a.input, a.hidden[:i] + b.hidden[j:], a.output)
        if not violations(child, space):
            return child
    return a


@pytest.mark.parametrize("a, b, max_layers", [
    ("In_8_8:D_1-1-1-1-64:D_2", "In_8_8:D_1-1-1-1-128:D_2", 20),
    ("In_8_8:D_1-1-1-1-64:D_1-1-1-1-128:D_2", "In_8_8:D_1-1-1-1-256:D_1-1-1-1-512:D_2", 3),
    ("In_8_8:C_3-3-1-1-16:D_1-1-1-1-64:D_2", "In_8_8:C_5-5-1-1-32:D_1-1-1-1-128:D_2", 3),
    ("In_8_8:C_3-3-1-1-16:D_1-1-1-1-64:D_2", "In_8_8:C_5-5-1-1-32:D_1-1-1-1-128:D_2", 20),
])
def test_crossover_takes_the_first_drawn_cut_that_gives_a_valid_child(a, b, max_layers):
    a, b = parse_genome(a), parse_genome(b)
    space = SearchSpace(max_layers=max_layers)
    children = set()
    for seed in SEEDS:
        rng, expected_rng = random.Random(seed), random.Random(seed)
        child = crossover(a, b, space, rng)
        assert child == first_valid_cut(a, b, space, expected_rng), seed
        assert rng.getstate() == expected_rng.getstate(), seed
        children.add(child)
    assert a not in children  # every seed finds a cut within ATTEMPTS here


# ------------------------------------------------------------------------------------------ switch

def swapped(genome: Genome, i: int, j: int) -> Genome:
    hidden = list(genome.hidden)
    hidden[i], hidden[j] = hidden[j], hidden[i]
    return Genome(genome.input, tuple(hidden), genome.output)


@pytest.mark.filterwarnings("error")  # integer draws only (Python 3.12 refuses a float randrange)
def test_switch_draws_the_block_by_its_number_of_pairs_then_one_pair_in_it():
    # Two spatial layers and two dense ones: one pair in each block, so each block has weight 1/2.
    parent = parse_genome("In_8_8:C_3-3-1-1-16:C_5-5-1-1-32:D_1-1-1-1-64:D_1-1-1-1-128:D_2")
    blocks = set()
    for seed in SEEDS:
        rng, expected_rng = random.Random(seed), random.Random(seed)
        child = mutate(parent, "switch", DEFAULT, rng)
        spatial = expected_rng.randrange(2) < 1
        expected_rng.sample(range(0, 2) if spatial else range(2, 4), 2)
        assert child == (swapped(parent, 0, 1) if spatial else swapped(parent, 2, 3)), seed
        assert rng.getstate() == expected_rng.getstate(), seed
        blocks.add(spatial)
    assert blocks == {True, False}


def test_switch_skips_a_pair_of_equal_layers_and_tries_again():
    parent = parse_genome("In_8_8:D_1-1-1-1-64:D_1-1-1-1-64:D_1-1-1-1-128:D_2")
    for seed in SEEDS:
        assert mutate(parent, "switch", DEFAULT, random.Random(seed)).hidden in {
            swapped(parent, 0, 2).hidden, swapped(parent, 1, 2).hidden}, seed


# ------------------------------------------------------------------------------------------ insert

def test_insert_puts_a_dense_layer_anywhere_in_the_dense_block():
    parent = parse_genome("In_8_8:C_3-3-1-1-16:D_1-1-1-1-64:D_1-1-1-1-128:D_2")
    space = SearchSpace(layers=("D",), dense_units=(256,))
    positions = set()
    for seed in SEEDS:
        child = mutate(parent, "insert", space, random.Random(seed))
        position = [layer.filters for layer in child.hidden].index(256)
        assert child.hidden[:position] + child.hidden[position + 1:] == parent.hidden
        positions.add(position)
    assert positions == {1, 2, 3}


def test_insert_tries_another_kind_when_a_drawn_kind_cannot_fit():
    # On a 1x1 input no pooling window fits: a drawn P is skipped, a drawn D is inserted.
    seed = minimal_genome(1, 1, 1, 2)
    space = SearchSpace(layers=("P", "D"), dense_units=(64,))
    for rng_seed in SEEDS:
        assert mutate(seed, "insert", space, random.Random(rng_seed)) == parse_genome("In_1_1:D_1-1-1-1-64:D_2")


# ------------------------------------------------------------------------------------------ adjust

def test_adjust_of_a_dense_layer_draws_the_position_then_other_units():
    parent = parse_genome("In_8_8:D_1-1-1-1-64:D_2")
    for seed in SEEDS:
        rng, expected_rng = random.Random(seed), random.Random(seed)
        child = mutate(parent, "adjust", DEFAULT, rng)
        expected_rng.randrange(1)
        units = expected_rng.choice([128, 256, 512])
        assert child == parse_genome(f"In_8_8:D_1-1-1-1-{units}:D_2"), seed
        assert rng.getstate() == expected_rng.getstate(), seed


def test_adjust_moves_on_from_a_layer_that_has_no_other_value():
    # D_64 is the only value of dense_units: only the kept out-of-space D_32 can change (to 64).
    parent = parse_genome("In_8_8:D_1-1-1-1-64:D_1-1-1-1-32:D_2")
    space = SearchSpace(dense_units=(64,))
    child = parse_genome("In_8_8:D_1-1-1-1-64:D_1-1-1-1-64:D_2")
    for seed in SEEDS:
        assert mutate(parent, "adjust", space, random.Random(seed)) == child


def test_adjust_of_a_conv_layer_changes_its_kernel_or_stride_or_filters_and_keeps_the_rest():
    # A hand-written layer with a 3x5 kernel and a 1x2 stride: the fields adjust does not change keep
    # their (non-square) values.
    parent = parse_genome("In_16_16_3:C_3-5-1-2-16:D_10")
    before = parent.hidden[0]
    changed = set()
    for seed in SEEDS:
        after = mutate(parent, "adjust", DEFAULT, random.Random(seed)).hidden[0]
        kernel, stride = (after.kernel_w, after.kernel_h), (after.stride_w, after.stride_h)
        if kernel != (3, 5):
            assert (kernel[0] == kernel[1], stride, after.filters) == (True, (1, 2), 16), after
            changed.add("kernel")
        elif stride != (1, 2):
            assert (stride[0] == stride[1], after.filters) == (True, 16), after
            changed.add("stride")
        else:
            assert after.filters != before.filters, after
            changed.add("filters")
    assert changed == {"kernel", "stride", "filters"}


# ------------------------------------------------------------------------------- inception adjust

# Branch slots 1 and 3 disabled, slot 2 a conv branch (factorisation 1), slot 4 the pool branch with
# factorisation 0 (outside the space's variants: a pool branch has none); the shared stride is 1x2.
ODD_INCEPTION = InceptionSpec((Branch(1, False, 0, 1, 1, 1, 1, 0), Branch(2, True, 1, 3, 3, 1, 2, 16),
                               Branch(3, False, 0, 1, 1, 1, 1, 0), Branch(4, True, 0, 3, 3, 1, 2, 16)))
INCEPTION_SPACE = SearchSpace(kernels=(1, 3), strides=(1, 2), filters=(16, 32), inception_variants=(1, 2, 3))


def inception_move(before: InceptionSpec, after: InceptionSpec) -> tuple[str, int]:
    """Which one thing adjust changed: ("stride", -1) or (field, branch slot)."""
    changed = [slot for slot in range(4) if before.branches[slot] != after.branches[slot]]
    if len(changed) > 1:
        assert after.stride != before.stride and len({(b.stride_w, b.stride_h)
                                                     for b in after.enabled_branches}) == 1
        return "stride", -1
    assert len(changed) == 1, after
    slot = changed[0]
    old, new = before.branches[slot], after.branches[slot]
    if old.enabled != new.enabled:
        return ("enable" if new.enabled else "disable"), slot
    fields = [name for name in ("branch_type", "factorisation", "kernel_w", "filters")
              if getattr(old, name) != getattr(new, name)]
    if "branch_type" in fields:
        return "branch_type", slot
    assert len(fields) == 1, (old, new)
    return fields[0], slot


def test_adjust_of_an_inception_layer_reaches_every_move_and_keeps_it_valid():
    parent = Genome(parse_genome("In_16_16_3:D_10").input, (ODD_INCEPTION,), parse_genome("In_16_16_3:D_10").output)
    moves = set()
    for seed in range(150):
        child = mutate(parent, "adjust", INCEPTION_SPACE, random.Random(seed))
        check_structure(child)  # a newly enabled branch takes the shared (1x2) stride
        analyse(child)
        after = child.hidden[0]
        move = inception_move(ODD_INCEPTION, after)
        moves.add(move)
        if move == ("enable", 0) or move == ("enable", 2):
            assert (after.branches[move[1]].stride_w, after.branches[move[1]].stride_h) == (1, 2)
        if move[0] == "branch_type":
            old, new = ODD_INCEPTION.branches[move[1]], after.branches[move[1]]
            # The conv branch keeps its factorisation; the pool branch's unused 0 becomes a variant.
            assert new.factorisation == (1 if move[1] == 1 else new.factorisation)
            assert new.factorisation in INCEPTION_SPACE.inception_variants
            assert (new.kernel_w, new.stride_h, new.filters) == (old.kernel_w, old.stride_h, old.filters)
    assert moves == {("stride", -1), ("enable", 0), ("enable", 2),
                     ("disable", 1), ("branch_type", 1), ("factorisation", 1), ("kernel_w", 1), ("filters", 1),
                     ("disable", 3), ("branch_type", 3), ("kernel_w", 3), ("filters", 3)}


# --------------------------------------------------------------------------------- random layers

def test_random_conv_and_residual_kernels_fit_the_input_and_the_strided_size():
    space = SearchSpace(kernels=(1, 3, 5, 7), strides=(2,), filters=(16,))

    def kernels(kind: str, side: int) -> set[int]:
        layers = [operators._random_layer(kind, (3, side, side), space, random.Random(seed)) for seed in SEEDS]
        assert all(isinstance(layer, LayerSpec) for layer in layers)
        return {layer.kernel_w for layer in layers if isinstance(layer, LayerSpec)}

    assert kernels("C", 8) == {1, 3, 5, 7}  # a conv's kernel fits the input
    assert kernels("R", 8) == {1, 3}  # a residual block's second conv sees ceil(8 / 2) = 4
    assert kernels("R", 9) == {1, 3, 5}  # ceil(9 / 2) = 5


def test_a_random_inception_layer_enables_each_branch_with_probability_one_half():
    layers = [operators._random_layer("I", (3, 8, 8), DEFAULT, random.Random(seed)) for seed in range(200)]
    counts = [len(layer.enabled_branches) for layer in layers if isinstance(layer, InceptionSpec)]
    assert len(counts) == len(layers)
    assert set(counts) == {1, 2, 3, 4}
    assert 0.35 < sum(counts) / (4 * len(counts)) < 0.65  # at least one is always on, so a little above 1/2



# ------------------------------------------------------------------------------ parents refused

def test_a_parent_that_is_not_a_genome_is_refused_with_how_to_parse_it():
    assert error_of(lambda: mutate("In_8_8:D_2", "adjust", DEFAULT, random.Random(0))) == (
        "expected a Genome, got str", "parse strings with nascli.ga.genome.parse_genome first")


def test_a_parent_over_a_cap_is_refused_and_one_at_the_cap_is_taken():
    parent = parse_genome("In_28_28:C_3-3-1-1-32:C_3-3-1-1-32:D_10")
    params = analyse(parent).params
    assert error_of(lambda: mutate(parent, "adjust", SearchSpace(max_layers=1), random.Random(0))) == (
        "parent genome has 2 hidden layers, more than search_space.max_layers = 1",
        "raise search_space.max_layers or start from a smaller genome")
    assert error_of(lambda: mutate(parent, "adjust", SearchSpace(max_params=params - 1), random.Random(0))) == (
        f"parent genome has {params} parameters, more than search_space.max_params = {params - 1}",
        "raise search_space.max_params or start from a smaller genome (a large input flattened into the "
        "output layer costs many)")
    at_caps = SearchSpace(max_layers=2, max_params=params, filters=(32,), kernels=(3,), strides=(1,))
    assert mutate(parent, "delete", at_caps, random.Random(0)).hidden == parent.hidden[1:]


@pytest.mark.parametrize("token", ["C_3-3-1-1-16", "P_2-2-2-2-0", "R_3-3-1-1-16",
                                   "I.1-1-1_3-3-1-1-16.2-0-0_1-1-1-1-0.3-0-0_1-1-1-1-0.4-0-0_1-1-1-1-0"])
def test_the_mirror_refuses_a_spatial_layer_after_a_dense_one_as_the_cost_model_does(token):
    dense = parse_genome("In_8_8:D_1-1-1-1-64:D_2")
    genome = Genome(dense.input, dense.hidden + (parse_layer(token, 2),), dense.output)
    with pytest.raises(GenomeError):
        analyse(genome)
    assert operators._walk(genome.input, genome.hidden, 2, None, 0, None, 0, 0) is None


@pytest.mark.parametrize("token", ["R_5-1-2-2-8", "R_1-5-2-2-8"])
def test_the_mirror_refuses_a_residual_block_whose_second_conv_outgrows_one_strided_side(token):
    """8x8 strided by 2 is 4x4: a 5-wide (or 5-tall) kernel fits the input but not the block's second conv."""
    base = parse_genome("In_8_8:D_2")
    genome = Genome(base.input, (parse_layer(token, 1),), base.output)  # as a mutation would build it
    with pytest.raises(GenomeError, match="does not fit"):
        analyse(genome)
    assert operators._walk(genome.input, genome.hidden, 2, None, 0, None, 0, 0) is None
