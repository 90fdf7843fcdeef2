"""Time `nascli.ga.cost.analyse` and `nascli.ga.genome.check_structure` per call.

The genomes are Klos-style random genomes (200 mutations of a minimal CIFAR-shaped genome, every
layer type including inception). Prints the best of several repeats in microseconds per call.
To compare two versions, run it against each checkout alternately, e.g.
`PYTHONPATH=/tmp/old python benchmarks/cost_speed.py` then `python benchmarks/cost_speed.py`.
"""

from __future__ import annotations

import json
import random
import time

import nascli
from nascli.ga.cost import analyse
from nascli.ga.genome import check_structure
from nascli.ga.operators import minimal_genome, random_genome
from nascli.ga.search_space import SearchSpace

CALLS = 2_000  # per repeat; the minimum over many short repeats resists a busy machine
REPEATS = 40


def per_call_microseconds(function, genomes) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        for i in range(CALLS):
            function(genomes[i % len(genomes)])
        best = min(best, (time.perf_counter() - started) / CALLS)
    return best * 1e6


def main() -> None:
    space = SearchSpace.from_dict({"layers": ["C", "P", "R", "D", "I"], "max_layers": 12})
    rng = random.Random(1)
    seed = minimal_genome(32, 32, 3, 10)
    genomes = [random_genome(seed, space, 200, rng) for _ in range(200)]
    figures = {
        "package": nascli.__file__,
        "mean_hidden_layers": sum(len(g.hidden) for g in genomes) / len(genomes),
        "analyse_us": round(per_call_microseconds(analyse, genomes), 1),
        "check_structure_us": round(per_call_microseconds(check_structure, genomes), 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
