"""The issue plan: what a driver step writes for each new child, decided before anything is written.

A child gets one action: its result from the genotype cache, a wait for an identical genome
already in flight (nothing trains twice), a queued evaluation, or (on resume) the evaluation a
crashed driver had already written for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nascli.ga.strategies import Proposal
from nascli.stop_rule import StopCurves
from nascli.store import EvaluationInfo, FinishedEvaluation, NewIndividual


@dataclass(frozen=True)
class FromCache:
    """A finished evaluation of the same genome and training configuration answers the child."""

    result: FinishedEvaluation


@dataclass(frozen=True)
class WaitForTwin:
    """An identical genome is in flight: its result answers this child too."""


@dataclass(frozen=True)
class Enqueue:
    """The child trains: a pending evaluation is queued for it."""


@dataclass(frozen=True)
class AlreadyIssued:
    """The child has an evaluation from before a crash (resume); `results()` delivers it."""


IssueAction = FromCache | WaitForTwin | Enqueue | AlreadyIssued
WAIT_FOR_TWIN = WaitForTwin()
ENQUEUE = Enqueue()
ALREADY_ISSUED = AlreadyIssued()


@dataclass
class IssuePlan:
    """The children of one step: `actions[i]` is what `rows[i]` (made from `proposals[i]`) gets;
    `existing` maps individual id -> its evaluation from before a crash (resume)."""

    proposals: list[Proposal]
    rows: list[NewIndividual]
    actions: list[IssueAction] = field(default_factory=list)
    existing: dict[int, EvaluationInfo] = field(default_factory=dict)


def choose_action(row: NewIndividual, cached: dict[str, FinishedEvaluation], queued: set[str], *,
                  cache_scope: str, stop_curves: StopCurves, in_flight: dict[str, int]) -> IssueAction:
    """The action for one new child. `queued`: genomes queued by this plan so far (or found queued
    after a crash); a queued genome is added to it. `in_flight`: genomes queued by earlier steps."""
    # With a stop rule a result depends on the comparison curve too: a finished duplicate is
    # reused only when its recorded stop decision is this child's, and nothing waits for one in
    # flight (whichever finished first would decide), so timing never changes an outcome.
    if row.genome_hash in cached and stop_curves.reusable(cached[row.genome_hash].result, row.island):
        return FromCache(cached[row.genome_hash])
    if cache_scope == "off":
        return ENQUEUE  # every child trains, identical genomes too
    if stop_curves.rule == "off" and (row.genome_hash in in_flight or row.genome_hash in queued):
        return WAIT_FOR_TWIN
    queued.add(row.genome_hash)
    return ENQUEUE
