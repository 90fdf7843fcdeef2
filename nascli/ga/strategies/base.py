"""The ask/tell contract between a search strategy and the driver (pymoo style).

- `ask(n=None) -> list[Proposal]`: the NEW proposals that can be issued now (never one that is
  already outstanding; empty while waiting). `n` caps how many are returned; the rest stay ready
  for the next call. Asynchronous strategies make one child per call unit: `ask(n)` with n free
  workers (None means 1).
- `tell(outcome)`: one finished evaluation. Synchronous strategies buffer outcomes per
  generation and apply them in slot order once the generation is complete, so the ORDER of tell
  calls never changes a decision. Asynchronous ones apply each outcome on arrival.
- `finished`: the budget is spent and nothing is outstanding.
- `snapshot() -> dict`: JSON-able state for the report (populations, fitness, best, events).
- `events`: append-only list of JSON-able dicts (e.g. migrations) in the order they happened;
  deterministic, so the driver stores the ones beyond what it already stored.
A run is resumed by replaying its recorded asks and results into a fresh strategy
(`nascli.driver.replay`).

Keys are `(island, generation, slot)`. Strategies never touch the trainer, the store or the clock;
every random choice comes from `nascli.ga.rng.rng_for(seed, island, generation, purpose, slot)`.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

Key = tuple[int, int, int]
Genome = Any  # nascli.ga.genome.Genome in production; any hashable value with a stable str() in tests

STATUSES = ("done", "failed")


@dataclass(frozen=True)
class Proposal:
    """A child to evaluate. `parents` are keys of evaluated individuals; `operator` names how it was made."""

    key: Key
    genome: Genome
    parents: tuple[Key, ...] = ()
    operator: str = "init"


@dataclass(frozen=True)
class Outcome:
    """A finished evaluation: `metrics` holds val_accuracy, val_loss, params, flops, latency_ms, ...

    Test metrics may be present (for the report) but never influence a decision.
    """

    key: Key
    status: str
    metrics: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"Outcome.status must be one of {STATUSES}, not {self.status!r}")
        object.__setattr__(self, "key", tuple(int(k) for k in self.key))


@dataclass(frozen=True)
class Variation:
    """How a strategy makes genomes; built by the driver from nascli.ga.operators.

    vary(operator, parent_genomes, rng) -> genome for operator in insert|switch|delete|adjust|crossover;
    random_init(rng) -> genome (the seed genome mutated `init_mutations` times);
    features(genome) -> {name: float} for LINAS predictors (None: LINAS cannot run).
    """

    vary: Callable[[str, Sequence[Genome], random.Random], Genome]
    random_init: Callable[[random.Random], Genome]
    features: Callable[[Genome], Mapping[str, float]] | None = None


@dataclass
class Member:
    """An evaluated individual in a population. `birth` is the generation it was created in."""

    key: Key
    genome: Genome
    metrics: Mapping[str, Any]
    birth: int
    origin: int  # the island it was evaluated on (differs after migration)

    def to_json(self, **extra: Any) -> dict[str, Any]:
        return {"key": list(self.key), "genome": str(self.genome), "birth": self.birth, "origin": self.origin,
                "metrics": json_metrics(self.metrics), **extra}


def json_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics with non-finite floats replaced by None (JSON has no NaN/inf)."""
    clean: dict[str, Any] = {}
    for name, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        if isinstance(value, (str, int, float, bool)) or value is None:
            clean[name] = value
    return clean


OPERATOR_ORDER = ("insert", "switch", "delete", "adjust", "crossover")
MUTATIONS = ("insert", "switch", "delete", "adjust")


def operator_table(probabilities: Mapping[str, float],
                   names: Iterable[str] = OPERATOR_ORDER) -> list[tuple[str, float]]:
    """(name, probability) pairs in a fixed order, so the same draw always maps to the same operator."""
    table = [(name, float(probabilities.get(name, 0.0))) for name in names]
    if sum(p for _, p in table) <= 0:
        raise ValueError(f"operator probabilities for {list(names)} are all zero")
    return table


class ReplayError(ValueError):
    """The recorded log does not match what this strategy proposes (changed config, seed or code)."""


