"""The replay: a strategy's state as a fold over what a run recorded (`nas resume`).

Two things are recorded, in order:
- every `ask` as an event `{"n", "after_seq", "keys"}`: how many children were asked for, after
  consuming which results (a finished evaluation's completion `seq`), and the keys that came back;
- every finished evaluation, with its per-run completion `seq` (the store assigns it, cached
  results included).
A fresh strategy replays them: before each recorded ask it is told the results up to that ask's
`after_seq`, in seq order, then asked again. Strategies are deterministic, so the replayed asks
return exactly the recorded keys (checked), and the live loop carries on from the same state an
uninterrupted driver would have had. The live loop keeps the same discipline: it consumes results
strictly in seq order and records `after_seq` with every ask.

Pure: no store, no clock; the driver hands in the recorded asks and results.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from nascli.ga.strategies import ReplayError, Strategy

Result = TypeVar("Result")


@dataclass(frozen=True)
class RecordedAsk:
    """One `ask` as the run recorded it."""

    n: int | None  # how many children were asked for (None: whatever was ready)
    after_seq: int  # the completion seq of the last result told before it
    keys: list[list[int]]  # the keys the strategy returned

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> RecordedAsk:
        return cls(n=payload["n"], after_seq=payload["after_seq"], keys=payload["keys"])

    def payload(self) -> dict[str, Any]:
        """The event the driver records (kind `ask`), read back by `of`."""
        return {"n": self.n, "after_seq": self.after_seq, "keys": self.keys}


def distinct_asks(payloads: Iterable[Mapping[str, Any]]) -> list[RecordedAsk]:
    """The recorded asks, each once. A retried write whose first commit had landed records an ask
    twice: a strategy never issues the same keys twice, so an identical ask is the same ask."""
    asks: list[RecordedAsk] = []
    previous = None
    for payload in payloads:
        if payload == previous:
            continue
        previous = payload
        asks.append(RecordedAsk.of(payload))
    return asks


def replay(strategy: Strategy, asks: Iterable[RecordedAsk], results: Sequence[Result], *,
           seq_of: Callable[[Result], int], tell: Callable[[Result], None], run: str = "the run") -> None:
    """Fold `results` (in seq order) and re-ask every recorded ask into a fresh `strategy`; `tell`
    hands one result to it. ReplayError when an ask returns other keys than recorded."""
    position = 0
    for ask in asks:
        while position < len(results) and seq_of(results[position]) <= ask.after_seq:
            tell(results[position])
            position += 1
        keys = [list(proposal.key) for proposal in strategy.ask(ask.n)]
        if keys != ask.keys:
            raise ReplayError(f"{run}: replayed ask after seq {ask.after_seq} gave {keys[:3]}..., "
                              f"the log says {ask.keys[:3]}...")
    for result in results[position:]:
        tell(result)
