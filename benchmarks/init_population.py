"""How long Klos's initial population takes: `population` individuals, each the seed genome mutated
`mutations` times (Table 5: 1,000), per input shape; plus how often an operator had no valid move.

    python benchmarks/init_population.py [--population 100] [--mutations 1000] [--seed 0]

Prints seconds per population, microseconds per mutation, mean hidden layers and parameters, and
the fallback rate per operator (the share of calls that returned the parent unchanged). A
pure-Python calibration loop is printed first so figures from different machines can be compared.
"""

from __future__ import annotations

import argparse
import bisect
import random
import statistics
import time

from nascli.ga import operators
from nascli.ga.operators import KLOS_PROBABILITIES, MUTATIONS, minimal_genome, random_genome, violations
from nascli.ga.search_space import SearchSpace

SHAPES = ((28, 28, 1), (32, 32, 3), (8, 8, 1), (96, 96, 3))  # width, height, channels


def calibration_seconds() -> float:
    start = time.perf_counter()
    total = 0
    for i in range(3_000_000):
        total += i
    return time.perf_counter() - start


def fallback_rates(space: SearchSpace, seed_genome, mutations: int, rng: random.Random) -> dict[str, float]:
    """Replays the initialisation through the private operators to count fallbacks per operator."""
    names, cumulative = operators.cumulative_weights(KLOS_PROBABILITIES, MUTATIONS)
    calls = dict.fromkeys(MUTATIONS, 0)
    fallbacks = dict.fromkeys(MUTATIONS, 0)
    current = operators._individual(seed_genome, space)
    for _ in range(mutations):
        name = names[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]
        child = operators._MUTATION_FUNCTIONS[name](current, space, rng)
        calls[name] += 1
        fallbacks[name] += child is None
        current = child or current
    return {name: fallbacks[name] / calls[name] if calls[name] else 0.0 for name in MUTATIONS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=100)
    parser.add_argument("--mutations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    space = SearchSpace()
    print(f"calibration: 3M pure-Python additions take {calibration_seconds():.2f} s on this machine")
    print(f"space: {space}")
    for width, height, channels in SHAPES:
        seed_genome = minimal_genome(width, height, channels, 10)
        rng = random.Random(args.seed)
        start = time.perf_counter()
        population = [random_genome(seed_genome, space, args.mutations, rng) for _ in range(args.population)]
        seconds = time.perf_counter() - start
        assert all(not violations(g, space) for g in population)
        params = [operators._individual(g, space).profile.params for g in population]
        rates = fallback_rates(space, seed_genome, 20 * args.mutations, random.Random(args.seed))
        per_mutation_us = seconds / (args.population * args.mutations) * 1e6
        print(f"In_{width}_{height}_{channels}: {args.population} x {args.mutations} mutations in "
              f"{seconds:.2f} s ({per_mutation_us:.1f} us/mutation); hidden layers mean "
              f"{statistics.mean(len(g.hidden) for g in population):.1f}, params median "
              f"{statistics.median(params):,.0f}; fallbacks "
              + ", ".join(f"{name} {rate:.1%}" for name, rate in rates.items()))


if __name__ == "__main__":
    main()