class Strategy(ABC):
    """Base class: bookkeeping of outstanding proposals shared by every strategy."""

    name = "strategy"
    asynchronous = False

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._outstanding: dict[Key, Proposal] = {}
        self._ready: list[Proposal] = []
        self.events: list[dict[str, Any]] = []
        self.evaluations_told = 0
        self.failures_told = 0

    # -- the contract -------------------------------------------------------------------------
    def ask(self, n: int | None = None) -> list[Proposal]:
        if self.asynchronous:  # one child per free worker, made from the state right now
            self._ready.extend(self._make_ready(1 if n is None else n))
        else:
            self._ready.extend(self._make_ready(None))
        take = len(self._ready) if n is None else max(0, min(n, len(self._ready)))
        issued, self._ready = self._ready[:take], self._ready[take:]
        for proposal in issued:
            self._outstanding[proposal.key] = proposal
        return issued

    def tell(self, outcome: Outcome) -> None:
        proposal = self._outstanding.pop(outcome.key, None)
        if proposal is None:
            raise ValueError(f"outcome for {outcome.key} does not match an outstanding proposal "
                             "(told twice, or never asked)")
        self.evaluations_told += 1
        self.failures_told += outcome.status == "failed"
        self._receive(proposal, outcome)

    @property
    def outstanding(self) -> list[Proposal]:
        """Issued proposals without an outcome yet, in issue order."""
        return list(self._outstanding.values())

    @property
    def finished(self) -> bool:
        return not self._outstanding and not self._ready and self._budget_spent()

    def snapshot(self) -> dict[str, Any]:
        return {"strategy": self.name, "seed": self.seed, "finished": self.finished,
                "evaluations": self.evaluations_told, "failures": self.failures_told,
                "outstanding": [list(p.key) for p in self._outstanding.values()],
                "events": list(self.events), **self._state()}

    def worst_living(self, island: int, among: Callable[[Key], bool] | None = None) -> Key | None:
        """The key of the island's worst living member, the one a child must beat to enter
        (`train.stop_rule = below-worst`), counting only members whose key `among` accepts; None
        for strategies without such a member, while the island's population is not full (any child
        enters then), or when `among` accepts no member."""
        return None

    def living(self) -> list[tuple[int, Any, list[Key]]]:
        """Per island: (island, its generation or None, keys of its living members): what the driver
        mirrors into the store after every step, so strategies with populations make it cheap."""
        state = self._state()
        islands = state.get("islands") or [{"island": 0, "generation": state.get("generation", 0),
                                            "population": state.get("population", [])}]
        return [(island["island"], island.get("generation"), [tuple(m["key"]) for m in island.get("population", [])])
                for island in islands]

    def undecided(self) -> set[Key]:
        """Keys whose outcome was told but not applied yet (a generation waiting for its other
        children): they may still enter a population, so the driver must not record them as dead."""
        return set()

    # -- for subclasses -------------------------------------------------------------------------
    @abstractmethod
    def _make_ready(self, limit: int | None) -> list[Proposal]:
        """Proposals that became issuable since the last call (each exactly once); asynchronous
        strategies make at most `limit`, synchronous ones get None and return whole generations."""

    @abstractmethod
    def _receive(self, proposal: Proposal, outcome: Outcome) -> None:
        """Take one outcome of an outstanding proposal."""

    @abstractmethod
    def _budget_spent(self) -> bool:
        """True when no further proposals will ever be made."""

    def _state(self) -> dict[str, Any]:
        return {}


class GenerationalStrategy(Strategy):
    """Synchronous strategies: proposals come in batches keyed (island, generation); a batch's
    outcomes are applied together, in slot order, once all of them are in."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self._batches: dict[tuple[int, int], dict[int, Proposal]] = {}
        self._buffers: dict[tuple[int, int], dict[int, Outcome]] = {}

    def _open_batch(self, island: int, generation: int, proposals: list[Proposal]) -> list[Proposal]:
        """Register a generation's proposals; an empty batch completes at once."""
        self._batches[(island, generation)] = {p.key[2]: p for p in proposals}
        self._buffers[(island, generation)] = {}
        if not proposals:
            self._close_batch(island, generation)
        return proposals

    def undecided(self) -> set[Key]:
        return {outcome_key for buffer in self._buffers.values() for outcome_key in
                (cast(Key, tuple(o.key)) for o in buffer.values())}

    def _receive(self, proposal: Proposal, outcome: Outcome) -> None:
        island, generation, slot = proposal.key
        self._buffers[(island, generation)][slot] = outcome
        if len(self._buffers[(island, generation)]) == len(self._batches[(island, generation)]):
            self._close_batch(island, generation)

    def _close_batch(self, island: int, generation: int) -> None:
        proposals = self._batches.pop((island, generation))
        outcomes = self._buffers.pop((island, generation))
        results = [(proposals[s], outcomes[s]) for s in sorted(proposals)]
        self._generation_complete(island, generation, results)

    @abstractmethod
    def _generation_complete(self, island: int, generation: int,
                             results: list[tuple[Proposal, Outcome]]) -> None:
        """Apply one complete generation's outcomes (in slot order)."""
