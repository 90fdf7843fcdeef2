"""The live view of a driven run: one row per island, the queue, workers and throughput."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from nascli.runner import Progress


def _fmt(value: Any, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def _best_row(member: dict[str, Any] | None) -> tuple[str, str]:
    """(best validation score, its parameters): accuracy for classifiers, loss for autoencoders."""
    if not member:
        return "-", "-"
    metrics = member.get("metrics", {})
    if metrics.get("val_accuracy") is None and metrics.get("val_loss") is not None:
        return f"loss {metrics['val_loss']:.4f}", _fmt(metrics.get("params"), ",")
    return _fmt(metrics.get("val_accuracy")), _fmt(metrics.get("params"), ",")


def render(progress: "Progress") -> Group:
    snapshot = progress.snapshot
    elapsed = max(1e-9, time.time() - progress.started)
    per_hour = progress.evaluations_done / elapsed * 3600
    queue = progress.queue
    head = Text.assemble(
        ("run ", "dim"), (progress.run.id, "bold cyan"), ("  ", ""),
        (f"{snapshot.get('strategy', progress.run.strategy)}", "bold"),
        (f"  evaluations {progress.evaluations_done} done · {queue.get('running', 0)} running · "
         f"{queue.get('pending', 0)} pending · {queue.get('failed', 0)} failed · {progress.cache_hits} cached", ""),
        (f"  workers {progress.workers_alive}  {per_hour:,.0f}/h  {elapsed:,.0f} s", "dim"),
    )
    parts: list[Any] = [head]
    islands = snapshot.get("islands")
    if islands:
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("island", "generation", "fitness", "best val", "params of best"):
            table.add_column(column, justify="right")
        for island in islands:
            accuracy, params = _best_row(island.get("best"))
            table.add_row(str(island["island"]), str(island["generation"]), island.get("fitness_mode", "-"),
                          accuracy, params)
        parts.append(table)  # each island's best by its own fitness (parameters once past the threshold)
    accuracy, params = _best_row(progress.best or snapshot.get("best"))
    parts.append(Text(f"best so far (as `nas report` ranks): val {accuracy}  params {params}"))
    return Group(*parts)


class LiveView:
    """rich Live on a terminal; a line every few seconds otherwise (logs, CI)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self.live: Live | None = None
        self._last_line = 0.0

    def note(self, line: str) -> None:
        self.console.print(line, highlight=False, markup=False)

    def started(self, run, resumed: bool) -> None:
        verb = "resuming" if resumed else "started"
        self.console.print(f"[bold]{verb} run[/] [bold cyan]{run.id}[/]", highlight=False)
        if self.console.is_terminal:
            self.live = Live(console=self.console, refresh_per_second=4, transient=False)
            self.live.start()

    def update(self, progress: "Progress") -> None:
        if self.live is not None:
            self.live.update(render(progress))
        elif time.monotonic() - self._last_line > 5 or progress.finished:
            self._last_line = time.monotonic()
            queue = progress.queue
            score, _ = _best_row(progress.best or progress.snapshot.get("best"))
            self.console.print(
                f"{progress.run.id}: {progress.evaluations_done} evaluations done, {queue.get('running', 0)} running, "
                f"{queue.get('pending', 0)} pending, best val {score}", highlight=False)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
