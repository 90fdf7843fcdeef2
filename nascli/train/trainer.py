"""Fit a network on device-resident tensors with early stopping on validation.

`fit` sees only the training and validation tensors: test data cannot influence which epoch is
kept. Batches are index slices of the resident tensors (no DataLoader); metrics accumulate as
device tensors and reach the host once per epoch (no host synchronisation inside the loop);
evaluation runs under `torch.inference_mode()` in large batches. The weights of the best
validation epoch are restored before `fit` returns.

Precision (`train.amp`, `precision_of`): on CUDA `auto` is bf16 autocast where the GPU supports it
(bf16 keeps fp32's exponent range, so no loss scaling and no overflow turning a healthy genome
into `nan_loss`), else fp16 with a GradScaler; the CPU trains fp32 unless bf16/fp16 is asked for;
`off` is fp32 everywhere. With fixed shapes (`fixed_shapes`, on CUDA by default) every training
batch has the same size (the last partial batch of an epoch is left out; the shuffle brings its
samples back next epoch) and evaluation batches are padded to one size, so cudnn.benchmark picks
each layer's kernel once.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nascli.train.objectives import NOISE_CHUNK

ProgressCallback = Callable[[int, dict[str, Any]], None]
StopCheck = Callable[[], bool]

EVAL_BATCH_SIZE = 1024  # a multiple of NOISE_CHUNK (fixed evaluation noise)
LATENCY_WARMUP_RUNS = 3
LATENCY_RUNS = 15


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite (diverged training)."""


class Cancelled(RuntimeError):
    """The caller's stop check answered True (its claim on the task is gone)."""


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 100
    patience: int = 6
    batch_size: int = 256
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 1e-5
    momentum: float = 0.9
    amp: str = "auto"  # train.amp: auto, bf16, fp16, off
    micro_batch: int | None = None  # the OOM retry halves it and accumulates gradients
    eval_batch_size: int = EVAL_BATCH_SIZE
    max_steps: int | None = None  # proxy mode: this many optimizer steps, then validate once
    # channels_last: None = yes on every device; on CPU it measured ~10-15 % faster steps for conv
    # genomes (benchmarks/train_throughput.py); for dense-only genomes it changes nothing.
    channels_last: bool | None = None
    # Same-size batches (see the module docstring): None = on CUDA only (CPU results stay those of
    # every batch, the last partial one included).
    fixed_shapes: bool | None = None

    @classmethod
    def from_train(cls, train: Mapping[str, Any], **overrides: Any) -> TrainSettings:
        """From a validated `[train]` section dict (TrainSection.model_dump())."""
        keys = ("epochs", "patience", "batch_size", "optimizer", "lr", "weight_decay", "momentum", "amp")
        values = {k: train[k] for k in keys if k in train}
        if train.get("mode") == "proxy":
            values["max_steps"] = int(train.get("proxy_iterations", 50))
        return cls(**{**values, **overrides})


@dataclass
class FitOutcome:
    best_epoch: int
    epochs_run: int
    train_loss: float
    train_accuracy: float | None
    val_loss: float
    val_accuracy: float | None
    train_seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    # CPU seconds of this process while training: unlike wall seconds, not stretched by waiting for a
    # core when other processes share the machine; on a GPU it leaves the device's time out.
    train_cpu_seconds: float = 0.0
    stopped_at_epoch: int | None = None  # the stop rule ended training here (nascli.stop_rule)


def uses_channels_last(settings: TrainSettings, device: torch.device) -> bool:
    return True if settings.channels_last is None else settings.channels_last


def uses_fixed_shapes(settings: TrainSettings, device: torch.device) -> bool:
    return device.type == "cuda" if settings.fixed_shapes is None else settings.fixed_shapes


@dataclass(frozen=True)
class Precision:
    """How a batch is computed: autocast to `dtype` (None: fp32), with a GradScaler or not."""

    dtype: torch.dtype | None
    scaler: bool

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]


