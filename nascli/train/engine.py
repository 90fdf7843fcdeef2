"""Train one task for real: plan the model, check its size, train (k-fold or proxy), measure, and map
every failure to a typed Result (torch; reached through `nascli.train.evaluate`).

Test metrics are computed once per trained model, after `fit` restored the best-validation
weights, and go into the Result for reporting only: `fit` never sees the test tensors. With
`train.keep_checkpoints` those weights are saved atomically where `nas export` looks for them
(`checkpoint_file`).
"""

from __future__ import annotations

import dataclasses
import gc
import math
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from nascli import devices
from nascli.config import TaskSection, TrainSection, data_dir_of, input_shape
from nascli.errors import DatasetError, DeviceError, DeviceFault, GenomeError, NascliError
from nascli.safe_files import atomic_writer, ensure_directory
from nascli.stop_rule import stop_check, train_settings
from nascli.task import Result, Task
from nascli.train.data import SPLIT_SEED, DatasetSpec, Scaling, load_dataset, load_fold
from nascli.train.objectives import Classification, Reconstruction
from nascli.train.trainer import (
    Cancelled,
    FitOutcome,
    NonFiniteLoss,
    TrainSettings,
    fit,
    measure_latency,
    precision_of,
    score,
    uses_channels_last,
)
from nascli.train.transfer import TransferRecord, load_state, state_bytes, transfer_weights
from nascli.transfer import TRANSFER_DONOR_KEY

AUTOENCODER_KINDS = ("denoise", "reconstruct")


@dataclass(frozen=True)
class ModelPlan:
    """What will be built, known before building it (sizes come from the pure cost models)."""

    build: Callable[[], torch.nn.Module]
    params: int
    flops: int
    input_shape: tuple[int, int, int]
    objective: Any
    scaling: Scaling


def plan_model(genome: str, task: TaskSection, train: TrainSection) -> ModelPlan:
    """Parse and size the genome for this task; GenomeError when it does not fit the dataset."""
    channels, height, width, classes = input_shape(task)
    if task.kind in AUTOENCODER_KINDS:
        from nascli.ga.modules import parse_module_genome
        from nascli.layers.autoencoder import autoencoder_cost, build_autoencoder

        modules = parse_module_genome(genome)
        shape = (channels, height, width)
        cost = autoencoder_cost(modules, shape, task.reduction_modules)
        sigma = task.noise_sigma if task.kind == "denoise" else 0.0
        return ModelPlan(lambda: build_autoencoder(modules, shape, task.reduction_modules), cost.params, cost.flops,
                         shape, Reconstruction(noise_sigma=sigma), "symmetric")
    if task.genome_family == "modules":  # seed 001's modular classifier
        from nascli.ga.modules import parse_module_genome
        from nascli.layers.modular import build_modular_classifier, classifier_cost

        modules = parse_module_genome(genome)
        shape = (channels, height, width)
        sizes = classifier_cost(modules, shape, task.reduction_modules, classes)
        return ModelPlan(lambda: build_modular_classifier(modules, shape, task.reduction_modules, classes),
                         sizes.params, sizes.flops, shape, Classification(train.loss, classes), "standardize")

    from nascli.ga.cost import analyse
    from nascli.ga.genome import parse_genome
    from nascli.layers import build_model

    parsed = parse_genome(genome)
    got = (parsed.input.channels, parsed.input.height, parsed.input.width)
    if got != (channels, height, width) or parsed.output.units != classes:
        raise GenomeError(
            f"genome is In_{parsed.input.width}_{parsed.input.height}_{parsed.input.channels} -> "
            f"D_{parsed.output.units}, but {task.dataset} is {width}x{height}x{channels} with {classes} classes",
            hint=f"start the genome with In_{width}_{height}_{channels} and end it with D_{classes}")
    analysis = analyse(parsed)
    return ModelPlan(lambda: build_model(parsed, activation=train.activation, bn_momentum=train.bn_momentum,
                                         dropout=train.dropout),
                     analysis.params, analysis.flops, got, Classification(train.loss, classes), "standardize")


