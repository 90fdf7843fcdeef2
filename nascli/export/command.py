"""What `nas export` does with its options: pick the individual, get weights, write and check artefacts."""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nascli.errors import ExportError
from nascli.export.artefacts import ExportSpec, needs_weights, parse_formats, write_export
from nascli.export.files import prepare_file
from nascli.metrics import METRIC_COLUMNS
from nascli.safe_files import write_file
from nascli.text import printable

ALL_SCHEMA = "nascli.export-all/1"
ALL_COLUMNS = (
    "individual_id", "island", "generation", "slot", "genome", "genome_hash", "parents", "operator", "alive",
    "evaluation_id", "status", "attempt", "worker_id", "error_kind", "error_message", "train_accuracy", "train_loss",
    "val_accuracy", "val_loss", "test_accuracy", "test_loss", "params", "flops", "latency_ms", "epochs_run",
    "best_epoch", "train_seconds", "peak_memory_bytes", "started_at", "finished_at",
)
METRICS = METRIC_COLUMNS  # metrics.json lists every recorded metric


@dataclass(frozen=True)
class ExportRequest:
    run: str
    out: Path | None
    rank: int | None = None
    rank_by: str | None = None
    individual: int | None = None
    formats: str | None = None
    all_individuals: bool = False
    train_epochs: int | None = None
    force: bool = False
    db: str | None = None


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(float(seconds), UTC).isoformat()


def run_export(request: ExportRequest) -> None:
    from nascli import console as output
    from nascli.config import resolve_db_url
    from nascli.store.reports import open_read_only

    if request.all_individuals:
        if request.rank is not None or request.individual is not None or request.train_epochs is not None:
            raise ExportError("--all exports every individual as a table",
                              hint="drop --rank/--individual/--train-epochs, or drop --all")
        table_format = (request.formats or "").strip().lower()
        if table_format not in ("csv", "json"):
            raise ExportError(f"--all writes csv or json, not {request.formats!r}" if request.formats else
                              "--all needs --format csv or --format json", hint="e.g. --all --format csv --out run.csv")
        # `--out -`: the table goes to stdout, for a pipe
        out = None if to_stdout(request.out) else prepare_file(request.out, force=request.force,
                                                                suffix="." + table_format)
    else:
        if to_stdout(request.out):
            raise ExportError("--out - writes a table to stdout; a network is exported as files",
                              hint="give a directory (--out best/), or use --all --format csv --out -")
        if request.rank is not None and request.individual is not None:
            raise ExportError("--rank and --individual both given", hint="pick the network one way")
        formats = parse_formats(request.formats)
    with open_read_only(resolve_db_url(request.db)) as queries:
        run = queries.run(request.run)
        if request.all_individuals:
            count = write_all(queries, run, out, table_format, force=request.force)
            # announced on stderr when the table itself is on stdout
            (output.console() if out else output.error_console()).print(
                printable(f"wrote {out or 'stdout'}: {count} individuals of run {run.id}"), markup=False,
                highlight=False)
            return
        spec, evaluation = export_spec(queries, run, rank=request.rank, individual=request.individual,
                                       rank_by=request.rank_by)
        # the weights repository (train.transfer / train.store_weights): a cached copy's are its source's
        stored_id = int(evaluation["extra"].get("cached_from", spec.identity["evaluation_id"]))
        stored = queries.store.weights(stored_id) if needs_weights(formats) else None
    weights_needed = needs_weights(formats)
    from nascli.export.weights import obtain_weights

    weights = obtain_weights(genome=spec.genome, task=spec.task, train=spec.training, seed=evaluation["seed"],
                             extra=evaluation["extra"], run_id=run.id, evaluation_id=spec.identity["evaluation_id"],
                             train_epochs=request.train_epochs, needed=weights_needed,
                             stored=(stored_id, stored) if stored is not None else None)
    spec.weights_source = weights.source
    spec.normalisation = weights.normalisation
    document = write_export(spec, weights.state_dict, request.out, formats, force=request.force)
    assert request.out is not None  # write_export refuses a missing --out
    _print_summary(output.console(), Path(request.out), document)


