"""The `transfers` section of `nas report`: who gave weights to whom (train.transfer), how much of the
children was reused, what the stop rule saved, and what the weights repository holds now."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from nascli.report.render import SectionView
from nascli.stop_rule import started_from_transfer
from nascli.store.tables import E

TOP_DONORS = 10
DONOR_COLUMNS = ["donor_evaluation_id", "children", "layers_transferred", "layers_total", "params_transferred",
                 "donor_val_accuracy", "donor_genome"]


def trained_rows(connection, run_id: str) -> list[dict[str, Any]]:
    """Finished, trained (not cached) evaluations of the run with their extras and the epochs they had."""
    statement = (sa.select(E.c.id, E.c.train_seconds, E.c.epochs_run, E.c.val_accuracy, E.c.genome, E.c.extra_json,
                           E.c.task_json)
                 .where(E.c.run_id == run_id, E.c.status == "done").order_by(E.c.id))
    rows = []
    for row in connection.execute(statement):
        extra = json.loads(row.extra_json or "{}")
        if "cached_from" in extra:
            continue
        train = json.loads(row.task_json or "{}").get("train") or {}
        rows.append({"id": row.id, "train_seconds": row.train_seconds, "epochs_run": row.epochs_run,
                     "val_accuracy": row.val_accuracy, "genome": row.genome, "extra": extra, "train": train})
    return rows


def stop_rule_saving_seconds(row: Mapping[str, Any]) -> float:
    """Training seconds a stopped child did not spend: its remaining epochs at its own seconds per
    epoch (an upper bound: patience might have ended it a little earlier)."""
    stopped, seconds = row["extra"].get("stopped_at_epoch"), row["train_seconds"]
    if stopped is None or not seconds or not row["epochs_run"]:
        return 0.0
    train = row["train"]
    planned = (train.get("transfer_epochs") if started_from_transfer(row["extra"])
               else None) or train.get("epochs") or row["epochs_run"]
    return max(0, int(planned) - int(row["epochs_run"])) * float(seconds) / int(row["epochs_run"])


def transfers_payload(rows: Sequence[Mapping[str, Any]], repository: Any) -> dict[str, Any]:
    by_id = {row["id"]: row for row in rows}
    children: Counter[int] = Counter()
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])  # donor -> layers, total layers, params
    layers = total = params = missing = reused = 0
    for row in rows:
        transfer = row["extra"].get("transfer")
        if not transfer:
            continue
        if transfer.get("missing"):
            missing += 1
            continue
        donor = int(transfer["donor"])
        children[donor] += 1
        reused += int(transfer["layers"]) > 0
        sums = totals[donor]
        sums[0] += int(transfer["layers"])
        sums[1] += int(transfer["total_layers"])
        sums[2] += int(transfer.get("params") or 0)
        layers, total, params = layers + transfer["layers"], total + transfer["total_layers"], params + (
            transfer.get("params") or 0)
    donors = []
    for donor, count in sorted(children.items(), key=lambda item: (-item[1], item[0]))[:TOP_DONORS]:
        source = by_id.get(donor, {})
        donors.append({"donor_evaluation_id": donor, "children": count, "layers_transferred": totals[donor][0],
                       "layers_total": totals[donor][1], "params_transferred": totals[donor][2],
                       "donor_val_accuracy": source.get("val_accuracy"), "donor_genome": source.get("genome")})
    stopped = [row for row in rows if row["extra"].get("stopped_at_epoch") is not None]
    return {
        "trained": len(rows), "children_with_donor": sum(children.values()), "children_with_weights": reused,
        "donor_missing": missing,
        "distinct_donors": len(children), "layers_reused_share": layers / total if total else None,
        "params_transferred": params, "stopped_early": len(stopped),
        "stop_rule_saved_hours": sum(stop_rule_saving_seconds(row) for row in stopped) / 3600,
        "training_hours": sum(row["train_seconds"] or 0.0 for row in rows) / 3600,
        "repository_models": repository.models if repository is not None else None,
        "repository_bytes": repository.bytes if repository is not None else None,
        "top_donors": donors,
    }


def transfers_section(payload: Mapping[str, Any]) -> SectionView:
    share = payload["layers_reused_share"]
    size = payload["repository_bytes"]
    missing = payload["donor_missing"]
    caption = (f"{payload['children_with_weights']} of {payload['trained']} trained evaluations started from "
               f"weights of {payload['distinct_donors']} donors; layers reused {100 * share:.1f} % "
               f"(over the {payload['children_with_donor']} children given a donor)"
               + (f"; {missing} named a donor evicted meanwhile" if missing else "") if share is not None else
               f"no child got a donor's weights ({payload['trained']} trained evaluations)")
    caption += (f"; stop rule: {payload['stopped_early']} stopped early, saving about "
                f"{payload['stop_rule_saved_hours']:.3f} of {payload['training_hours']:.3f} training hours")
    if size is not None:
        caption += f"; weights repository: {payload['repository_models']} models, {size / 1e6:.2f} MB"
    return SectionView(name="transfers", title="Transfers (top donors by children)", payload=dict(payload),
                       rows=list(payload["top_donors"]), columns=DONOR_COLUMNS, caption=caption)


def gather_transfers(queries, run) -> SectionView:
    rows = queries._read(trained_rows, run.id)
    return transfers_section(transfers_payload(rows, queries.store.repository_size(run.id)))


__all__ = ["gather_transfers", "stop_rule_saving_seconds", "transfers_payload", "transfers_section"]
