"""The live status line a worker shows on a terminal: current task, epoch, tasks done and failed."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from nascli.task import Result, Task
from nascli.worker import Reporter, WorkerStats, _short


class LiveReporter(Reporter):
    """One line, redrawn in place (log lines from the worker print above it)."""

    def __init__(self, worker_id: str, console: Console) -> None:
        super().__init__(worker_id)
        self._live = Live(Text(f"{worker_id}: starting"), console=console, refresh_per_second=4, transient=True)
        self._live.start()
        self._task: Task | None = None
        self._epoch = ""
        self._stats = WorkerStats()
        self._since = time.monotonic()

    def _draw(self, state: str) -> None:
        line = Text.assemble((self.worker_id, "bold"), " ", state, "  ",
                             (f"done {self._stats.done}", "green"), "  ",
                             (f"failed {self._stats.failed}", "red" if self._stats.failed else "dim"))
        self._live.update(line)

    def claimed(self, task: Task, attempt: int) -> None:
        self._task, self._epoch, self._since = task, "", time.monotonic()
        self._draw(f"evaluation {task.evaluation_id} (attempt {attempt}) {_short(task.genome, 40)}")

    def epoch(self, task: Task, epoch: int, metrics: Mapping[str, Any]) -> None:
        accuracy = metrics.get("val_accuracy")
        shown = f" val {accuracy:.3f}" if isinstance(accuracy, float) else ""
        self._draw(f"evaluation {task.evaluation_id} epoch {epoch}{shown} "
                   f"({time.monotonic() - self._since:.0f} s)")

    def finished(self, task: Task, result: Result, written: bool, stats: WorkerStats) -> None:
        self._stats = stats
        super().finished(task, result, written, stats)
        self._draw("waiting for work")

    def idle(self, stats: WorkerStats) -> None:
        self._stats = stats
        self._draw("waiting for work")

    def close(self) -> None:
        self._live.stop()


__all__ = ["LiveReporter"]
