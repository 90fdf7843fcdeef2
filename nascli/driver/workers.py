"""Workers as the driver sees them: how many local workers to start on which devices, and how many
workers (local or external) are alive."""

from __future__ import annotations

from dataclasses import dataclass

from nascli.config import RunConfig
from nascli.devices import visible_gpu_count
from nascli.ga.strategies import steady_parallelism
from nascli.store import Store


def live_worker_count(store: Store, window_seconds: float) -> int:
    """Workers seen in the last `window_seconds` (database clock). A training worker stays in the
    count: its heartbeat thread refreshes `last_seen_at` at every beat."""
    recent = store.db_now() - window_seconds
    return sum(1 for worker in store.workers() if worker.last_seen_at >= recent)


@dataclass(frozen=True)
class LocalWorkerPlan:
    count: int
    devices: list[str]  # handed out round-robin
    note: str | None = None  # one line for the user when the default was capped


def plan_local_workers(cfg: RunConfig, workers: int | None) -> LocalWorkerPlan:
    """`--workers N` as given; by default one worker per visible GPU (1 without a GPU, or for
    synthetic tasks), but no more than the strategy keeps busy (`steady_parallelism`): a GPU
    beyond that would sit idle."""
    gpus = 0 if cfg.task.kind == "synthetic" else visible_gpu_count()
    devices = [f"cuda:{index}" for index in range(gpus)] or ["cpu"]
    if workers is not None:
        return LocalWorkerPlan(workers, devices)
    if gpus <= 1:
        return LocalWorkerPlan(1, devices)
    busy = steady_parallelism(cfg.run.strategy, cfg.model_dump(mode="json"))
    if gpus <= busy:
        return LocalWorkerPlan(gpus, devices)
    return LocalWorkerPlan(busy, devices[:busy], (
        f"{gpus} GPUs visible, but {cfg.run.strategy} keeps at most {busy} evaluation{'s' if busy > 1 else ''} in "
        f"flight: starting {busy} local worker{'s' if busy > 1 else ''} (--workers {gpus} starts one per GPU anyway)"))
