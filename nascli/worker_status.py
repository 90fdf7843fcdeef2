"""What workers show on a terminal: a worker's live status line (current task, epoch, tasks done
and failed), and the one table `nas worker --gpus` draws for all its children."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
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


class GpuTable:
    """One row per child of a `nascli.gpu_launcher.GpuLauncher` (one per GPU, or per --per-device
    slot): its state, restarts and the last line it logged. The launcher's own lines (restarts, a
    child left out) print above it."""

    def __init__(self, launcher: Any, console: Console | None = None) -> None:
        from nascli.console import error_console

        self.launcher = launcher
        self.console = console or error_console()
        self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)

    def _render(self) -> Table:
        table = Table(box=None, show_edge=False, pad_edge=False)
        on_gpus = self.launcher.gpus is not None
        columns = ("worker", "CUDA_VISIBLE_DEVICES", "state", "restarts", "last line") if on_gpus else (
            "worker", "state", "restarts", "last line")
        for column in columns:
            table.add_column(column, no_wrap=column != "last line", overflow="ellipsis")
        for child in self.launcher.children:
            style = "red" if child.state == "left out" else ("green" if child.state == "running" else "yellow")
            cells = [child.label, *([child.visible] if on_gpus else []), Text(child.state, style=style),
                     str(child.restarts), Text(child.last_line)]
            table.add_row(*cells)
        return table

    def refresh(self) -> None:
        self._live.update(self._render())

    def say(self, line: str) -> None:
        self._live.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def __enter__(self) -> GpuTable:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.refresh()
        self._live.stop()


__all__ = ["GpuTable", "LiveReporter"]