def checkpoint_file(task: Task, train: TrainSection) -> Path | None:
    """Where this evaluation keeps its weights, or None when it keeps none.

    The convention `nas export` reads (`nascli.export.weights.checkpoint_path`):
    `<train.artifact_dir or <data dir>/../artifacts>/<run_id>/evaluation-<id>.pt`. An evaluation
    outside a run (no run or evaluation id) has no place in it and keeps nothing. The path is made
    absolute so the recorded `extra["checkpoint"]` does not depend on the worker's directory.
    """
    if not train.keep_checkpoints or task.run_id is None or task.evaluation_id is None:
        return None
    root = Path(train.artifact_dir).expanduser() if train.artifact_dir else data_dir_of(task.task).parent / "artifacts"
    return (root / task.run_id / f"evaluation-{task.evaluation_id}.pt").absolute()


def save_checkpoint(model: torch.nn.Module, path: Path) -> None:
    """`torch.save` the model's state_dict (CPU, contiguous tensors: loads with `weights_only=True`
    anywhere) atomically: written and fsynced under a unique temporary name in the same directory,
    then renamed over `path` (nascli.safe_files). A worker killed mid-write leaves at most a `.tmp` file, never a
    truncated checkpoint; a retried attempt of the same evaluation replaces the file whole.
    """
    state = {name: value.detach().cpu().contiguous() for name, value in model.state_dict().items()}
    ensure_directory(path.parent)
    with atomic_writer(path, force=True) as handle:
        torch.save(state, handle)


def _keep_checkpoint(model: torch.nn.Module, path: Path) -> dict[str, Any]:
    """Result extras for a kept checkpoint. A failed write (disk full, no permission) costs the
    weights, not the evaluation: the metrics are still true, so it is recorded, not raised."""
    try:
        save_checkpoint(model, path)
    except (OSError, RuntimeError, NascliError) as error:
        return {"checkpoint_error": f"could not write {path}: {_first_line(error)}"}
    return {"checkpoint": str(path)}


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def _free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _reset_peak_memory(device: torch.device) -> None:
    # Only on an initialised device: before CUDA init, torch refuses an indexed device
    # ("Invalid device argument N: did you call init?").
    if device.type == "cuda" and torch.cuda.is_initialized():
        torch.cuda.reset_peak_memory_stats(device)


def _peak_memory(device: torch.device) -> tuple[int, str]:
    """(bytes, what was measured): CUDA's peak allocation of this evaluation, else the process' peak RSS."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "cuda_max_allocated"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024), "process_max_rss"


def evaluate_trained(task: Task, *, device: str = "cpu", progress: Callable | None = None,
                     should_stop: Callable[[], bool] | None = None, donor_weights: bytes | None = None) -> Result:
    """Train `task` and return its Result; see `nascli.train.evaluate.evaluate` for the contract.
    `donor_weights`: the stored weights of the donor the task names (`train.transfer`)."""
    started = time.perf_counter()
    try:
        task_cfg = TaskSection.model_validate(task.task)
        train_cfg = TrainSection.model_validate(train_settings(task.train))
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        return Result.failure("crash", f"invalid task configuration: {where}: {problem['msg']}")
    if device.startswith("cuda"):
        device = devices.start_device(device)  # once per process; DeviceError when it is not there
        # Batches have fixed shapes on CUDA (trainer.uses_fixed_shapes): benchmarking pays off.
        torch.backends.cudnn.benchmark = True
    dev = torch.device(device)
    if train_cfg.threads:
        torch.set_num_threads(train_cfg.threads)
    try:
        plan = plan_model(task.genome, task_cfg, train_cfg)
    except GenomeError as error:
        return Result.failure("invalid_genome", str(error), train_seconds=0.0)
    max_params = task.search_space.get("max_params")
    if max_params and plan.params > int(max_params):
        return Result.failure("too_large", f"{plan.params} parameters exceed search_space.max_params {max_params}",
                              params=plan.params, flops=plan.flops, train_seconds=0.0)

    spec = DatasetSpec.from_task(task_cfg.model_dump(mode="json"), scaling=plan.scaling)
    settings = TrainSettings.from_train(train_cfg.model_dump())
    retried_from: int | None = None
    oom_message = ""
    for attempt in (1, 2):
        try:
            _reset_peak_memory(dev)
            result = _train(task, train_cfg, plan, spec, settings, dev, progress, should_stop, donor_weights)
            extra = {**result.extra, "wall_seconds": round(time.perf_counter() - started, 3)}
            if retried_from is not None:
                extra["oom_retry"] = {"batch_size": settings.batch_size, "micro_batch_before": retried_from,
                                      "micro_batch": settings.micro_batch}
            return dataclasses.replace(result, extra=extra)
        except NonFiniteLoss as error:
            return _failed("nan_loss", str(error), plan, dev)
        except Cancelled as error:
            return Result.failure("crash", f"cancelled: {error}", params=plan.params, flops=plan.flops,
                                  extra={"cancelled": True})
        except (DatasetError, DeviceError):
            raise
        except Exception as error:  # noqa: BLE001 - any training failure becomes a typed result
            if devices.is_device_fault(error):  # the GPU's fault, not the genome's: the worker gives the task back
                raise DeviceFault(f"{dev}: {_first_line(error)}",
                                  "the worker exits; check nvidia-smi and the kernel log (Xid errors)") from error
            if not devices.is_oom(error):
                return _failed("crash", _first_line(error), plan, dev)
            oom_message = _first_line(error)
        # Out of memory: outside the except block, so the traceback's frames (and their tensors) are gone.
        _free_memory(dev)
        micro = settings.micro_batch or settings.batch_size
        if attempt == 2 or micro < 2:
            break
        # Same effective batch (same training semantics), half the activations in memory at once.
        retried_from = micro
        settings = dataclasses.replace(settings, micro_batch=micro // 2,
                                       eval_batch_size=max(1, settings.eval_batch_size // 2))
    retry = f" (also with micro-batch {settings.micro_batch} x gradient accumulation)" if retried_from else ""
    return _failed("oom", f"{oom_message}{retry}", plan, dev)


def _failed(kind: str, message: str, plan: ModelPlan, device: torch.device) -> Result:
    peak, measured = _peak_memory(device)
    _free_memory(device)
    return Result.failure(kind, message, params=plan.params, flops=plan.flops, peak_memory_bytes=peak,
                          extra={"peak_memory_kind": measured, "device": str(device)})


def _proxy_subset(x: torch.Tensor, y: torch.Tensor, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed random subset of a split (the same for every individual)."""
    n = len(x)
    if samples >= n:
        return x, y
    chosen = np.sort(np.random.default_rng(SPLIT_SEED).permutation(n)[:samples])
    index = torch.from_numpy(chosen).to(x.device)
    return x[index], y[index]


