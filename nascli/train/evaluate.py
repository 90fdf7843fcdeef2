"""`evaluate(task) -> Result`: the one call a worker makes.

Importing this module does not import torch: `synthetic` tasks go to `nascli.train.synthetic`
(torch-free); every other kind is trained by `nascli.train.engine`, imported on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nascli.task import Result, Task
from nascli.train.synthetic import evaluate_synthetic

ProgressCallback = Callable[[int, Mapping[str, Any]], None]
StopCheck = Callable[[], bool]


def evaluate(task: Task, *, device: str = "cpu", progress: ProgressCallback | None = None,
             should_stop: StopCheck | None = None, donor_weights: bytes | None = None) -> Result:
    """Train and measure `task.genome` on `device`.

    Never raises for a bad genome, a too-large genome, OOM, NaN loss or a crash inside training:
    those come back as `Result.failure(kind, message)`. A dataset that cannot be found, downloaded
    or read raises `DatasetError`, an absent device `DeviceError` and an accelerator failure during
    training (any non-OOM CUDA error) `DeviceFault`: those are properties of this host, not of the
    genome, so they are never turned into a failed Result (the worker gives the task back and stops). When
    `should_stop()` answers True the evaluation ends with a `crash` result marked
    `extra['cancelled'] = True`, which the caller discards. `donor_weights` are the stored weights
    of the donor the task names (`train.transfer`; None: none, or not in the repository).
    """
    if task.kind == "synthetic":
        return evaluate_synthetic(task, progress=progress, should_stop=should_stop, donor_weights=donor_weights)
    from nascli.train.engine import evaluate_trained

    return evaluate_trained(task, device=device, progress=progress, should_stop=should_stop,
                            donor_weights=donor_weights)


__all__ = ["evaluate"]
