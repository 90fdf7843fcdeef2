"""Klos config #9 seed architectures (seed 000, Sec. 4.2, Table 2 #9): proxy-scored initial walks.

Each initial individual starts from the seed genome and takes `steps` single random mutations (the
operators and probabilities of `ga.init_mutations`). After each mutation the mutated network's
fitness is approximated by a short proxy training; the mutation is kept when that approximation is
at least the one of the network it was made from, otherwise the walk goes on from the network
before it (docs/strategies.md states this reading of the paper). The seed genome itself is scored
first, so the first mutation has something to beat. A proxy training that fails scores nothing: the
mutation is not kept (a failed seed is beaten by any scored mutation).

Pure: a walk draws only from its own `random.Random` and decides only from the scores it is told,
so replaying the same scores in any interleaving of walks makes the same decisions. The driver
(nascli.driver.proxy_init) runs the proxy trainings on workers and tells the scores.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nascli.ga.fitness import MissingMetric, metric_value

Genome = Any
Mutate = Callable[[Genome, random.Random], Genome]  # one random mutation (it may return its input)


@dataclass
class InitWalk:
    """One initial individual's walk. `candidate` is the genome whose proxy score is awaited (None
    once the walk has taken its `steps` mutations); `tell(score)` answers it."""

    seed_genome: Genome
    steps: int
    rng: random.Random
    mutate: Mutate
    current: Genome = None
    current_score: float | None = None
    candidate: Genome | None = None
    scored: int = 0  # proxy scores told so far (the seed's included)
    kept: list[bool] = field(default_factory=list)  # per mutation: kept or not

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"an init walk takes 0 or more mutations, not {self.steps}")
        self.current = self.seed_genome
        self.candidate = self.seed_genome  # the seed is scored first

    @property
    def done(self) -> bool:
        return self.candidate is None

    def tell(self, score: float | None) -> None:
        """The proxy score of `candidate` (None: its proxy training failed)."""
        if self.candidate is None:
            raise ValueError("the walk is finished; there is no candidate to score")
        if self.scored == 0:
            self.current_score = score
        else:
            keep = score is not None and (self.current_score is None or score >= self.current_score)
            self.kept.append(keep)
            if keep:
                self.current, self.current_score = self.candidate, score
        self.scored += 1
        self.candidate = self.mutate(self.current, self.rng) if self.scored <= self.steps else None


def proxy_score(status: str, metrics: Mapping[str, Any], primary: str) -> float | None:
    """The fitness approximation of one proxy training: its primary metric (fitness.primary), None
    when it failed or lacks the metric."""
    if status != "done":
        return None
    try:
        return metric_value(metrics, primary)
    except MissingMetric:
        return None


def walked_init(walked: Callable[[], Sequence[Genome]], fallback: Callable[[random.Random], Genome]
                ) -> Callable[[random.Random], Genome]:
    """A `Variation.random_init` that hands out the finished walks' genomes in call order (a
    strategy asks for its initial individuals in a fixed order, so replay gets the same ones), and
    after them `fallback` (e.g. an island restarting after every evaluation failed)."""
    served = 0

    def random_init(rng: random.Random) -> Genome:
        nonlocal served
        genomes = walked()
        if served < len(genomes):
            served += 1
            return genomes[served - 1]
        return fallback(rng)

    return random_init
