"""What a progress view shows while a run is driven, and the view interface commands implement."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nascli.store import RunInfo


@dataclass
class Progress:
    """What a progress view shows; refreshed by the driver after every step."""

    run: RunInfo
    snapshot: dict[str, Any]
    queue: dict[str, int]
    evaluations_done: int
    cache_hits: int
    workers_alive: int
    started: float
    finished: bool = False
    best: dict[str, Any] | None = None  # the run's best result so far, ranked as `nas report` ranks
    status: str = "running"  # the run's status once driving ends: finished | failed | cancelled
    failure_kinds: dict[str, int] = field(default_factory=dict)  # error kind -> evaluations, at the end
    budget: int | None = None  # evaluations the strategy plans (None: open-ended)
    cache_sources: list[str] = field(default_factory=list)  # other runs whose results this one reused
    # resume: evaluations a dead driver's workers still hold, (id, seconds their lease runs); [] once done
    waiting_on: list[tuple[int, float]] = field(default_factory=list)
    initial_walks: str | None = None  # ga.init_proxy: how far the initial walks are, while they run
    stop_reason: str | None = None  # the run-level rule that ended the run (nascli.run_stop), if one did


class View:
    """What `run`/`resume` show while driving (commands/progress.py renders it with rich)."""

    def note(self, line: str) -> None: ...
    def started(self, run: RunInfo, resumed: bool) -> None: ...
    def update(self, progress: Progress) -> None: ...
    def close(self) -> None: ...
