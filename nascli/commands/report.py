"""`nas report`: what a run is doing and what it found. Read-only: never writes, never takes a lease."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nascli.commands import completion
from nascli.commands.common import RUN_HELP, DbOption, DebugOption, RankByOption, rank_by_choice
from nascli.report.model import ALL_SECTIONS


def _section_names(values: list[str] | None) -> list[str]:
    """Accept `--section top --section pareto` and `--section top,pareto`."""
    names: list[str] = []
    for value in values or []:
        for name in value.split(","):
            name = name.strip().lower()
            if name and name not in names:
                names.append(name)
    return names


def command(
    runs: Annotated[list[str] | None, typer.Argument(
        metavar="[RUN]...", show_default=False, autocompletion=completion.runs,
        help=RUN_HELP + " None lists every run. Several only with --compare.")] = None,
    section: Annotated[list[str] | None, typer.Option(
        "--section", "-S", metavar="NAME", autocompletion=completion.choices(ALL_SECTIONS),
        help="Show only these parts: " + "|".join(ALL_SECTIONS) + " (repeatable or comma-separated).")] = None,
    top: Annotated[int, typer.Option("--top", "-k", min=1, metavar="K",
                                     help="How many individuals the top table shows.")] = 10,
    output_format: Annotated[str, typer.Option(
        "--format", "-f", metavar="FORMAT",
        help="table (for people), json (stable schema, docs/report.md), csv (pandas) or markdown.")] = "table",
    plot: Annotated[Path | None, typer.Option(
        "--plot", metavar="DIR", file_okay=False,
        help="Also write PNG plots (accuracy per generation, Pareto front, worker trace; with --compare: "
        "best vs evaluations) into DIR.")] = None,
    force: Annotated[bool, typer.Option("--force", help="--plot: overwrite existing PNGs.")] = False,
    compare: Annotated[bool, typer.Option(
        "--compare", help="Compare the given runs: one table, and with --plot one best-so-far plot.")] = False,
    watch: Annotated[bool, typer.Option(
        "--watch", "-w",
        help="Refresh the tables live until the run ends (Ctrl-C stops watching, not the run).")] = False,
    interval: Annotated[float, typer.Option(
        "--interval", min=0.2, metavar="SECONDS", help="--watch: seconds between refreshes.")] = 2.0,
    rank_by: RankByOption = None,
    all_rows: Annotated[bool, typer.Option(
        "--all", help="Top and Pareto list every evaluation, repeats of a genome (cache hits) included.")] = False,
    db: DbOption = None,
    debug: DebugOption = False,
) -> None:
    """Show runs, a run's progress and its best networks, as tables, JSON, CSV or Markdown; --plot writes PNGs.

    Examples: `nas report` (all runs), `nas report latest --top 5`, `nas report RUN --section top --format csv`,
    `nas report --compare RUN RUN --plot plots/`.
    """
    from nascli.report.command import ReportRequest, run_report  # the heavy parts load only when used

    run_report(ReportRequest(
        runs=list(runs or []),
        sections=_section_names(section),
        top=top,
        output_format=output_format,
        plot_dir=plot,
        force=force,
        compare=compare,
        watch=watch,
        interval=interval,
        db=db,
        rank_by=rank_by_choice(rank_by),
        distinct=not all_rows,
    ))
