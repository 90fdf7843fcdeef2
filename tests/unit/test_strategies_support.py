"""Toy genome, toy operators, a deterministic fake evaluator and a simulated run driver.

Shared by the strategy tests (imported as `from test_strategies_support import ...`). The toy
genome is a tuple of small ints; its 'accuracy' is a deterministic function of the tuple, so a
run is reproducible; `params` is the sum of the tuple.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

from nascli.driver.replay import RecordedAsk, replay
from nascli.ga.strategies.base import Outcome, Proposal, Strategy, Variation

MAX_LEN = 8


def toy_vary(operator: str, parents, rng: random.Random):
    g = list(parents[0])
    if operator == "insert" and len(g) < MAX_LEN:
        g.insert(rng.randrange(len(g) + 1), rng.randint(1, 9))
    elif operator == "delete" and len(g) > 1:
        del g[rng.randrange(len(g))]
    elif operator == "switch" and len(g) > 1:
        i, j = rng.sample(range(len(g)), 2)
        g[i], g[j] = g[j], g[i]
    elif operator == "crossover":
        other = list(parents[1])
        g = (g[: rng.randint(0, len(g))] + other[rng.randint(0, len(other)):])[:MAX_LEN] or [1]
    else:  # adjust, or a fallback when the operator has no valid move
        i = rng.randrange(len(g))
        g[i] = rng.randint(1, 9)
    return tuple(g)


def toy_init(rng: random.Random):
    return tuple(rng.randint(1, 9) for _ in range(rng.randint(1, 4)))


def toy_features(genome) -> dict[str, float]:
    return {"length": float(len(genome)), "total": float(sum(genome)), "first": float(genome[0]),
            "params": float(sum(genome))}


TOY = Variation(vary=toy_vary, random_init=toy_init, features=toy_features)


def complete_sections(partial: dict[str, dict]) -> dict[str, dict]:
    """A whole run configuration as `make_strategy` receives it: the defaults of the config model with
    `partial`'s tables laid over them, key by key."""
    from nascli.config import RunConfig

    sections = RunConfig().model_dump(mode="json")
    for table, values in partial.items():
        sections[table] = {**sections.get(table, {}), **values}
    return sections


def toy_accuracy(genome) -> float:
    # Smooth part rewards long genomes of large values; a small hash ripple breaks ties.
    ripple = int(hashlib.sha256(repr(genome).encode()).hexdigest()[:4], 16) / 65536
    return round(min(0.99, 0.1 + 0.02 * sum(genome) + 0.05 * ripple), 6)


def evaluate(proposal: Proposal, *, fail_if: Callable[[tuple], bool] = lambda g: 7 in g[:1],
             test_offset: float = 0.0) -> Outcome:
    genome = proposal.genome
    if fail_if(genome):
        return Outcome(proposal.key, "failed", {})
    acc = toy_accuracy(genome)
    return Outcome(proposal.key, "done", {"val_accuracy": acc, "val_loss": 1.0 - acc, "params": sum(genome),
                                          "flops": 2 * sum(genome) * len(genome), "latency_ms": len(genome) * 0.5,
                                          "test_accuracy": round(acc - 0.01 + test_offset, 6)})


class Log:
    def __init__(self) -> None:
        self.proposals: list[Proposal] = []
        self.outcomes: list[Outcome] = []
        self.issued_before: list[int] = []  # proposals issued when outcome i was consumed
        self.ask_sizes: list[int | None] = []
        self.asks: list[RecordedAsk] = []  # as the driver records them: after how many outcomes


def drive(strategy: Strategy, *, workers: int = 3, order_seed: int | None = 0, log: Log | None = None,
          evaluator: Callable[[Proposal], Outcome] = evaluate, follow: list | None = None,
          start_step: int = 0, max_steps: int = 100_000) -> Log:
    """Run to the end: keep up to `workers` evaluations in flight, complete them in a random
    order (`order_seed`), or in the order of keys given by `follow`."""
    log = log or Log()
    inflight = list(strategy.outstanding)
    order = random.Random(order_seed)
    step = start_step
    for _ in range(max_steps):
        if strategy.finished:
            return log
        n = max(0, workers - len(inflight)) if strategy.asynchronous else None
        new = strategy.ask(n)
        if new:
            log.asks.append(RecordedAsk(n, step, [list(p.key) for p in new]))
        log.proposals.extend(new)
        inflight.extend(new)
        assert inflight, "strategy stalled: nothing outstanding and not finished"
        if follow is not None:
            index = next(i for i, p in enumerate(inflight) if p.key == tuple(follow[step]))
        else:
            index = order.randrange(len(inflight)) if order_seed is not None else 0
        outcome = evaluator(inflight.pop(index))
        log.issued_before.append(len(log.proposals))
        strategy.tell(outcome)
        log.outcomes.append(outcome)
        step += 1
    raise AssertionError("run did not finish")


def genomes_by_key(log: Log) -> dict:
    return {p.key: (p.genome, p.parents, p.operator) for p in log.proposals}


def check_resume(make: Callable[[], Strategy], full: Strategy, log: Log, cut: int,
                 evaluator: Callable[[Proposal], Outcome] = evaluate, workers: int = 3) -> None:
    """Rebuild a strategy as `nas resume` does (nascli.driver.replay) from the first `cut` consumed
    outcomes and the asks made before the last of them, continue it, and require exactly the
    uninterrupted run's proposals and final state. Asynchronous strategies continue in the recorded
    consumption order."""
    resumed = make()
    seq = {id(outcome): index + 1 for index, outcome in enumerate(log.outcomes)}
    replay(resumed, [ask for ask in log.asks if ask.after_seq < cut], log.outcomes[:cut],
           seq_of=lambda outcome: seq[id(outcome)], tell=resumed.tell)
    original = {p.key: p for p in log.proposals}
    in_flight = list(resumed.outstanding)
    for proposal in in_flight:
        assert original[proposal.key] == proposal
    follow = [o.key for o in log.outcomes] if resumed.asynchronous else None
    rest = drive(resumed, order_seed=1000 + cut, follow=follow, start_step=cut, evaluator=evaluator,
                 workers=workers)
    for proposal in rest.proposals:
        assert original[proposal.key] == proposal
    covered = {o.key for o in log.outcomes[:cut]} | {p.key for p in in_flight} | {p.key for p in rest.proposals}
    assert covered == set(original)
    assert resumed.snapshot() == full.snapshot()
