"""`nas export`: take a found network away as files that run without nascli."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nascli.commands import completion
from nascli.commands.common import RUN_HELP, DbOption, DebugOption, RankByOption, rank_by_choice

ARTEFACT_FORMATS = ("code", "state_dict", "torchscript", "onnx", "json")
TABLE_FORMATS = ("csv", "json")


def command(
    run: Annotated[str | None, typer.Argument(
        metavar="[RUN]", show_default=False, autocompletion=completion.runs,
        help=RUN_HELP + " Default: latest.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", metavar="PATH",
        help="Directory for the artefacts (with --all: the CSV/JSON file, `-` for stdout). Taken literally.")] = None,
    rank: Annotated[int | None, typer.Option(
        "--rank", "-r", min=1, metavar="K",
        help="Export the K-th best distinct genome by the run's fitness rule, as `nas report` ranks "
        "(default 1).")] = None,
    rank_by: RankByOption = None,
    individual: Annotated[int | None, typer.Option(
        "--individual", "-i", min=1, metavar="ID", help="Export this individual (its id from `nas report`).")] = None,
    formats: Annotated[str | None, typer.Option(
        "--format", "-f", metavar="LIST",
        help="Artefacts, comma-separated: code (model.py), state_dict (weights.pt), torchscript (model.ts), "
        "onnx (model.onnx, needs the `onnx` extra), json (genome.txt + metrics.json, always written). "
        "Default: code,state_dict,torchscript,json. With --all: csv or json.")] = None,
    all_individuals: Annotated[bool, typer.Option(
        "--all", help="Write every individual and evaluation of the run to one file "
        "(--format csv|json, --out FILE).")] = False,
    train_epochs: Annotated[int | None, typer.Option(
        "--train-epochs", min=1, metavar="N",
        help="No checkpoint kept? Train the network now with the run's training config for N epochs.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    db: DbOption = None,
    debug: DebugOption = False,
) -> None:
    """Write model.py, weights.pt, model.ts, model.onnx, genome.txt and metrics.json for one found network.

    A parity check runs every written form on one random batch and fails the export if any disagrees.
    Examples: `nas export latest --out best/`, `nas export RUN --rank 2 --out second/ --train-epochs 20`,
    `nas export RUN --all --format csv --out all.csv`.
    """
    from nascli.export.command import ExportRequest, run_export  # torch loads only when used

    run_export(ExportRequest(
        run=run or "latest",
        out=out,
        rank=rank,
        rank_by=rank_by_choice(rank_by),
        individual=individual,
        formats=formats,
        all_individuals=all_individuals,
        train_epochs=train_epochs,
        force=force,
        db=db,
    ))
