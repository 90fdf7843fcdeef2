"""Training throughput: the project's trainer vs a plain DataLoader loop vs the compute ceiling.

Same reference genome, same data, same batch size, measured side by side in one run (round-robin
repeats, median reported, because the machine is shared):
- ceiling:    forward + backward + optimizer step on batches already materialised in memory;
- trainer:    `nascli.train.trainer.fit` end to end (shuffling, index slicing, per-epoch validation
              and early-stopping bookkeeping included), with its defaults (channels_last, fused
              Adam) and once more with channels_last off, to show what that layout is worth;
- dataloader: the usual loop: DataLoader(TensorDataset) with shuffle, default Adam, `loss.item()`
              and accuracy `.item()` per batch, validation under no_grad in training-size batches.
Also the per-task overhead of `evaluate()` with the dataset already resident: call -> first batch.

    python benchmarks/train_throughput.py [--threads 2] [--epochs 3] [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nascli.layers import build_model
from nascli.layers.build import GenomeNet
from nascli.task import Task
from nascli.train.data import DatasetSpec, load_dataset
from nascli.train.evaluate import evaluate
from nascli.train.objectives import Classification
from nascli.train.trainer import TrainSettings, fit, make_optimizer, uses_channels_last

REFERENCE_GENOME = "In_8_8:C_3-3-1-1-32:C_3-3-1-1-64:P_2-2-2-2-0:D_1-1-1-1-128:D_10"
BATCH_SIZE = 64
LR = 1e-3
SEED = 0


def fresh_model() -> torch.nn.Module:
    torch.manual_seed(SEED)
    return build_model(REFERENCE_GENOME, dropout=0.25)


def ceiling(data, epochs: int, settings: TrainSettings) -> float:
    """The trainer's own model setup (optimizer, memory format), fed batches that already exist."""
    model = fresh_model()
    model.train()
    channels_last = uses_channels_last(settings, torch.device("cpu"))
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, settings, torch.device("cpu"))
    generator = torch.Generator().manual_seed(SEED)
    batches = []
    for _ in range(epochs):
        order = torch.randperm(len(data.train_x), generator=generator)
        batches += [(data.train_x[i], data.train_y[i]) for i in order.split(BATCH_SIZE) if len(i) > 1]
    if channels_last:
        batches = [(x.contiguous(memory_format=torch.channels_last), y) for x, y in batches]
    images = sum(len(x) for x, _ in batches)
    started = time.perf_counter()
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return images / (time.perf_counter() - started)


def trainer(data, epochs: int, settings: TrainSettings) -> float:
    model = fresh_model()
    started = time.perf_counter()
    fit(model, data.train_x, data.train_y, data.val_x, data.val_y, Classification("cross_entropy", 10), settings,
        seed=SEED)
    return epochs * len(data.train_x) / (time.perf_counter() - started)


def dataloader_loop(data, epochs: int) -> float:
    model = fresh_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=1e-5)
    train = DataLoader(TensorDataset(data.train_x, data.train_y), batch_size=BATCH_SIZE, shuffle=True,
                       generator=torch.Generator().manual_seed(SEED))
    val = DataLoader(TensorDataset(data.val_x, data.val_y), batch_size=BATCH_SIZE)
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        total_loss = correct = 0.0
        for x, y in train:
            if len(x) < 2:
                continue
            optimizer.zero_grad()
            out = model(x)
            loss = F.cross_entropy(out, y)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(x)
            correct += (out.argmax(1) == y).sum().item()
        model.eval()
        with torch.no_grad():
            val_loss = sum(F.cross_entropy(model(x), y, reduction="sum").item() for x, y in val)
        assert val_loss == val_loss
    return epochs * len(data.train_x) / (time.perf_counter() - started)


def task_overhead(runs: int) -> list[float]:
    """Seconds from evaluate() to the first training batch's forward, dataset already resident."""
    task = Task(genome=REFERENCE_GENOME, task={"kind": "classification", "dataset": "digits"},
                train={"epochs": 1, "batch_size": BATCH_SIZE, "loss": "cross_entropy"}, seed=SEED)
    original = GenomeNet.forward
    first: list[float] = []

    def timed(self, x):
        if not first:
            first.append(time.perf_counter())
        return original(self, x)

    GenomeNet.forward = timed
    overheads = []
    try:
        evaluate(task)  # warm-up: imports, dataset load, first-call kernel setup
        for _ in range(runs):
            first.clear()
            started = time.perf_counter()
            evaluate(task)
            overheads.append(first[0] - started)
    finally:
        GenomeNet.forward = original
    return overheads


def ratios(speed: dict[str, float]) -> dict[str, float]:
    return {"trainer/ceiling": round(speed["trainer"] / speed["ceiling"], 3),
            "trainer/dataloader": round(speed["trainer"] / speed["dataloader"], 3),
            "dataloader/ceiling": round(speed["dataloader"] / speed["ceiling"], 3),
            "trainer/trainer_contiguous": round(speed["trainer"] / speed["trainer_contiguous"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1, help="epochs per measurement")
    parser.add_argument("--repeats", type=int, default=9, help="round-robin repeats of every method")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/train_throughput.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(DatasetSpec("digits", "/unused"))
    base = TrainSettings(epochs=args.epochs, patience=args.epochs, batch_size=BATCH_SIZE, lr=LR)
    methods = {
        "ceiling": lambda: ceiling(data, args.epochs, base),
        "trainer": lambda: trainer(data, args.epochs, base),
        "trainer_contiguous": lambda: trainer(data, args.epochs, TrainSettings(**{**base.__dict__,
                                                                                "channels_last": False})),
        "dataloader": lambda: dataloader_loop(data, args.epochs),
    }
    for method in methods.values():  # warm-up round
        method()
    samples: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.repeats):
        for name, method in methods.items():
            samples[name].append(method())
    # On a shared machine other processes only ever slow a measurement down: the best of the
    # interleaved repeats estimates each method's own speed, the median shows the spread.
    median = {name: statistics.median(values) for name, values in samples.items()}
    best = {name: max(values) for name, values in samples.items()}
    overheads = task_overhead(5)
    report = {
        "genome": REFERENCE_GENOME, "dataset": "digits", "train_samples": len(data.train_x),
        "val_samples": len(data.val_x), "batch_size": BATCH_SIZE, "epochs": args.epochs, "threads": args.threads,
        "repeats": args.repeats, "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
        "images_per_second_best": {name: round(value, 1) for name, value in best.items()},
        "images_per_second_median": {name: round(value, 1) for name, value in median.items()},
        "samples_images_per_second": {name: [round(v, 1) for v in values] for name, values in samples.items()},
        "ratios_best": ratios(best),
        "ratios_median": ratios(median),
        "task_overhead_ms": {"median": round(statistics.median(overheads) * 1000, 2),
                             "all": [round(o * 1000, 2) for o in overheads]},
    }
    for name in methods:
        print(f"{name:>20}: best {best[name]:8.1f}  median {median[name]:8.1f} images/s")
    for label, values in (("best", report["ratios_best"]), ("median", report["ratios_median"])):
        print(f"ratios ({label}): " + ", ".join(f"{k} {v:.3f}" for k, v in values.items()))
    print(f"per-task overhead (evaluate -> first batch, data resident): {report['task_overhead_ms']['median']} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
