"""What `nas report` does with its options: pick the sections, gather, print or watch, plot."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from nascli import console as output
from nascli.console import OutputFormat
from nascli.errors import NascliError
from nascli.report.model import ALL_SECTIONS, DEFAULT_RUN_SECTIONS
from nascli.store.records import TERMINAL_RUN_STATUSES

MULTI_OBJECTIVE = ("nsga2", "linas")


class ReportError(NascliError):
    kind = "report"


@dataclass(frozen=True)
class ReportRequest:
    runs: list[str]
    sections: list[str]
    top: int = 10
    output_format: OutputFormat | str = OutputFormat.table
    plot_dir: Path | None = None
    force: bool = False
    compare: bool = False
    watch: bool = False
    interval: float = 2.0
    db: str | None = None
    rank_by: str | None = None  # None: the run's own fitness rule
    distinct: bool = True  # top and Pareto: one row per genome (False: --all, repeats included)


def output_format_of(name: OutputFormat | str) -> OutputFormat:
    try:
        return OutputFormat(str(getattr(name, "value", name)).lower())
    except ValueError:
        raise ReportError(f"unknown format {name!r}", hint="choose from table, json, csv, markdown") from None


def validate(request: ReportRequest) -> None:
    unknown = [name for name in request.sections if name not in ALL_SECTIONS]
    if unknown:
        raise ReportError(f"unknown section {unknown[0]!r}", hint="choose from " + "|".join(ALL_SECTIONS))
    if request.compare:
        if len(request.runs) < 2:
            raise ReportError("--compare needs at least two runs", hint="nas report --compare RUN RUN [RUN...]")
        if request.watch:
            raise ReportError("--watch follows one run, --compare several", hint="use one of them")
        if request.sections:
            raise ReportError("--section does not apply to --compare", hint="drop --section")
        return
    if len(request.runs) > 1:
        raise ReportError(f"{len(request.runs)} runs given: {' '.join(request.runs)}",
                          hint="report one run, or compare several with --compare")
    if not request.runs:
        if any(name != "runs" for name in request.sections):
            raise ReportError(f"section {request.sections[0]!r} needs a run",
                              hint="nas report RUN_ID (or latest) --section ...")
        if request.watch:
            raise ReportError("--watch needs a run", hint="nas report latest --watch")
    elif "runs" in request.sections:
        raise ReportError("the runs section lists every run", hint="use `nas report --section runs` without a run id")
    if request.watch and request.output_format is not OutputFormat.table:
        raise ReportError("--watch refreshes tables in the terminal", hint="drop --format, or drop --watch for scripts")


def run_report(request: ReportRequest) -> None:
    from nascli.config import resolve_db_url
    from nascli.report import gather
    from nascli.store.reports import open_read_only

    request = dataclasses.replace(request, output_format=output_format_of(request.output_format))
    validate(request)
    with open_read_only(resolve_db_url(request.db)) as queries:
        if request.compare:
            _compare(queries, request)
            return
        if not request.runs:
            _print(gather.runs_views(queries), request.output_format, header={}, heading="Runs")
            return
        run = queries.run(request.runs[0])  # resolves `latest`; RunNotFoundError with a hint otherwise
        sections = list(request.sections) or list(DEFAULT_RUN_SECTIONS)
        if not request.sections and run.strategy in MULTI_OBJECTIVE:
            sections.append("pareto")
        if request.watch:
            _watch(queries, run.id, sections, request)
        else:
            views = gather.run_views(queries, run.id, sections, top=request.top, rank_by=request.rank_by,
                                     distinct=request.distinct)
            _print(views, request.output_format, header={"run_id": run.id}, heading=f"nas report {run.id}")
        if request.plot_dir is not None:
            written = gather.write_run_plots(queries, run.id, request.plot_dir, force=request.force)
            _say_written(written, request.output_format)


def _print(views, output_format: OutputFormat | str, *, header: dict, heading: str) -> None:
    from nascli.report import render

    render.to_console(output.console(), views, OutputFormat(output_format).value, header=header, heading=heading)


def _say_written(paths: list[Path], output_format: OutputFormat | str) -> None:
    # plots are announced on stderr so stdout stays clean JSON/CSV for scripts
    console = output.error_console() if OutputFormat(output_format) is not OutputFormat.table else output.console()
    for path in paths:
        console.print(f"wrote {path}", markup=False, highlight=False)


def _compare(queries, request: ReportRequest) -> None:
    from nascli.report import gather

    run_ids = []
    for name in request.runs:
        run_id = queries.run(name).id
        if run_id not in run_ids:
            run_ids.append(run_id)
    comparison = gather.compare(queries, run_ids)
    _print([comparison.view], request.output_format, header={"runs": run_ids}, heading="Runs compared")
    if request.plot_dir is not None:
        _say_written(gather.write_compare_plots(comparison, request.plot_dir, force=request.force),
                     request.output_format)


def _watch(queries, run_id: str, sections: list[str], request: ReportRequest) -> None:
    """Re-gather and redraw every `interval` seconds until the run reaches a final status."""
    from rich.live import Live

    from nascli.report import gather, render

    console = output.console()
    views = gather.run_views(queries, run_id, sections, top=request.top, rank_by=request.rank_by,
                                 distinct=request.distinct)
    with Live(render.to_renderable(views, console.width), console=console, auto_refresh=False, transient=False) as live:
        while True:
            status = queries.run(run_id).status
            if status in TERMINAL_RUN_STATUSES:
                break
            time.sleep(request.interval)  # Ctrl-C here ends watching: the CLI maps it to exit 130
            views = gather.run_views(queries, run_id, sections, top=request.top, rank_by=request.rank_by,
                                 distinct=request.distinct)
            live.update(render.to_renderable(views, console.width), refresh=True)
        views = gather.run_views(queries, run_id, sections, top=request.top, rank_by=request.rank_by,
                                 distinct=request.distinct)
        live.update(render.to_renderable(views, console.width), refresh=True)
