"""Klos #9 proxy-scored initial walks (nascli.ga.proxy_init): a mutation is kept only when its proxy
score is at least the current one; the decisions depend only on the rng and the scores told, so any
interleaving of walks, and a walk rebuilt from a prefix of its scores (a resume), decide alike."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nascli.config import resolve, search_space_of, training_config_hash
from nascli.driver.proxy_init import proxy_config
from nascli.driver.strategy import layer_seed_genome
from nascli.errors import ConfigError
from nascli.ga import operators
from nascli.ga.proxy_init import InitWalk, proxy_score, walked_init


def toy_mutate(genome: tuple[int, ...], rng: random.Random) -> tuple[int, ...]:
    """Append, drop or change one gene; sometimes nothing (as a mutation that finds no valid change)."""
    choice = rng.randrange(4)
    if choice == 0 or not genome:
        return (*genome, rng.randrange(10))
    if choice == 1:
        return genome[:-1]
    if choice == 2:
        index = rng.randrange(len(genome))
        return (*genome[:index], rng.randrange(10), *genome[index + 1:])
    return genome


def score_of(salt: int, failing: frozenset[int]):
    """A deterministic proxy score per genome (None: its proxy training failed)."""

    def score(genome: tuple[int, ...]) -> float | None:
        digest = hashlib.sha256(repr((salt, genome)).encode()).digest()
        if digest[0] % 16 in failing:
            return None
        return digest[1] / 255

    return score


def run_walk(walk: InitWalk, score) -> list[tuple]:
    candidates = []
    while not walk.done:
        candidates.append(walk.candidate)
        walk.tell(score(walk.candidate))
    return candidates


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32), steps=st.integers(0, 40), salt=st.integers(0, 1000),
       failing=st.frozensets(st.integers(0, 15), max_size=6))
def test_a_mutation_is_kept_only_when_its_proxy_score_does_not_fall(seed, steps, salt, failing):
    score = score_of(salt, failing)
    walk = InitWalk((1, 2), steps, random.Random(seed), toy_mutate)
    candidates = run_walk(walk, score)
    assert len(candidates) == steps + 1 and candidates[0] == (1, 2)  # the seed is scored first
    assert len(walk.kept) == steps
    # replay the rule by hand: the current network only changes to a kept, scored, not-worse candidate
    current, current_score = (1, 2), score((1, 2))
    for candidate, kept in zip(candidates[1:], walk.kept):
        candidate_score = score(candidate)
        expected = candidate_score is not None and (current_score is None or candidate_score >= current_score)
        assert kept == expected
        if kept:
            current, current_score = candidate, candidate_score
    assert walk.current == current and walk.current_score == current_score


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32), steps=st.integers(1, 30), salt=st.integers(0, 1000),
       failing=st.frozensets(st.integers(0, 15), max_size=4), data=st.data())
def test_a_walk_rebuilt_from_a_prefix_of_its_scores_decides_alike(seed, steps, salt, failing, data):
    """A resume: a fresh walk told the scores the first one had received goes on exactly alike."""
    score = score_of(salt, failing)
    reference = InitWalk((), steps, random.Random(seed), toy_mutate)
    expected = run_walk(reference, score)
    told = data.draw(st.integers(0, steps + 1))
    interrupted = InitWalk((), steps, random.Random(seed), toy_mutate)
    for _ in range(told):
        interrupted.tell(score(interrupted.candidate))
    resumed = InitWalk((), steps, random.Random(seed), toy_mutate)
    replayed = run_walk(resumed, score)
    assert replayed == expected and resumed.kept == reference.kept and resumed.current == reference.current
    if told <= steps:
        assert interrupted.candidate == expected[told]


@settings(max_examples=60, deadline=None)
@given(seeds=st.lists(st.integers(0, 2**32), min_size=1, max_size=6), steps=st.integers(0, 15),
       salt=st.integers(0, 1000), order_seed=st.integers(0, 2**32))
def test_walks_advanced_in_any_interleaving_end_alike(seeds, steps, salt, order_seed):
    """Workers finish proxy trainings in any order; each walk depends only on its own scores."""
    score = score_of(salt, frozenset())
    alone = [InitWalk((0,), steps, random.Random(s), toy_mutate) for s in seeds]
    for walk in alone:
        run_walk(walk, score)
    mixed = [InitWalk((0,), steps, random.Random(s), toy_mutate) for s in seeds]
    order = random.Random(order_seed)
    while not all(walk.done for walk in mixed):
        walk = order.choice([w for w in mixed if not w.done])
        walk.tell(score(walk.candidate))
    assert [w.current for w in mixed] == [w.current for w in alone]
    assert [w.kept for w in mixed] == [w.kept for w in alone]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_walks_with_the_real_operators_stay_in_the_search_space(seed):
    cfg = resolve(preset="cifar10-config9", project_file=None, env={})
    space = search_space_of(cfg)
    probabilities = cfg.ga.operators.model_dump()
    walk = InitWalk(layer_seed_genome(cfg), 12, random.Random(seed),
                    lambda genome, rng: operators.random_genome(genome, space, 1, rng, probabilities))
    # a proxy score that prefers fewer layers: kept mutations never add one
    sizes = []
    while not walk.done:
        walk.tell(-len(walk.candidate.hidden))
        sizes.append(len(walk.current.hidden))
    assert sizes == sorted(sizes, reverse=True)
    assert operators.violations(walk.current, space) == []


def test_a_failed_or_incomplete_proxy_training_scores_nothing():
    assert proxy_score("done", {"val_accuracy": 0.4, "val_loss": 1.0}, "val_accuracy") == 0.4
    assert proxy_score("done", {"val_accuracy": 0.4, "val_loss": 0.5}, "inverse_val_loss") == 2.0
    assert proxy_score("failed", {"val_accuracy": 0.4}, "val_accuracy") is None
    assert proxy_score("done", {"val_accuracy": None}, "val_accuracy") is None


def test_walked_genomes_are_served_in_call_order_then_the_fallback():
    walked = ["a", "b"]
    init = walked_init(lambda: walked, lambda rng: "fallback")
    assert [init(random.Random(0)) for _ in range(3)] == ["a", "b", "fallback"]


def test_the_proxy_training_takes_the_init_proxy_sizes():
    cfg = resolve(preset="cifar10-config9", overrides=["ga.init_proxy_iterations=7", "ga.init_proxy_samples=100",
                                                        "ga.init_proxy_val_share=0.2"], project_file=None, env={})
    proxy = proxy_config(cfg).train
    assert (proxy.mode, proxy.proxy_iterations, proxy.proxy_samples, proxy.proxy_val_share) == ("proxy", 7, 100, 0.2)
    assert cfg.train.mode == "full"  # the run's own training is untouched
    assert training_config_hash(proxy_config(cfg)) != training_config_hash(cfg)  # never the run's cache key
    defaults = proxy_config(resolve(preset="cifar10-config9", project_file=None, env={})).train
    assert (defaults.proxy_iterations, defaults.proxy_samples, defaults.proxy_val_share) == (5, 256, 0.1)


@pytest.mark.parametrize("overrides", [["run.strategy=regularized-evolution", "ga.replacement=none"],
                                       ["task.kind=synthetic", "task.genome_family=modules", "ga.seed_genome=none"]])
def test_proxy_walks_are_refused_where_no_island_ga_of_layer_genomes_runs(overrides):
    with pytest.raises(ConfigError, match="ga.init_proxy"):
        resolve(preset="cifar10-config9", overrides=overrides, project_file=None, env={})


def test_the_walks_say_how_far_they_are():
    from nascli.driver.proxy_init import ProxyInitialisation

    cfg = resolve(preset="cifar10-config9", project_file=None, env={})
    walks = ProxyInitialisation(cfg, layer_seed_genome(cfg))
    assert len(walks.walks) == 20 and not walks.done
    assert walks.status().endswith("0 of 20 walks done, 0 proxy trainings finished")
