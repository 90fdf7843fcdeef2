"""Weight transfer, the driver's side (`train.transfer`): which stored model each queued child
inherits from, and which stored weights can still be a donor. Stdlib only (no torch, no SQL).

The driver folds finished evaluations (`tell`) and, for each child it queues, names a donor in the
task (`train.transfer_donor`, an evaluation id whose weights are in the repository): with `parent`
the first parent's, with `repository` the stored model of a living member of the child's island whose
genome shares the longest common prefix of layers with the child's (seed 004's rule; ties: the
better validation accuracy, then a fixed order of the genomes' text). Both depend on the child's
island's population only, not on when other results arrived, so `nas resume` sends the same donors
as an uninterrupted run. Kept: the living population members, the run's best
`train.repository_top_k`, outcomes a generation still waits on and the donors of children in
flight; the driver evicts every other stored weight it has folded (`evictable`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

TRANSFER_MODES = ("off", "parent", "repository")
# The task.train key that names the donor evaluation to the worker (not a config setting).
TRANSFER_DONOR_KEY = "transfer_donor"
# Layer separators of layer genomes (':') and module genomes (',').
_LAYER_SPLIT = re.compile(r"[:,]")


def genome_layers(genome: str) -> list[str]:
    return _LAYER_SPLIT.split(genome)


def common_prefix(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common prefix of two layer sequences."""
    count = 0
    for x, y in zip(a, b):
        if x != y:
            break
        count += 1
    return count


@dataclass(frozen=True)
class Donor:
    """A folded evaluation whose weights were stored."""

    evaluation_id: int  # where its weights are (the evaluation that trained, for a cached copy)
    layers: tuple[str, ...]
    val_accuracy: float


def best_match(layers: Sequence[str], donors: Iterable[Donor]) -> Donor | None:
    """The donor with the longest common layer prefix (at least one layer), then the best validation
    accuracy, then a fixed order of the genomes' text (not the evaluation id: after a crash the same
    model may be stored under another evaluation)."""
    ranked = [(common_prefix(layers, d.layers), d.val_accuracy, _reversed_text(d.layers), d) for d in donors]
    ranked = [entry for entry in ranked if entry[0] > 0]
    return max(ranked, key=lambda entry: entry[:3])[3] if ranked else None


def _reversed_text(layers: Sequence[str]) -> tuple[int, ...]:
    """A tie-break key that depends on the genome alone."""
    return tuple(-ord(char) for char in ":".join(layers))


def top_k(donors: Iterable[Donor], k: int) -> list[Donor]:
    return sorted(donors, key=lambda d: (-d.val_accuracy, d.layers, d.evaluation_id))[:k]


class Donors:
    """The driver's fold of the repository and its donor choice per queued child."""

    def __init__(self, train: Any, strategy: Any) -> None:
        self.mode, self.top_k = train.transfer, train.repository_top_k
        self.stores = train.transfer != "off" or train.store_weights
        self.strategy = strategy  # living() names the population members that stay donors
        self.by_key: dict[Any, Donor] = {}
        self.in_flight: dict[Any, int] = {}  # child key -> its donor's evaluation id
        self.evicted: set[int] = set()

    def tell(self, key: Any, finished: Any) -> None:
        self.in_flight.pop(key, None)
        result = finished.result
        if not self.stores or result.status != "done" or not result.extra.get("weights_bytes"):
            return
        source = result.extra.get("cached_from", finished.evaluation_id)
        self.by_key[key] = Donor(int(source), tuple(genome_layers(finished.genome)), result.val_accuracy or 0.0)

    def _living(self) -> set[Any]:
        """Population members, and outcomes still waiting for their generation (they may enter)."""
        return {key for _, _, keys in self.strategy.living() for key in keys} | set(self.strategy.undecided())

    def candidates(self, island: Any) -> list[Donor]:
        """The donors a child of `island` may get: the living members of that island's population.
        Not the whole repository: which other islands' results are folded when an island asks
        depends on timing, an island's own population does not (so an uninterrupted and a resumed
        run choose alike)."""
        members = {key for where, _, keys in self.strategy.living() if where == island for key in keys}
        chosen = {d.evaluation_id: d for key, d in self.by_key.items() if key in members}
        return sorted(chosen.values(), key=lambda d: d.evaluation_id)

    def kept(self) -> list[Donor]:
        """Donors whose weights stay: living (or undecided) members, the run's best K (for export
        too) and the donors of children still in flight."""
        living, in_flight = self._living(), set(self.in_flight.values())
        kept = {d.evaluation_id: d for key, d in self.by_key.items() if key in living}
        kept.update((d.evaluation_id, d) for d in top_k(self.by_key.values(), self.top_k))
        kept.update((d.evaluation_id, d) for d in self.by_key.values() if d.evaluation_id in in_flight)
        return sorted(kept.values(), key=lambda d: d.evaluation_id)

    def evictable(self) -> list[int]:
        """Folded weights no longer kept and not evicted yet (the driver marks them in `evicted`
        once its step has committed)."""
        if not self.stores:
            return []
        kept = {d.evaluation_id for d in self.kept()}
        return sorted({d.evaluation_id for d in self.by_key.values()} - kept - self.evicted)

    def choose(self, genome: str, island: Any, parents: Sequence[Any]) -> Donor | None:
        if self.mode == "parent":
            return self.by_key.get(parents[0]) if parents else None
        if self.mode == "repository":
            return best_match(genome_layers(genome), self.candidates(island))
        return None

    def attach(self, task: Any, key: Any, parents: Sequence[Any]) -> Any:
        """`task` with its donor in task.train (unchanged when it gets none); `key` is the child's
        strategy key, (island, generation, slot)."""
        donor = self.choose(task.genome, key[0], parents)
        if donor is None:
            return task
        self.in_flight[key] = donor.evaluation_id
        return dataclasses.replace(task, train={**task.train, TRANSFER_DONOR_KEY: donor.evaluation_id})


__all__ = ["Donor", "Donors", "TRANSFER_DONOR_KEY", "TRANSFER_MODES", "best_match", "common_prefix", "genome_layers",
           "top_k"]
