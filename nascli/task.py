"""The self-contained unit of work a worker evaluates, and what it reports back.

Pure data (no torch, no SQL): the store serialises a Task into an evaluation row and a Result
back into metric columns; `nascli.train.evaluate.evaluate(task) -> Result` is the one call a
worker makes.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

# Typed failure kinds (docs/design.md, "The queue: claim, lease, fencing"). A failed individual gets no fitness.
FAILURE_KINDS = ("oom", "invalid_genome", "too_large", "nan_loss", "crash", "timeout")


@dataclass(frozen=True)
class Task:
    """Everything needed to evaluate one genome, on any host.

    `task`, `train` and `search_space` are the resolved `[task]`, `[train]` and `[search_space]`
    config sections as plain dicts (JSON-able), so a worker needs nothing but this row.
    """

    genome: str
    task: dict[str, Any]
    train: dict[str, Any]
    search_space: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    evaluation_id: int | None = None
    run_id: str | None = None
    attempt: int = 0

    @property
    def kind(self) -> str:
        return str(self.task.get("kind", "classification"))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Task:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Result:
    """The outcome of one evaluation. `status` is 'done' or 'failed'.

    Metric fields are None when not measured (e.g. a failed evaluation, or `latency_ms` when the
    run does not ask for it). `fitness` is never stored here: fitness is the strategy's business.
    """

    status: str
    val_accuracy: float | None = None
    val_loss: float | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    train_accuracy: float | None = None
    train_loss: float | None = None
    params: int | None = None
    flops: int | None = None
    epochs_run: int | None = None
    best_epoch: int | None = None
    train_seconds: float | None = None
    latency_ms: float | None = None
    peak_memory_bytes: int | None = None
    error_kind: str | None = None
    error_message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # The trained weights for the repository (torch.save bytes; nascli.store.weights), not a metric.
    weights: bytes | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.status not in ("done", "failed"):
            raise ValueError(f"Result.status must be 'done' or 'failed', not {self.status!r}")
        if self.status == "failed" and self.error_kind not in FAILURE_KINDS:
            raise ValueError(f"failed Result needs error_kind in {FAILURE_KINDS}")

    @classmethod
    def failure(cls, kind: str, message: str, **metrics: Any) -> Result:
        return cls(status="failed", error_kind=kind, error_message=message[:2000], **metrics)

    def metrics(self) -> dict[str, Any]:
        """The metric fields only (what the store writes into columns)."""
        skip = {"status", "error_kind", "error_message", "extra", "weights"}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}
