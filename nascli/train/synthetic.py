"""The built-in `synthetic` task: a deterministic, torch-free stand-in for training.

Coordination tests and benchmarks (queue, workers, strategies) need an evaluator whose answer
depends only on the genome, costs a controlled amount of wall time and can be told to fail. The
fitness landscape is smooth in structure (depth, capacity) plus a hash-based ripple, so a GA has
something to climb and ties are rare. Imports only the standard library and the pure genome code:
a worker serving synthetic tasks must never load torch (32 of them share one small machine).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from nascli.errors import GenomeError
from nascli.ga.cost import Analysis
from nascli.ga.genome import Genome, InceptionSpec, parse_and_analyse
from nascli.ga.module_operators import autoencoder_params
from nascli.ga.modules import ModuleGenome, parse_module_genome
from nascli.stop_rule import planned_stop, started_from_transfer
from nascli.task import Result, Task
from nascli.transfer import TRANSFER_DONOR_KEY, common_prefix, genome_layers

ProgressCallback = Callable[[int, Mapping[str, Any]], None]
StopCheck = Callable[[], bool]

# should_stop is polled at least this often while "training" sleeps, so a lost claim or a SIGTERM
# stops a long synthetic task within a fraction of a second.
_STOP_POLL_SECONDS = 0.05
_DEFAULT_MAX_PARAMS = 10_000_000
_DEFAULT_EPOCHS = 100
_DEFAULT_PATIENCE = 6


def _unit_hash(text: str, salt: str) -> float:
    """A uniform number in [0, 1) fixed by (text, salt)."""
    digest = hashlib.sha256(f"{salt}\x00{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _matching(genome: str, substrings: Any) -> str | None:
    for needle in substrings or ():
        if needle and str(needle) in genome:
            return str(needle)
    return None


def synthetic_accuracies(genome: str) -> tuple[float, float]:
    """(validation, test) accuracy of a genome, both strictly inside (0, 1).

    Structure decides most of it: spatial depth helps with diminishing returns, capacity is best
    around 10^5 parameters, a little downsampling helps. A ripple of +-0.04 from the genome's
    hash breaks ties; test = validation plus a smaller independent ripple (correlated, not equal).
    Raises GenomeError for a genome that does not parse or fit its input.
    """
    return _accuracies(*parse_and_analyse(genome))


def _accuracies(parsed: Genome, analysis: Analysis) -> tuple[float, float]:
    spatial = sum(1 for layer in parsed.hidden if layer.type in ("C", "R", "I"))
    inceptions = sum(1 for layer in parsed.hidden if isinstance(layer, InceptionSpec))
    downsampling = sum(1 for layer in parsed.hidden
                       if layer.type == "P" or (not isinstance(layer, InceptionSpec) and layer.type != "D"
                                                and max(layer.stride_w, layer.stride_h) > 1))
    depth_term = 1.0 - math.exp(-spatial / 3.0)
    capacity_term = math.exp(-(((math.log10(analysis.params + 1) - 5.0) / 1.5) ** 2))
    pooling_term = 1.0 - math.exp(-downsampling / 1.5)
    base = 0.30 + 0.32 * depth_term + 0.20 * capacity_term + 0.08 * pooling_term + 0.02 * min(inceptions, 2)
    canonical = str(parsed)
    validation = base + 0.08 * (_unit_hash(canonical, "val") - 0.5)
    test = validation - 0.005 + 0.03 * (_unit_hash(canonical, "test") - 0.5)
    return _clamp(validation), _clamp(test)


def _score(task: Task) -> tuple[int, int | None, float, float]:
    """(parameters, FLOPs or None, validation accuracy, test accuracy) of the task's genome in its
    genome family (`task.genome_family`: Klos layers, or a Hajewski module as autoencoder)."""
    if task.task.get("genome_family") != "modules":
        parsed, analysis = parse_and_analyse(task.genome)
        return (analysis.params, analysis.flops, *_accuracies(parsed, analysis))
    module = parse_module_genome(task.genome)
    channels = int((task.task.get("synthetic_shape") or [1])[0])
    reductions = int(task.task.get("reduction_modules") or 0)
    params = autoencoder_params(module, channels, reductions)
    return (params, None, *_module_accuracies(module, params))


def _module_accuracies(module: ModuleGenome, params: int) -> tuple[float, float]:
    """A Hajewski module scored like a layer genome: depth and capacity help, a hash ripple breaks ties."""
    depth_term = 1.0 - math.exp(-len(module.layers) / 3.0)
    capacity_term = math.exp(-(((math.log10(params + 1) - 5.0) / 1.5) ** 2))
    canonical = str(module)
    validation = 0.35 + 0.35 * depth_term + 0.22 * capacity_term + 0.08 * (_unit_hash(canonical, "val") - 0.5)
    test = validation - 0.005 + 0.03 * (_unit_hash(canonical, "test") - 0.5)
    return _clamp(validation), _clamp(test)


def _clamp(accuracy: float) -> float:
    return round(min(0.995, max(0.005, accuracy)), 6)


def _loss(accuracy: float) -> float:
    return round(-math.log(accuracy), 6)


def _busy_wait(seconds: float) -> None:
    """Burn CPU in pure Python, as a training loop does: holds the GIL between switch intervals."""
    end = time.monotonic() + seconds
    spin = 0
    while time.monotonic() < end:
        for _ in range(2000):
            spin += 1


def _sleep(seconds: float, epochs: int, progress: ProgressCallback | None, should_stop: StopCheck | None,
           metrics: Mapping[str, Any], busy: bool = False) -> int:
    """Spend `seconds` in `epochs` equal slices; returns the epochs completed (fewer if told to stop)."""
    wait = _busy_wait if busy else time.sleep
    deadline_step = seconds / epochs if epochs else 0.0
    start = time.monotonic()
    for epoch in range(1, epochs + 1):
        epoch_end = start + deadline_step * epoch
        while True:
            if should_stop is not None and should_stop():
                return epoch - 1
            remaining = epoch_end - time.monotonic()
            if remaining <= 0:
                break
            wait(min(_STOP_POLL_SECONDS, remaining))
        if progress is not None:
            progress(epoch, metrics)
    return epochs


def evaluate_synthetic(task: Task, *, progress: ProgressCallback | None = None,
                       should_stop: StopCheck | None = None, donor_weights: bytes | None = None) -> Result:
    """Evaluate a `synthetic` task. Never raises for a bad genome or an injected failure.

    Keys read from `task.task`: `synthetic_seconds` (wall time to spend; `synthetic_busy` spends it
    burning CPU instead of sleeping, like a training loop), `synthetic_fail_genomes`
    and `synthetic_oom_genomes` (a genome containing any of these substrings fails as `crash` /
    `oom`, after the sleep so a failure costs time like a real one); `task.search_space['max_params']`
    gives `too_large`. `progress(epoch, metrics)` is called once per simulated epoch and
    `should_stop()` is polled while sleeping; when it answers True the evaluation ends early with a
    `crash` result that the caller is expected to discard (its claim is gone). With the weights
    repository on (`train.transfer`, `train.store_weights`) the "weights" of a synthetic network are
    its genome's text, and a named donor is recorded as a real transfer would be (`synthetic_transfer`);
    the metrics do not depend on it.
    """
    started = time.monotonic()
    genome = task.genome
    try:
        params, flops, validation, test = _score(task)
    except GenomeError as error:
        return Result.failure("invalid_genome", str(error), train_seconds=0.0)
    max_params = int(task.search_space.get("max_params") or _DEFAULT_MAX_PARAMS)
    if params > max_params:
        return Result.failure("too_large", f"{params} parameters exceed search_space.max_params "
                              f"{max_params}", params=params, flops=flops, train_seconds=0.0)

    epochs_limit = int(task.train.get("epochs") or _DEFAULT_EPOCHS)
    patience = int(task.train.get("patience") or _DEFAULT_PATIENCE)
    # Early stopping as a real trainer would: best epoch somewhere early, then `patience` more.
    best_epoch = min(epochs_limit, 1 + int(_unit_hash(genome, "epoch") * 20))
    epochs_run = min(epochs_limit, best_epoch + patience)
    curve = synthetic_curve(validation, best_epoch, epochs_run)
    seconds = max(0.0, float(task.task.get("synthetic_seconds") or 0.0))
    transfer = synthetic_transfer(task, donor_weights)
    stopped_at = planned_stop(task.train, curve, transferred=started_from_transfer(transfer))
    if stopped_at is not None:  # the stop rule: fewer epochs, the accuracy reached by then
        seconds *= stopped_at / epochs_run
        curve, epochs_run, best_epoch = curve[:stopped_at], stopped_at, min(best_epoch, stopped_at)
        test = _clamp(test - (validation - curve[-1]))
        validation = curve[-1]
    metrics = {"val_accuracy": validation, "val_loss": _loss(validation)}
    done_epochs = _sleep(seconds, epochs_run, progress, should_stop, metrics, bool(task.task.get("synthetic_busy")))
    elapsed = round(time.monotonic() - started, 6)
    if done_epochs < epochs_run:
        return Result.failure("crash", f"stopped after {done_epochs} of {epochs_run} epochs: the worker "
                              "asked to stop (claim lost or shutting down)", epochs_run=done_epochs,
                              train_seconds=elapsed, extra={"cancelled": True})

    oom = _matching(genome, task.task.get("synthetic_oom_genomes"))
    if oom is not None:
        return Result.failure("oom", f"synthetic out-of-memory: genome contains {oom!r} "
                              "(task.synthetic_oom_genomes)", params=params, flops=flops,
                              train_seconds=elapsed)
    crash = _matching(genome, task.task.get("synthetic_fail_genomes"))
    if crash is not None:
        return Result.failure("crash", f"synthetic crash: genome contains {crash!r} "
                              "(task.synthetic_fail_genomes)", params=params, flops=flops,
                              train_seconds=elapsed)
    train_accuracy = _clamp(validation + 0.02 + 0.02 * _unit_hash(genome, "train"))
    return Result(
        status="done",
        val_accuracy=validation,
        val_loss=_loss(validation),
        test_accuracy=test,
        test_loss=_loss(test),
        train_accuracy=train_accuracy,
        train_loss=_loss(train_accuracy),
        params=params,
        flops=flops,
        epochs_run=epochs_run,
        best_epoch=best_epoch,
        train_seconds=elapsed,
        extra={"synthetic": True, "curve": curve,
               **({"stopped_at_epoch": stopped_at} if stopped_at is not None else {}),
               **transfer},
        weights=genome.encode() if _stores_weights(task.train) else None,
    )


def _stores_weights(train: Mapping[str, Any]) -> bool:
    return train.get("transfer", "off") != "off" or bool(train.get("store_weights"))


def synthetic_transfer(task: Task, donor_weights: bytes | None) -> dict[str, Any]:
    """Result extras of the weights repository for a synthetic task: the weights' size, and the
    transfer from the named donor (layers: the common prefix of the two genomes' layers)."""
    extra: dict[str, Any] = {}
    if _stores_weights(task.train):
        extra["weights_bytes"] = len(task.genome.encode())
    donor = task.train.get(TRANSFER_DONOR_KEY)
    if donor is not None:
        layers = genome_layers(task.genome)
        if donor_weights is None:
            extra["transfer"] = {"donor": int(donor), "missing": True}
        else:
            shared = common_prefix(layers, genome_layers(donor_weights.decode("utf-8", "replace")))
            extra["transfer"] = {"donor": int(donor), "layers": shared, "total_layers": len(layers), "params": 0}
    return extra


def synthetic_curve(validation: float, best_epoch: int, epochs: int) -> list[float]:
    """Validation accuracy after each epoch: a straight rise from half to `validation` at `best_epoch`,
    then flat (the epochs patience waits for)."""
    return [_clamp(validation * (0.5 + 0.5 * min(epoch, best_epoch) / best_epoch)) for epoch in range(1, epochs + 1)]


__all__ = ["evaluate_synthetic", "synthetic_accuracies", "synthetic_curve"]
