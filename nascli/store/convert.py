"""Rows -> the frozen records callers get, and Results -> column values."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, cast

from nascli.errors import StoreError
from nascli.store.models import INTEGER_RESULT_COLUMNS, RESULT_COLUMNS
from nascli.store.records import EvaluationInfo, FinishedEvaluation, IndividualInfo, RunInfo
from nascli.task import Result, Task
from nascli.transfer import TRANSFER_DONOR_KEY


def run_info(row: Any) -> RunInfo:
    try:
        config = json.loads(row.config_json)
    except (TypeError, ValueError):
        config = None
    if not isinstance(config, dict):
        raise StoreError(f"run {row.id}: its stored configuration is not a JSON object",
                         hint="the run row was edited; restore it from a backup or start a new run")
    return RunInfo(
        id=row.id, name=row.name, strategy=row.strategy, preset=row.preset, seed=row.seed,
        config=config, status=row.status, created_at=row.created_at,
        updated_at=row.updated_at, finished_at=row.finished_at, driver_owner=row.driver_owner,
        driver_lease_expires_at=row.driver_lease_expires_at,
    )


def individual_info(row: Any) -> IndividualInfo:
    return IndividualInfo(
        id=row.id, run_id=row.run_id, island=row.island, generation=row.generation, slot=row.slot,
        genome=row.genome, genome_hash=row.genome_hash, parents=tuple(json.loads(row.parents_json)),
        operator=row.operator, age=row.age, alive=bool(row.alive), replaced_generation=row.replaced_generation,
        created_at=row.created_at,
    )


def result_values(result: Result) -> dict[str, Any]:
    """Column values for a Result (metrics, error, extra)."""
    values: dict[str, Any] = {name: getattr(result, name) for name in RESULT_COLUMNS}
    for name in INTEGER_RESULT_COLUMNS:
        if values[name] is not None:
            values[name] = int(values[name])
    values["error_kind"] = result.error_kind
    values["error_message"] = result.error_message
    values["extra_json"] = json.dumps(result.extra or {}, sort_keys=True, default=str)
    return values


def row_result(row: Any) -> Result | None:
    """The Result recorded on an evaluation row, or None while it is not finished."""
    if row.status not in ("done", "failed"):
        return None
    metrics = {name: getattr(row, name) for name in RESULT_COLUMNS}
    for name in INTEGER_RESULT_COLUMNS:
        if metrics[name] is not None:
            metrics[name] = int(metrics[name])
    return Result(status=row.status, error_kind=row.error_kind, error_message=row.error_message,
                  extra=json.loads(row.extra_json or "{}"), **metrics)


def finished_evaluation(row: Any) -> FinishedEvaluation:
    return FinishedEvaluation(
        seq=row.seq, evaluation_id=row.id, run_id=row.run_id, individual_id=row.individual_id, genome=row.genome,
        genome_hash=row.genome_hash, config_hash=row.config_hash, status=row.status,
        result=cast(Result, row_result(row)),  # a finished row (done or failed) always has one
        attempt=row.attempt, worker_id=row.worker_id, started_at=row.started_at, finished_at=row.finished_at,
    )


def evaluation_info(row: Any) -> EvaluationInfo:
    return EvaluationInfo(
        id=row.id, run_id=row.run_id, individual_id=row.individual_id, status=row.status, priority=row.priority,
        attempt=row.attempt, failures=row.failures, lease_expiries=row.lease_expiries, releases=row.releases,
        worker_id=row.worker_id, genome=row.genome, genome_hash=row.genome_hash, config_hash=row.config_hash,
        seq=row.seq, claimed_at=row.claimed_at, heartbeat_at=row.heartbeat_at, lease_expires_at=row.lease_expires_at,
        started_at=row.started_at, finished_at=row.finished_at, result=row_result(row), created_at=row.created_at,
        transfer_donor=json.loads(row.task_json).get("train", {}).get(TRANSFER_DONOR_KEY),
    )


def claimed_task(task_json: str, evaluation_id: int, run_id: str, attempt: int) -> Task:
    task = Task.from_json(task_json)
    return dataclasses.replace(task, evaluation_id=evaluation_id, run_id=run_id, attempt=attempt)