def export_spec(queries, run, *, rank: int | None, individual: int | None,
                rank_by: str | None = None) -> tuple[ExportSpec, dict[str, Any]]:
    """The chosen individual with its finished evaluation, lineage and training configuration.
    `rank` counts distinct genomes ranked by the run's fitness rule (or `rank_by`), as `nas report` does."""
    from nascli.metrics import Ranking
    from nascli.store.reports import fitness_of

    config = run.config or {}
    ranking = Ranking.of_config(config, rank_by)
    primary = ranking.primary
    if individual is not None:
        row = queries.individual(run.id, individual)
        if row is None:
            raise ExportError(f"run {run.id} has no individual {individual}",
                              hint=f"see the ids with `nas report {run.id} --section top`")
        if row.get("status") != "done":
            state = row.get("status") or "not queued"
            raise ExportError(f"individual {individual} has no finished evaluation ({state})",
                              hint=f"export a finished one: `nas report {run.id} --section top`")
        chosen_rank = None
    else:
        chosen_rank = rank or 1
        rows = queries.ranked(run.id, ranking, 1, chosen_rank - 1)
        if not rows:
            done = queries.status_counts(run.id).get(run.id, {}).get("done", 0)
            if not done:
                raise ExportError(f"run {run.id} has no finished evaluation yet",
                                  hint="wait for the workers, or check `nas report` for failures")
            raise ExportError(f"run {run.id} has no rank {chosen_rank}: fewer distinct genomes finished",
                              hint=f"see the ranks with `nas report {run.id} --section top`")
        row = queries.individual(run.id, rows[0]["individual_id"])
    task_json = json.loads(row.get("task_json") or "{}")
    task = task_json.get("task") or config.get("task") or {}
    train = task_json.get("train") or config.get("train") or {}
    metrics = {name: row.get(name) for name in METRICS}
    metrics["fitness"] = fitness_of(primary, row)
    metrics["fitness_primary"] = primary
    identity = {
        "run_id": run.id, "run_name": run.name, "strategy": run.strategy, "preset": run.preset,
        "individual_id": row["individual_id"], "evaluation_id": row["evaluation_id"], "rank": chosen_rank,
        "island": row["island"], "generation": row["generation"], "operator": row["operator"],
        "worker_id": row.get("worker_id"), "finished_at": _iso(row.get("finished_at")),
    }
    spec = ExportSpec(genome=row["genome"], training=train, task=task, metrics=metrics, identity=identity,
                      lineage=lineage(queries, run.id, row["individual_id"]), config=config)
    evaluation = {"seed": int(task_json.get("seed", run.seed) or 0), "extra": json.loads(row.get("extra_json") or "{}")}
    return spec, evaluation


def lineage(queries, run_id: str, individual_id: int) -> list[dict[str, Any]]:
    """The individual, its first parent, that one's first parent, ... back to the initial population."""
    parent_of = {ident: parent for ident, parent, *_ in queries.lineage_links(run_id)}
    chain: list[int] = []
    seen: set[int] = set()
    node: int | None = individual_id
    while node is not None and node in parent_of and node not in seen:
        chain.append(node)
        seen.add(node)
        node = parent_of[node]
    rows = queries.ancestors(chain)
    return [{
        "individual_id": ident, "island": rows[ident]["island"], "generation": rows[ident]["generation"],
        "operator": rows[ident]["operator"], "parents": json.loads(rows[ident]["parents_json"] or "[]"),
        "genome": rows[ident]["genome"], "evaluation_id": rows[ident]["evaluation_id"],
        "val_accuracy": rows[ident]["val_accuracy"], "params": rows[ident]["params"],
    } for ident in chain if ident in rows]


def to_stdout(out: Path | str | None) -> bool:
    return out is not None and str(out) == "-"


def write_all(queries, run, out: Path | None, table_format: str, *, force: bool = False) -> int:
    """Every individual and evaluation of the run as one CSV or JSON document, to `out` (None: stdout)."""
    rows = []
    for row in queries.all_rows(run.id):
        record = {column: row.get(column) for column in ALL_COLUMNS}
        record["parents"] = json.loads(row.get("parents_json") or "[]")
        record["alive"] = bool(row["alive"]) if row.get("alive") is not None else None
        record["started_at"], record["finished_at"] = _iso(row.get("started_at")), _iso(row.get("finished_at"))
        rows.append(record)
    if table_format == "json":
        document = {"schema": ALL_SCHEMA, "run": {
            "run_id": run.id, "name": run.name, "strategy": run.strategy, "preset": run.preset, "seed": run.seed,
            "status": run.status, "created_at": _iso(run.created_at), "finished_at": _iso(run.finished_at),
            "config": run.config}, "columns": list(ALL_COLUMNS), "rows": rows}
        text = json.dumps(document, indent=1, allow_nan=False, default=str) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(ALL_COLUMNS)
        for record in rows:
            writer.writerow(["" if record[c] is None else
                             json.dumps(record[c]) if isinstance(record[c], list) else
                             ("true" if record[c] else "false") if isinstance(record[c], bool) else
                             repr(record[c]) if isinstance(record[c], float) else str(record[c])
                             for c in ALL_COLUMNS])
        text = buffer.getvalue()
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_file(out, text, force=force)
    return len(rows)


def _print_summary(console, out: Path, document: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    title = f"Exported individual {document['individual_id']} of run {document['run_id']} to {out}"
    table = Table(title=escape(printable(title)),
                  title_justify="left", header_style="bold")
    table.add_column("file")
    table.add_column("bytes", justify="right")
    table.add_column("sha256")
    for name, info in document["files"].items():
        table.add_row(name, f"{info['bytes']:,}", info["sha256"][:16] + "…")
    table.add_row("metrics.json", "", "")
    console.print(table)
    parity = document["parity"]
    worst = max(parity["max_abs_diff"].values(), default=0.0)
    console.print(f"parity check passed: {', '.join(parity['max_abs_diff']) or 'nothing to compare'} "
                  f"(max |diff| {worst:.2e} <= tolerance {parity['tolerance']:.2e})", markup=False, highlight=False)