def _train(task: Task, train_cfg: TrainSection, plan: ModelPlan, spec: DatasetSpec, settings: TrainSettings,
           device: torch.device, progress: Callable | None, should_stop: Callable[[], bool] | None,
           donor_weights: bytes | None = None) -> Result:
    folds = train_cfg.kfolds
    donor_id = task.train.get(TRANSFER_DONOR_KEY)
    donor = _donor_state(donor_weights) if donor_id is not None else None
    transferred: TransferRecord | None = None
    fold_settings = settings
    outcomes: list[FitOutcome] = []
    tests: list[tuple[float, float | None]] = []
    model = None
    for fold in range(folds):
        data = load_dataset(spec, device) if folds == 1 else load_fold(spec, device, folds, fold)
        seed = task.seed + fold
        torch.manual_seed(seed)  # weight init and dropout: the same task trains the same way anywhere
        model = None
        model = plan.build().to(device)
        frozen: list[torch.nn.Parameter] = []
        if donor is not None:
            transferred = transfer_weights(model, donor, freeze=train_cfg.freeze_epochs > 0)
            names = set(transferred.frozen)
            frozen = [p for name, p in model.named_parameters() if name in names]
            if frozen and all(not p.requires_grad for p in model.parameters()):
                for parameter in frozen:  # nothing left to train while frozen: fine-tune everything now
                    parameter.requires_grad_(True)
                frozen = []
            if transferred.layers and train_cfg.transfer_epochs is not None:  # fine-tuning, not training anew
                fold_settings = dataclasses.replace(settings, epochs=train_cfg.transfer_epochs)
        train_x, train_y = data.train_x, data.train_y
        val_x, val_y = data.val_x, data.val_y
        if train_cfg.mode == "proxy":
            train_x, train_y = _proxy_subset(data.train_x, data.train_y, train_cfg.proxy_samples)
            if train_cfg.proxy_val_share is not None:  # Klos #9: validate on 1/10 of the training set size
                samples = max(1, math.ceil(train_cfg.proxy_val_share * len(data.train_x)))
                val_x, val_y = _proxy_subset(data.val_x, data.val_y, samples)
        fold_progress = progress
        if progress is not None and folds > 1:
            fold_progress = (lambda f: lambda epoch, metrics: progress(epoch, {**metrics, "fold": f}))(fold)
        from_donor = transferred is not None and transferred.layers > 0  # compared with its own kind
        outcome = fit(model, train_x, train_y, val_x, val_y, plan.objective, fold_settings, seed=seed,
                      progress=fold_progress, should_stop=should_stop,
                      stop_early=stop_check(task.train, transferred=from_donor),
                      frozen=frozen, freeze_epochs=train_cfg.freeze_epochs)
        # Test metrics of the best-validation weights: reported, never fed back into training.
        loss_sum, correct = score(model, data.test_x, data.test_y, plan.objective, settings, split=2)
        values = torch.stack([loss_sum, correct]).tolist()
        tests.append((values[0] / len(data.test_x),
                      values[1] / len(data.test_x) if plan.objective.has_accuracy else None))
        outcomes.append(outcome)
        del data

    latency = None
    if train_cfg.measure_latency and model is not None:
        latency = measure_latency(model, plan.input_shape, device, channels_last=uses_channels_last(settings, device))
    peak, measured = _peak_memory(device)

    def mean(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return sum(present) / len(present) if present else None

    extra: dict[str, Any] = {"peak_memory_kind": measured, "device": str(device),
                             "train_cpu_seconds": round(sum(o.train_cpu_seconds for o in outcomes), 4),
                             "precision": precision_of(settings, device).name,
                             "history": outcomes[0].history if folds == 1 else None}
    if folds == 1 and plan.objective.has_accuracy:  # the validation curve the stop rule compares
        extra["curve"] = [round(record["val_accuracy"], 6) for record in outcomes[0].history]
        extra["stopped_at_epoch"] = outcomes[0].stopped_at_epoch
    if donor_id is not None:
        extra["transfer"] = (transferred.as_extra(int(donor_id)) if transferred is not None
                             else {"donor": int(donor_id), "missing": True})  # evicted or unreadable: from scratch
    stores = train_cfg.transfer != "off" or train_cfg.store_weights  # the weights repository (nascli.store.weights)
    weights = state_bytes(model) if model is not None and stores else None
    if weights is not None:
        extra["weights_bytes"] = len(weights)
    checkpoint = checkpoint_file(task, train_cfg)
    if checkpoint is not None and model is not None:
        # The best-validation weights (fit restored them); with k folds, those of the last fold.
        extra.update(_keep_checkpoint(model, checkpoint))
        if folds > 1:
            extra["checkpoint_fold"] = folds - 1
    if folds > 1:
        extra["folds"] = [{"best_epoch": o.best_epoch, "epochs_run": o.epochs_run, "val_loss": o.val_loss,
                           "val_accuracy": o.val_accuracy, "test_loss": t[0], "test_accuracy": t[1]}
                          for o, t in zip(outcomes, tests)]
    if train_cfg.mode == "proxy":
        extra["proxy"] = {"samples": len(train_x), "steps": settings.max_steps}
        if train_cfg.proxy_val_share is not None:
            extra["proxy"]["val_samples"] = len(val_x)
    return Result(
        status="done",
        val_accuracy=mean([o.val_accuracy for o in outcomes]),
        val_loss=mean([o.val_loss for o in outcomes]),
        test_accuracy=mean([t[1] for t in tests]),
        test_loss=mean([t[0] for t in tests]),
        train_accuracy=mean([o.train_accuracy for o in outcomes]),
        train_loss=mean([o.train_loss for o in outcomes]),
        params=plan.params,
        flops=plan.flops,
        epochs_run=sum(o.epochs_run for o in outcomes),
        best_epoch=round(sum(o.best_epoch for o in outcomes) / len(outcomes)),
        train_seconds=round(sum(o.train_seconds for o in outcomes), 4),
        latency_ms=latency,
        peak_memory_bytes=peak,
        extra={k: v for k, v in extra.items() if v is not None},
        weights=weights,
    )


def _donor_state(data: bytes | None) -> dict[str, torch.Tensor] | None:
    """The donor's state dict, or None when it is not there or unreadable (the child trains from scratch)."""
    if data is None:
        return None
    try:
        return load_state(data)
    except ValueError:
        return None
