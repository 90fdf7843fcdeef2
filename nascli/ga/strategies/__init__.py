"""Search strategies (pure ask/tell objects) and the factory the runner calls.

`make_strategy(sections, variation, seed=None)` takes the run configuration as plain dicts
(`RunConfig.model_dump(mode="json")`), so `nascli.ga` stays free of pydantic. `make_variation`
wires the real operators (nascli.ga.operators) into the `Variation` a strategy receives;
`make_module_variation` does the same for the Hajewski module family (nascli.ga.module_operators).
Contract details: nascli/ga/strategies/base.py and docs/strategies.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from nascli.errors import ConfigError
from nascli.ga.fitness import FitnessRule
from nascli.ga.strategies.base import Outcome, Proposal, ReplayError, Strategy, Variation

__all__ = ["Outcome", "Proposal", "ReplayError", "Strategy", "Variation", "STRATEGY_NAMES", "make_strategy",
           "make_variation", "make_module_variation", "canonical_hash", "steady_parallelism",
           "planned_evaluations"]


def canonical_hash(genome: Any) -> str:
    """The genotype-cache hash of a proposal's genome of either family: `str()` is the canonical
    string of a Klos `Genome` and of a `ModuleGenome` alike, and this equals their own
    `genome_hash` / `module_genome_hash` (first 16 hex chars of its sha256)."""
    return hashlib.sha256(str(genome).encode("utf-8")).hexdigest()[:16]


def make_variation(space: Any, seed_genome: Any, *, init_mutations: int,
                   init_probabilities: Mapping[str, float] | None = None) -> Variation:
    """Real operators: `vary` = operators.apply, `random_init` = Klos's `init_mutations`-mutation init
    of `seed_genome`, `features` = predictors.genome_features (for LINAS)."""
    from nascli.ga import operators
    from nascli.ga.predictors import genome_features

    probabilities = dict(init_probabilities) if init_probabilities else None

    def vary(operator: str, parents, rng):
        return operators.apply(operator, parents, space, rng)

    def random_init(rng):
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

    def vary(operator: str, parents, rng):
        return module_operators.apply(operator, parents, space, rng)

    def random_init(rng):
        if uniform_init:
            return module_operators.uniform_module_genome(space, rng)
        return module_operators.random_module_genome(seed_genome, space, init_mutations, rng, probabilities)

    def features(genome):
        return module_operators.module_features(genome, space)

    return Variation(vary=vary, random_init=random_init, features=features)


def _sections(sections: Mapping[str, Mapping[str, Any]]) -> tuple[dict, dict, dict, dict]:
    ga = dict(sections.get("ga") or {})
    return ga, dict(sections.get("migration") or {}), dict(sections.get("fitness") or {}), dict(sections.get("run") or {})


def _island_ga(sections, variation, seed):
    from nascli.ga.strategies.island_ga import IslandGA, IslandSettings

    ga, migration, fitness, _ = _sections(sections)
    defaults = IslandSettings()
    settings = IslandSettings(
        islands=ga.get("islands", defaults.islands), population=ga.get("population", defaults.population),
        generations=ga.get("generations", defaults.generations),
        offspring_per_generation=ga.get("offspring_per_generation", defaults.offspring_per_generation),
        min_parent_age=ga.get("min_parent_age", defaults.min_parent_age),
        selection=ga.get("selection", defaults.selection),
        replacement=ga.get("replacement") or defaults.replacement,
        tournament_size=ga.get("tournament_size", defaults.tournament_size),
        operators=ga.get("operators") or defaults.operators,
        migration_period=migration.get("period", defaults.migration_period),
        migration_candidates=migration.get("candidates", defaults.migration_candidates),
        migration_fraction=migration.get("fraction", defaults.migration_fraction),
        migration_datasets=migration.get("datasets", defaults.migration_datasets),
        fitness=FitnessRule.from_section(fitness))
    return IslandGA(settings, variation, seed)


def _operators(ga: Mapping[str, Any]) -> Mapping[str, float]:
    from nascli.ga.strategies.island_ga import IslandSettings

    return ga.get("operators") or IslandSettings().operators


def _objectives(sections: Mapping[str, Any], fitness: Mapping[str, Any]) -> list[str]:
    objectives = (sections.get("nsga2") or {}).get("objectives")
    return list(objectives) if objectives else [fitness.get("primary", "val_accuracy"), fitness.get("secondary", "params")]


def _mu_plus_lambda(sections, variation, seed):
    from nascli.ga.strategies.mu_plus_lambda import MuPlusLambda

    ga, _, fitness, _ = _sections(sections)
    return MuPlusLambda(ga.get("population", 20), ga.get("offspring_per_generation", 1), ga.get("generations", 1000),
                        _operators(ga), variation, seed, FitnessRule.from_section(fitness))


def _regularized_evolution(sections, variation, seed):
    from nascli.ga.strategies.regularized_evolution import RegularizedEvolution

    ga, _, fitness, _ = _sections(sections)
    return RegularizedEvolution(ga.get("population", 20), ga.get("generations", 1000), ga.get("tournament_size", 5),
                                _operators(ga), variation, seed, FitnessRule.from_section(fitness))


def _nsga2(sections, variation, seed):
    from nascli.ga.strategies.nsga2 import NSGA2

    ga, _, fitness, _ = _sections(sections)
    return NSGA2(ga.get("population", 20), ga.get("generations", 1000), _objectives(sections, fitness),
                 _operators(ga), variation, seed)


def _linas(sections, variation, seed):
    from nascli.ga.strategies.linas import LINAS

    ga, _, fitness, _ = _sections(sections)
    linas = dict(sections.get("linas") or {})
    return LINAS(linas.get("evaluations_per_iteration", 50), linas.get("iterations", 10),
                 linas.get("predictor_generations", 200), linas.get("predictor", "ridge"),
                 _objectives(sections, fitness), _operators(ga), variation, seed)


def _random(sections, variation, seed):
    from nascli.ga.strategies.random_search import RandomSearch, island_ga_budget

    ga, _, fitness, _ = _sections(sections)
    population = ga.get("population", 20)
    budget = island_ga_budget(ga.get("islands", 5), population, ga.get("generations", 1000),
                              ga.get("offspring_per_generation", 1))
    return RandomSearch(budget, population, variation, seed, FitnessRule.from_section(fitness))


def steady_parallelism(name: str, sections: Mapping[str, Mapping[str, Any]]) -> int:
    """How many evaluations the strategy keeps in flight once past its first generation (fewer at
    a migration barrier): islands x offspring for the island GA, lambda for mu-plus-lambda, the
    batch for random search and LINAS, the population for NSGA-II and regularized evolution."""
    ga, _, _, _ = _sections(sections)
    population, offspring = int(ga.get("population", 20)), int(ga.get("offspring_per_generation", 1))
    if name == "island-ga":
        return int(ga.get("islands", 5)) * offspring
    if name == "mu-plus-lambda":
        return offspring
    if name == "linas":
        return int((sections.get("linas") or {}).get("evaluations_per_iteration", 50))
    return population


def planned_evaluations(sections: Mapping[str, Mapping[str, Any]]) -> int:
    """How many evaluations the configured strategy proposes in all (the live view's budget bar).
    Cache hits and failures count: they use up proposals like trained children."""
    ga, _, _, run = _sections(sections)
    strategy = run.get("strategy", "island-ga")
    population, generations = ga.get("population", 20), ga.get("generations", 1000)
    offspring = ga.get("offspring_per_generation", 1)
    if strategy in ("island-ga", "random"):
        from nascli.ga.strategies.random_search import island_ga_budget

        return island_ga_budget(ga.get("islands", 5), population, generations, offspring)
    if strategy == "mu-plus-lambda":
        return population + generations * offspring
    if strategy == "regularized-evolution":
        return population + generations
    if strategy == "nsga2":
        return population * (generations + 1)  # generation 0 is the random population
    linas = dict(sections.get("linas") or {})
    return linas.get("evaluations_per_iteration", 50) * linas.get("iterations", 10)


_FACTORIES: dict[str, Callable[[Mapping, Variation, int], Strategy]] = {
    "island-ga": _island_ga, "mu-plus-lambda": _mu_plus_lambda, "regularized-evolution": _regularized_evolution,
    "nsga2": _nsga2, "linas": _linas, "random": _random}
STRATEGY_NAMES = tuple(_FACTORIES)


def make_strategy(sections: Mapping[str, Mapping[str, Any]], variation: Variation,
                  seed: int | None = None) -> Strategy:
    """The strategy named by `run.strategy` (default island-ga), seeded by `seed` or `run.seed`."""
    run = dict(sections.get("run") or {})
    name = run.get("strategy", "island-ga")
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ConfigError(f"run.strategy: unknown strategy {name!r}",
                          hint=f"choose one of {', '.join(STRATEGY_NAMES)}")
    try:
        return factory(sections, variation, int(run.get("seed", 0) if seed is None else seed))
    except ValueError as exc:  # settings rejected by a strategy: a configuration problem
        raise ConfigError(f"{name}: {exc}", hint="check the [ga], [migration], [fitness], [nsga2] and "
                          "[linas] tables") from None
