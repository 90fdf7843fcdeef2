"""Roulette wheel (Klos Eq. 1), distinct roulette sampling, tournament, keyed RNG."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nascli.ga.fitness import FitnessRule
from nascli.ga.rng import rng_for, stream_seed
from nascli.ga.selection import choose_operator, roulette_index, roulette_sample, tournament_index


def test_roulette_frequencies_match_fitness_proportions():
    weights = [0.05, 0.15, 0.3, 0.5]
    rng = random.Random(1234)
    draws = 20_000
    counts = [0] * 4
    for _ in range(draws):
        counts[roulette_index(weights, rng)] += 1
    chi2 = sum((c - draws * w) ** 2 / (draws * w) for c, w in zip(counts, weights))
    assert chi2 < 16.3  # 3 degrees of freedom, p = 0.001


@given(st.lists(st.floats(0, 100), min_size=1, max_size=12), st.integers(0, 2**32))
def test_roulette_never_picks_a_zero_weight_unless_all_are_zero(weights, seed):
    index = roulette_index(weights, random.Random(seed))
    assert 0 <= index < len(weights)
    if sum(weights) > 0:
        assert weights[index] > 0


@given(st.lists(st.floats(0.01, 10), min_size=1, max_size=10), st.data())
def test_roulette_sample_is_distinct(weights, data):
    k = data.draw(st.integers(0, len(weights)))
    picks = roulette_sample(weights, k, random.Random(data.draw(st.integers(0, 1000))))
    assert len(picks) == len(set(picks)) == k


def test_negative_weight_is_rejected():
    with pytest.raises(ValueError):
        roulette_index([0.5, -0.1], random.Random(0))


@given(st.lists(st.integers(-50, 50), min_size=1, max_size=20), st.integers(1, 25), st.integers(0, 10**6))
def test_tournament_winner_is_the_best_of_its_sample(keys, size, seed):
    rng_a, rng_b = random.Random(seed), random.Random(seed)
    winner = tournament_index(keys, size, rng_a)
    sample = rng_b.sample(range(len(keys)), min(size, len(keys)))
    assert keys[winner] == max(keys[i] for i in sample)
    if size >= len(keys):
        assert keys[winner] == max(keys)


def test_operator_choice_follows_probabilities():
    table = [("insert", 0.2), ("switch", 0.1), ("delete", 0.2), ("adjust", 0.4), ("crossover", 0.1)]
    rng = random.Random(5)
    draws = 20_000
    counts = {name: 0 for name, _ in table}
    for _ in range(draws):
        counts[choose_operator(table, rng)] += 1
    chi2 = sum((counts[n] - draws * p) ** 2 / (draws * p) for n, p in table)
    assert chi2 < 18.5  # 4 degrees of freedom, p = 0.001


def test_rng_streams_are_stable_and_distinct():
    assert rng_for(1, 0, 3, "vary", 0).random() == rng_for(1, 0, 3, "vary", 0).random()
    assert stream_seed(1, 0, 3, "vary", 0) != stream_seed(1, 0, 3, "vary", 1)
    assert stream_seed(1, 0, 3, "vary") != stream_seed(2, 0, 3, "vary")
    # a pinned value: the stream must not change between Python versions or processes
    assert stream_seed(0, 0, 0, "init", 0) == int.from_bytes(
        __import__("hashlib").sha256(b'[0,0,0,"init",0]').digest()[:8], "big")
    with pytest.raises(TypeError):
        stream_seed(0, object())


def test_secondary_weight_prefers_fewer_parameters():
    rule = FitnessRule(threshold=0.5)
    small, large = {"val_accuracy": 0.9, "params": 100}, {"val_accuracy": 0.95, "params": 200}
    assert rule.secondary_mode([small, large])
    assert rule.weight(small, True) == pytest.approx(2 * rule.weight(large, True))
    assert rule.key(small, True) > rule.key(large, True)
    assert rule.key(small, False) < rule.key(large, False)
    with pytest.raises(ValueError, match="test"):
        FitnessRule(primary="test_accuracy")


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match="^roulette wheel needs at least one weight$"):
        roulette_index([], random.Random(0))
    with pytest.raises(ValueError, match=r"^roulette weights must be non-negative numbers, got \[0.5, nan\]$"):
        roulette_index([0.5, float("nan")], random.Random(0))
    with pytest.raises(ValueError, match="^cannot draw 3 distinct items from 2$"):
        roulette_sample([1.0, 1.0], 3, random.Random(0))
    assert sorted(roulette_sample([1.0, 1.0], 2, random.Random(0))) == [0, 1]  # k == len(weights) is fine
    with pytest.raises(ValueError, match="^tournament needs at least one contestant$"):
        tournament_index([], 2, random.Random(0))


class _FixedWheel(random.Random):
    """A wheel whose random() is `value`: edges of slices, and 1.0, where only rounding could put the point."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def test_a_point_past_the_running_sum_lands_on_the_last_positive_weight():
    assert roulette_index([0.5, 0.7, 0.0, 0.0], _FixedWheel(1.0)) == 1
    assert roulette_index([0.0, 3.0, 0.0, 0.25, 0.0], _FixedWheel(1.0)) == 3


def test_all_zero_weights_draw_uniformly():
    rng = random.Random(3)
    counts = [0, 0, 0]
    for _ in range(3000):
        counts[roulette_index([0.0, 0.0, 0.0], rng)] += 1
    assert all(800 < count < 1200 for count in counts)


@given(st.integers(1, 8), st.integers(1, 10), st.integers(0, 10**6))
def test_tournament_ties_go_to_the_first_sampled(contestants, size, seed):
    keys = [7] * contestants
    sample = random.Random(seed).sample(range(contestants), min(size, contestants))
    assert tournament_index(keys, size, random.Random(seed)) == sample[0]


def test_tournament_better_decides_the_winner():
    keys = [4, 1, 9, 3]
    assert tournament_index(keys, 4, random.Random(0), better=lambda a, b: a < b) == 1
    assert tournament_index(keys, 4, random.Random(0)) == 2


def test_each_weight_owns_a_half_open_slice_of_the_wheel():
    assert roulette_index([0.0, 1.0], _FixedWheel(0.0)) == 1  # a zero weight is never drawn, even at 0.0
    assert roulette_index([0.5, 0.5], _FixedWheel(0.5)) == 1  # [0, 0.5) is the first's, [0.5, 1) the second's
    assert roulette_index([0.5, 0.5], _FixedWheel(0.4999)) == 0
