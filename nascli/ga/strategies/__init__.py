"""Search strategies (pure ask/tell objects) and the factory the runner calls.

`make_strategy(sections, variation, seed=None)` takes the run configuration as plain dicts
(`RunConfig.model_dump(mode="json")`), so `nascli.ga` stays free of pydantic. `make_variation`
wires the real operators (nascli.ga.operators) into the `Variation` a strategy receives;
`make_module_variation` does the same for the Hajewski module family (nascli.ga.module_operators).
Contract details: nascli/ga/strategies/base.py and docs/strategies.md.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nascli.errors import ConfigError
from nascli.ga.fitness import FitnessRule
from nascli.ga.genome import canonical_string_hash
from nascli.ga.strategies.base import Outcome, Proposal, ReplayError, Strategy, Variation

# A whole run configuration as plain dicts, table -> key -> value.
Sections = Mapping[str, Mapping[str, Any]]

__all__ = ["Outcome", "Proposal", "ReplayError", "Strategy", "Variation", "STRATEGY_NAMES", "make_strategy",
           "make_variation", "make_module_variation", "canonical_hash", "steady_parallelism",
           "planned_evaluations"]


def canonical_hash(genome: Any) -> str:
    """The genotype-cache hash of a proposal's genome of either family: `str()` is the canonical
    string of a Klos `Genome` and of a `ModuleGenome` alike."""
    return canonical_string_hash(str(genome))


def make_variation(space: Any, seed_genome: Any, *, init_mutations: int,
                   init_probabilities: Mapping[str, float] | None = None) -> Variation:
    """Real operators: `vary` = operators.apply, `random_init` = Klos's `init_mutations`-mutation init
    of `seed_genome`, `features` = predictors.genome_features (for LINAS)."""
    from nascli.ga import operators
    from nascli.ga.predictors import genome_features

    probabilities = dict(init_probabilities) if init_probabilities else None

    def vary(operator: str, parents: Sequence[Any], rng: random.Random) -> Any:
        return operators.apply(operator, parents, space, rng)

    def random_init(rng: random.Random) -> Any:
        return operators.random_genome(seed_genome, space, init_mutations, rng, probabilities)

    return Variation(vary=vary, random_init=random_init, features=genome_features)


def make_module_variation(space: Any, seed_genome: Any, *, init_mutations: int,
                          init_probabilities: Mapping[str, float] | None = None,
                          uniform_init: bool = False) -> Variation:
    """Operators of the Hajewski module family (nascli.ga.module_operators) on a `ModuleSpace`:
    `vary` = module_operators.apply; `random_init` = `init_mutations` mutations of `seed_genome`, or
    with `uniform_init` seed 002's random-search sample (U[1, max_layers] random layers);
    `features` = module_operators.module_features (for LINAS)."""
    from nascli.ga import module_operators

    probabilities = dict(init_probabilities) if init_probabilities else None

    def vary(operator: str, parents: Sequence[Any], rng: random.Random) -> Any:
        return module_operators.apply(operator, parents, space, rng)

    def random_init(rng: random.Random) -> Any:
        if uniform_init:
            return module_operators.uniform_module_genome(space, rng)
        return module_operators.random_module_genome(seed_genome, space, init_mutations, rng, probabilities)

    def features(genome: Any) -> Mapping[str, float]:
        return module_operators.module_features(genome, space)

    return Variation(vary=vary, random_init=random_init, features=features)


# Every strategy setting comes from one configuration key. The sections are a whole run
# configuration (`RunConfig.model_dump(mode="json")`), which holds each key with its documented
# default, so no default is repeated here. IslandSettings field -> (table, key):
ISLAND_SETTINGS = {
    "islands": ("ga", "islands"), "population": ("ga", "population"), "generations": ("ga", "generations"),
    "offspring_per_generation": ("ga", "offspring_per_generation"), "min_parent_age": ("ga", "min_parent_age"),
    "selection": ("ga", "selection"), "replacement": ("ga", "replacement"),
    "tournament_size": ("ga", "tournament_size"), "operators": ("ga", "operators"),
    "migration_period": ("migration", "period"), "migration_candidates": ("migration", "candidates"),
    "migration_fraction": ("migration", "fraction"), "migration_datasets": ("migration", "datasets"),
}


def _fitness(sections: Sections) -> FitnessRule:
    return FitnessRule.from_section(sections["fitness"])


def _island_ga(sections: Sections, variation: Variation, seed: int) -> Strategy:
    from nascli.ga.strategies.island_ga import IslandGA, IslandSettings

    settings = {name: sections[table][key] for name, (table, key) in ISLAND_SETTINGS.items()}
    return IslandGA(IslandSettings(**settings, fitness=_fitness(sections)), variation, seed)


def _mu_plus_lambda(sections: Sections, variation: Variation, seed: int) -> Strategy:
    from nascli.ga.strategies.mu_plus_lambda import MuPlusLambda

    ga = sections["ga"]
    return MuPlusLambda(ga["population"], ga["offspring_per_generation"], ga["generations"], ga["operators"],
                        variation, seed, _fitness(sections))


def _regularized_evolution(sections: Sections, variation: Variation, seed: int) -> Strategy:
    from nascli.ga.strategies.regularized_evolution import RegularizedEvolution

    ga = sections["ga"]
    return RegularizedEvolution(ga["population"], ga["generations"], ga["tournament_size"], ga["operators"],
                                variation, seed, _fitness(sections))


def _nsga2(sections: Sections, variation: Variation, seed: int) -> Strategy:
    from nascli.ga.strategies.nsga2 import NSGA2

    ga = sections["ga"]
    return NSGA2(ga["population"], ga["generations"], sections["nsga2"]["objectives"], ga["operators"],
                 variation, seed)


def _linas(sections: Sections, variation: Variation, seed: int) -> Strategy:
    from nascli.ga.strategies.linas import LINAS

    linas = sections["linas"]
    return LINAS(linas["evaluations_per_iteration"], linas["iterations"], linas["predictor_generations"],
                 linas["predictor"], sections["nsga2"]["objectives"], sections["ga"]["operators"], variation, seed)


def _random(sections: Sections, variation: Variation, seed: int) -> Strategy:
    from nascli.ga.strategies.random_search import RandomSearch

    return RandomSearch(_island_ga_budget(sections["ga"]), sections["ga"]["population"], variation, seed,
                        _fitness(sections))


def _island_ga_budget(ga: Mapping[str, Any]) -> int:
    from nascli.ga.strategies.random_search import island_ga_budget

    return island_ga_budget(ga["islands"], ga["population"], ga["generations"], ga["offspring_per_generation"])


def steady_parallelism(name: str, sections: Sections) -> int:
    """How many evaluations the strategy keeps in flight once past its first generation (fewer at
    a migration barrier): islands x offspring for the island GA, lambda for mu-plus-lambda, the
    batch for random search and LINAS, the population for NSGA-II and regularized evolution."""
    ga = sections["ga"]
    if name == "island-ga":
        return int(ga["islands"]) * int(ga["offspring_per_generation"])
    if name == "mu-plus-lambda":
        return int(ga["offspring_per_generation"])
    if name == "linas":
        return int(sections["linas"]["evaluations_per_iteration"])
    return int(ga["population"])


def planned_evaluations(sections: Sections) -> int:
    """How many evaluations the configured strategy proposes in all (the live view's budget bar).
    Cache hits and failures count: they use up proposals like trained children."""
    ga, strategy = sections["ga"], sections["run"]["strategy"]
    population, generations, offspring = ga["population"], ga["generations"], ga["offspring_per_generation"]
    if strategy in ("island-ga", "random"):
        return _island_ga_budget(ga)
    if strategy == "mu-plus-lambda":
        return int(population + generations * offspring)
    if strategy == "regularized-evolution":
        return int(population + generations)
    if strategy == "nsga2":
        return int(population * (generations + 1))  # generation 0 is the random population
    linas = sections["linas"]
    return int(linas["evaluations_per_iteration"] * linas["iterations"])


_FACTORIES: dict[str, Callable[[Sections, Variation, int], Strategy]] = {
    "island-ga": _island_ga, "mu-plus-lambda": _mu_plus_lambda, "regularized-evolution": _regularized_evolution,
    "nsga2": _nsga2, "linas": _linas, "random": _random}
STRATEGY_NAMES = tuple(_FACTORIES)


def make_strategy(sections: Sections, variation: Variation, seed: int | None = None) -> Strategy:
    """The strategy named by `run.strategy`, seeded by `seed` or `run.seed`."""
    run = sections["run"]
    name = run["strategy"]
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ConfigError(f"run.strategy: unknown strategy {name!r}",
                          hint=f"choose one of {', '.join(STRATEGY_NAMES)}")
    try:
        return factory(sections, variation, int(run["seed"] if seed is None else seed))
    except ValueError as exc:  # settings rejected by a strategy: a configuration problem
        raise ConfigError(f"{name}: {exc}", hint="check the [ga], [migration], [fitness], [nsga2] and "
                          "[linas] tables") from None
