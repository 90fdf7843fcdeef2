"""The live view of a driven run: a budget bar, one row per island, the queue, and a closing summary.

Numbers read as in `nas report` (accuracy in percent, parameters as 31.3k, durations as 1m 05s).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from nascli.commands import common
from nascli.report.render import human_count, human_duration, human_value

if TYPE_CHECKING:
    from nascli.driver.progress import Progress

BAR_WIDTH = 40
LINE_SECONDS = 5.0  # how often the view prints a line when stdout is no terminal (logs, CI)


def _metric(metrics: dict[str, Any], name: str) -> str:
    value = metrics.get(name)
    return "-" if value is None else human_value(name, value)


def _best_row(member: dict[str, Any] | None) -> tuple[str, str]:
    """(best validation score, its parameters): accuracy for classifiers, loss for autoencoders."""
    if not member:
        return "-", "-"
    metrics = member.get("metrics", {})
    if metrics.get("val_accuracy") is None and metrics.get("val_loss") is not None:
        return f"loss {metrics['val_loss']:.4f}", _metric(metrics, "params")
    return _metric(metrics, "val_accuracy"), _metric(metrics, "params")


def generations_planned(progress: Progress) -> int | None:
    return (progress.run.config or {}).get("ga", {}).get("generations")


def reuse_line(progress: Progress) -> str | None:
    """'84 of 112 results reused from runs r-1a2b3c, r-9f8e7d' (None when nothing was reused)."""
    if not progress.cache_hits:
        return None
    sources = progress.cache_sources
    where = (f"from run{'s' if len(sources) > 1 else ''} {', '.join(sources[:3])}{' …' if len(sources) > 3 else ''}"
             if sources else "from identical genomes of this run")
    return f"{progress.cache_hits} of {progress.evaluations_done} results reused {where}"


def worker_hint(progress: Progress) -> str:
    url = (progress.run.config or {}).get("store", {}).get("url")
    return f"nas worker --run {progress.run.id}" + (f" --db {url}" if url else "")


def waiting_for_workers(progress: Progress) -> bool:
    queue = progress.queue
    return progress.workers_alive == 0 and queue.get("running", 0) == 0 and queue.get("pending", 0) > 0


class _Clock:
    """Elapsed time and an ETA from the evaluations this view has watched finish."""

    def __init__(self) -> None:
        self.first: tuple[float, int] | None = None

    def eta(self, progress: Progress) -> float | None:
        now = time.monotonic()
        if self.first is None:
            self.first = (now, progress.evaluations_done)
        started, done_then = self.first
        done = progress.evaluations_done - done_then
        if not progress.budget or done <= 0:
            return None
        return max(0.0, (now - started) / done * (progress.budget - progress.evaluations_done))


def waiting_line(progress: Progress, shown: int = 4) -> str | None:
    """Resume: the evaluations a dead driver's workers still hold and how long their leases run."""
    if not progress.waiting_on:
        return None
    listed = ", ".join(f"{evaluation_id} ({seconds:.0f} s)" for evaluation_id, seconds in progress.waiting_on[:shown])
    more = f" and {len(progress.waiting_on) - shown} more" if len(progress.waiting_on) > shown else ""
    return f"waiting on evaluations still held by workers, with their leases' remaining time: {listed}{more}"


def render(progress: Progress, eta: float | None = None) -> Group:
    snapshot = progress.snapshot
    elapsed = max(1e-9, time.time() - progress.started)
    per_hour = progress.evaluations_done / elapsed * 3600
    queue = progress.queue
    run = progress.run
    head = Text.assemble(("run ", "dim"), (run.id, "bold cyan"), ("  ", ""),
                         (f"{snapshot.get('strategy', run.strategy)}", "bold"),
                         (f"  {run.preset}" if run.preset else "", "dim"), (f"  {run.name}" if run.name else "", ""))
    budget = progress.budget or 0
    bar = Table.grid(padding=(0, 1))
    bar.add_row(ProgressBar(total=budget or None, completed=progress.evaluations_done, width=BAR_WIDTH),
                Text(f"{progress.evaluations_done}/{budget or '?'} evaluations"),
                Text(f"{100 * progress.evaluations_done / budget:.0f} %" if budget else ""),
                Text(f"elapsed {human_duration(elapsed)}", style="dim"),
                Text(f"ETA {human_duration(eta)}" if eta is not None else "ETA -", style="dim"))
    parts: list[Any] = [head, bar, Text(
        f"{queue.get('running', 0)} running · {queue.get('pending', 0)} pending · {queue.get('failed', 0)} failed · "
        f"{progress.cache_hits} reused   workers {progress.workers_alive}   {human_count(per_hour)}/h", style="dim")]
    if waiting_for_workers(progress):
        parts.append(Text.assemble(("waiting for `nas worker` processes", "yellow"),
                                   (f" — start one in another shell: {worker_hint(progress)}", "")))
    waiting = waiting_line(progress)
    if waiting:
        parts.append(Text(waiting, style="yellow"))
    if progress.initial_walks:
        parts.append(Text(progress.initial_walks))
    islands = snapshot.get("islands")
    if islands:
        generations = generations_planned(progress)
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("island", "generation", "fitness", "best val", "params of best"):
            table.add_column(column, justify="right")
        for island in islands:
            accuracy, params = _best_row(island.get("best"))
            done = max(0, island["generation"])  # -1: the initial population is still being evaluated
            generation = f"{done}/{generations}" if generations is not None else str(done)
            table.add_row(str(island["island"]), generation, island.get("fitness_mode", "-"), accuracy, params)
        parts.append(table)  # each island's best by its own fitness (parameters once past the threshold)
    accuracy, params = _best_row(progress.best or snapshot.get("best"))
    parts.append(Text(f"best so far (as `nas report` ranks): val {accuracy}  params {params}"))
    return Group(*parts)