def resolve_precision(amp: str | bool, device_type: str, bf16_supported: bool) -> Precision:
    """`train.amp` on a device (pure: the caller says whether the GPU has bf16)."""
    amp = {True: "auto", False: "off"}.get(amp, amp) if isinstance(amp, bool) else amp
    if amp == "off" or (amp == "auto" and device_type != "cuda"):
        return Precision(None, False)
    if amp == "bf16" or (amp == "auto" and bf16_supported):
        return Precision(torch.bfloat16, False)
    return Precision(torch.float16, True)


def precision_of(settings: TrainSettings, device: torch.device) -> Precision:
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
    return resolve_precision(settings.amp, device.type, bf16)


def make_optimizer(model: nn.Module, settings: TrainSettings, device: torch.device) -> torch.optim.Optimizer:
    # Fused updates (one kernel over all parameters, CPU and CUDA) instead of a loop over parameters.
    fast: dict[str, Any] = {"fused": True} if device.type in ("cpu", "cuda") else {"foreach": True}
    params = [p for p in model.parameters() if p.requires_grad]
    if settings.optimizer == "sgd":
        return torch.optim.SGD(params, lr=settings.lr, momentum=settings.momentum,
                               weight_decay=settings.weight_decay, **fast)
    return torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay, **fast)


def _autocast(precision: Precision, device: torch.device):
    if precision.dtype is not None:
        return torch.autocast(device_type=device.type, dtype=precision.dtype)
    return contextlib.nullcontext()