def closing_summary(progress: Progress, ended: float | None = None) -> list[str]:
    """What a person reads when the run ends (rich markup): how it ended (at `ended`, epoch seconds),
    the best network, what next."""
    run_id = progress.run.id
    elapsed = human_duration(max(0.0, (ended or time.time()) - progress.started))
    failed, cancelled = progress.queue.get("failed", 0), progress.queue.get("cancelled", 0)
    lines = [f"[bold]run[/] [bold cyan]{run_id}[/] [bold]{progress.status}[/] after {elapsed}: "
             f"{progress.evaluations_done} evaluations, {failed} failed"
             + (f", {cancelled} cancelled" if cancelled else "")]
    if progress.stop_reason:
        lines.append(f"stopped by {escape(progress.stop_reason)}")
    reused = reuse_line(progress)
    if reused:
        lines.append(reused)
    best = progress.best
    if best:
        metrics = best.get("metrics", {})
        lines.append(f"best network  {escape(str(best.get('genome', '-')))}")
        scores = [f"validation {_metric(metrics, 'val_accuracy')}", f"test {_metric(metrics, 'test_accuracy')}"]
        if metrics.get("val_accuracy") is None and metrics.get("val_loss") is not None:
            scores = [f"validation loss {metrics['val_loss']:.4f}", f"test loss {_metric(metrics, 'test_loss')}"]
        lines.append("  " + "   ".join(scores + [f"parameters {_metric(metrics, 'params')}"]))
    lines.append(f"next:  nas report {run_id}")
    if best:  # something to export
        lines.append(f"       nas export {run_id} --out best/")
    return lines


def failure_line(progress: Progress) -> str:
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(progress.failure_kinds.items(),
                                                                  key=lambda item: (-item[1], item[0])))
    return (f"[bold red]error:[/] every evaluation of run {progress.run.id} failed ({kinds or 'no evaluations'}) "
            f"[dim]— see the errors: nas export {progress.run.id} --all --format csv --out -[/]")


class LiveView:
    """rich Live on a terminal; a line every few seconds otherwise (logs, CI). Then a closing summary."""

    def __init__(self, console: Console | None = None, error_console: Console | None = None) -> None:
        self.console = console or common.console()
        self.error_console = error_console or common.error_console()
        self.live: Live | None = None
        self._last_line = 0.0
        self._clock = _Clock()
        self._said_waiting = False
        self.last: Progress | None = None  # the latest progress shown (the final one once the run ended)
        self._shown_at: float | None = None  # when it was shown: the run's end for the closing summary

    def note(self, line: str) -> None:
        self.console.print(line, highlight=False, markup=False)

    def started(self, run, resumed: bool) -> None:
        verb = "resuming" if resumed else "started"
        self.console.print(f"[bold]{verb} run[/] [bold cyan]{run.id}[/]", highlight=False)
        if self.console.is_terminal:
            self.live = Live(console=self.console, refresh_per_second=4, transient=False)
            self.live.start()

    def update(self, progress: Progress) -> None:
        self.last, self._shown_at = progress, time.time()
        eta = self._clock.eta(progress)
        if self.live is not None:
            self.live.update(render(progress, eta))
        elif time.monotonic() - self._last_line > LINE_SECONDS or progress.status != "running":
            self._last_line = time.monotonic()
            queue = progress.queue
            score, _ = _best_row(progress.best or progress.snapshot.get("best"))
            self.console.print(
                f"{progress.run.id}: {progress.evaluations_done}/{progress.budget or '?'} evaluations done, "
                f"{queue.get('running', 0)} running, {queue.get('pending', 0)} pending, best val {score}"
                + (f", ETA {human_duration(eta)}" if eta is not None else ""), highlight=False)
            if waiting_for_workers(progress) and not self._said_waiting:
                self._said_waiting = True
                self.console.print(f"waiting for `nas worker` processes — start one in another shell: "
                                   f"{worker_hint(progress)}", markup=False, highlight=False)
            waiting = waiting_line(progress)
            if waiting:
                self.console.print(waiting, highlight=False, soft_wrap=True)
            if progress.initial_walks:
                self.console.print(progress.initial_walks, highlight=False, soft_wrap=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        progress = self.last
        if progress is None or progress.status == "running":
            return  # interrupted or failed before the end: the caller says so
        if progress.status == "failed":
            self.error_console.print(failure_line(progress), soft_wrap=True, highlight=False)
            return
        for line in closing_summary(progress, self._shown_at):
            self.console.print(line, soft_wrap=True, highlight=False)