def score(model: nn.Module, x: torch.Tensor, y: torch.Tensor, objective: Any, settings: TrainSettings, *,
          split: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed loss, correct count) over a whole split, as device tensors; eval mode, inference mode."""
    device = x.device
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    step = max(NOISE_CHUNK, settings.eval_batch_size // NOISE_CHUNK * NOISE_CHUNK)
    channels_last = uses_channels_last(settings, device)
    # A split of several batches pads its last one to the same size (eval mode: rows are independent).
    pad = uses_fixed_shapes(settings, device) and len(x) > step
    with torch.inference_mode(), _autocast(precision_of(settings, device), device):
        for start in range(0, len(x), step):
            inputs, target = objective.batch(x[start:start + step], y[start:start + step], split=split, start=start)
            real = len(inputs)
            if pad and real < step:
                inputs = torch.cat([inputs, inputs.new_zeros((step - real, *inputs.shape[1:]))])
            if channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            output = model(inputs)[:real]
            loss_sum += objective.loss(output, target) * real
            correct += objective.correct(output, target)
    return loss_sum, correct


def fit(model: nn.Module, train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor,
        objective: Any, settings: TrainSettings, *, seed: int, progress: ProgressCallback | None = None,
        should_stop: StopCheck | None = None, stop_early: Callable[[list[float]], bool] | None = None,
        frozen: list[nn.Parameter] | None = None, freeze_epochs: int = 0) -> FitOutcome:
    """Train `model` (already on the data's device) and restore its best-validation weights.
    `stop_early(validation accuracy curve so far)` is asked after each epoch (the stop rule).
    `frozen` parameters (transferred ones, requires_grad off) join the training after `freeze_epochs`."""
    device = train_x.device
    started, cpu_started = time.perf_counter(), time.process_time()
    channels_last = uses_channels_last(settings, device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, settings, device)
    precision = precision_of(settings, device)
    amp = precision.scaler
    # With fused optimizers the scaler's inf check stays on the device (no host sync per step).
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    shuffle = torch.Generator(device=device)
    shuffle.manual_seed(seed)
    n = len(train_x)
    batch = min(settings.batch_size, n)
    micro = min(settings.micro_batch or batch, batch)
    # Fixed shapes: full batches only (n // batch of them); else every batch, the last one partial.
    fixed = uses_fixed_shapes(settings, device)
    last_start = n - batch if fixed else n - 1
    max_steps = settings.max_steps
    per_epoch = n // batch if fixed else math.ceil(n / batch)
    epochs = math.ceil(max_steps / per_epoch) if max_steps is not None else settings.epochs
    steps = 0
    best: tuple[float, float | None] | None = None
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch, since_best, epoch = 0, 0, 0
    history: list[dict[str, Any]] = []
    stopped_at: int | None = None
    train_values: dict[int, tuple[float, float | None]] = {}

    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=shuffle, device=device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        seen = 0
        for start in range(0, last_start + 1, batch):
            if should_stop is not None and should_stop():
                raise Cancelled(f"stopped in epoch {epoch}: the worker asked to stop")
            indices = order[start:start + batch]
            if len(indices) < 2 <= n:  # a batch of one breaks batch norm; its sample comes back next epoch
                continue
            optimizer.zero_grad(set_to_none=True)
            parts = (indices,) if micro >= len(indices) else indices.split(micro)
            for part in parts:
                inputs, target = objective.batch(train_x[part], train_y[part], generator=shuffle)
                if channels_last:
                    inputs = inputs.contiguous(memory_format=torch.channels_last)
                with _autocast(precision, device):
                    output = model(inputs)
                    loss = objective.loss(output, target)
                # Mean over the micro-batch, weighted to the whole batch: same gradient as one big batch.
                weighted = loss if len(parts) == 1 else loss * (len(part) / len(indices))
                if amp:
                    scaler.scale(weighted).backward()
                else:
                    weighted.backward()
                loss_sum.add_(loss.detach(), alpha=len(part))
                if objective.has_accuracy:
                    correct.add_(objective.correct(output.detach(), target))
            if amp:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            seen += len(indices)
            steps += 1
            if max_steps is not None and steps >= max_steps:
                break
        if max_steps is not None and steps < max_steps and epoch < epochs:
            continue  # proxy mode validates once, at the end
        val_loss_sum, val_correct = score(model, val_x, val_y, objective, settings, split=1)
        # The one host sync of the epoch.
        values = torch.stack([loss_sum, correct, val_loss_sum, val_correct]).tolist()
        train_loss = values[0] / max(seen, 1)
        val_loss = values[2] / len(val_x)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise NonFiniteLoss(f"loss became {'nan' if math.isnan(train_loss) or math.isnan(val_loss) else 'inf'} "
                                f"in epoch {epoch} (train {train_loss:.4g}, validation {val_loss:.4g})")
        train_acc = values[1] / max(seen, 1) if objective.has_accuracy else None
        val_acc = values[3] / len(val_x) if objective.has_accuracy else None
        train_values[epoch] = (train_loss, train_acc)
        record = {"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc, "val_loss": val_loss,
                  "val_accuracy": val_acc, "seconds": round(time.perf_counter() - started, 3)}
        history.append(record)
        if objective.better((val_loss, val_acc), best):
            best, best_epoch, since_best = (val_loss, val_acc), epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            since_best += 1
        if progress is not None:
            progress(epoch, record)
        if since_best >= settings.patience or (max_steps is not None and steps >= max_steps):
            break
        if frozen and epoch == freeze_epochs:  # fine-tune the transferred layers from now on
            for parameter in frozen:
                parameter.requires_grad_(True)
            optimizer.add_param_group({"params": list(frozen)})
            frozen = None
        curve = [record["val_accuracy"] for record in history]
        if stop_early is not None and epoch < epochs and val_acc is not None and stop_early(curve):
            stopped_at = epoch
            break

    if best_state is not None:
        model.load_state_dict(best_state)
    assert best is not None
    train_loss, train_acc = train_values[best_epoch]
    return FitOutcome(best_epoch=best_epoch, epochs_run=epoch, train_loss=train_loss, train_accuracy=train_acc,
                      val_loss=best[0], val_accuracy=best[1], train_seconds=time.perf_counter() - started,
                      history=history, stopped_at_epoch=stopped_at,
                      train_cpu_seconds=time.process_time() - cpu_started)


def measure_latency(model: nn.Module, shape: tuple[int, ...], device: torch.device, *,
                    channels_last: bool = False, runs: int = LATENCY_RUNS) -> float:
    """Median milliseconds of one forward pass on a batch of one (after warm-up), eval mode."""
    model.eval()
    x = torch.randn((1, *shape), device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    timings = []
    with torch.inference_mode():
        for i in range(LATENCY_WARMUP_RUNS + runs):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            begin = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= LATENCY_WARMUP_RUNS:
                timings.append((time.perf_counter() - begin) * 1000)
    return statistics.median(timings)
