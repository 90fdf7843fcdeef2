"""The training engine on real (bundled) data: accuracy, early stopping, test-set discipline,
failure kinds (OOM with retry, NaN, too large, invalid, crash), cancellation, k-fold and proxy modes."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import pytest
import torch

from nascli.layers.build import GenomeNet
from nascli.task import Task
from nascli.train.data import DatasetSpec, load_dataset
from nascli.train.evaluate import evaluate
from tests.helpers import one_torch_thread  # noqa: F401 - autouse: training on one thread, as a worker trains

SMALL = "In_8_8:C_3-3-1-1-16:P_2-2-2-2-0:D_10"
QUICK_TRAIN = {"epochs": 6, "patience": 6, "batch_size": 64, "lr": 3e-3, "loss": "cross_entropy", "dropout": 0.25,
               "threads": 1}




def digits_task(genome: str = SMALL, seed: int = 3, **train) -> Task:
    return Task(genome=genome, task={"kind": "classification", "dataset": "digits"},
                train={**QUICK_TRAIN, **train}, search_space={"max_params": 100_000}, seed=seed)


def test_digits_trains_well_above_chance_in_seconds():
    started = time.perf_counter()
    result = evaluate(digits_task())
    seconds = time.perf_counter() - started
    print(f"digits {SMALL}: val accuracy {result.val_accuracy:.3f}, test {result.test_accuracy:.3f}, "
          f"{result.epochs_run} epochs in {seconds:.1f} s")
    assert result.status == "done", result.error_message
    assert result.val_accuracy > 0.8 and result.test_accuracy > 0.8
    assert result.params == 2746 and result.flops > 0 and result.peak_memory_bytes > 0
    assert 1 <= result.best_epoch <= result.epochs_run == 6 and result.train_seconds > 0
    assert len(result.extra["history"]) == 6 and result.latency_ms is None
    assert result.extra["train_cpu_seconds"] > 0  # the load-free cost (benchmarks/search_cost.py sums it)
    assert seconds < 30


def test_mse_on_one_hot_trains_too():
    result = evaluate(digits_task(loss="mse", lr=1e-2, epochs=4))
    assert result.status == "done" and result.val_accuracy > 0.5


def test_early_stopping_stops_after_patience_without_improvement():
    # Dense only (no batch norm statistics) and a step far below float precision: validation
    # results never change, so epoch 1 stays best and training stops `patience` epochs later.
    result = evaluate(digits_task("In_8_8:D_10", epochs=50, patience=2, optimizer="sgd", lr=1e-30,
                                  weight_decay=0.0))
    assert result.status == "done"
    assert result.best_epoch == 1 and result.epochs_run == 3


def test_same_task_same_result():
    a, b = evaluate(digits_task(epochs=2)), evaluate(digits_task(epochs=2))
    assert a.val_loss == b.val_loss and a.test_accuracy == b.test_accuracy


def test_test_split_never_influences_fitness_or_the_selected_epoch():
    task = digits_task(epochs=5, patience=5)
    honest = evaluate(task)
    # The evaluator's cached split (the assertion on test accuracy below proves it is the same object).
    resident = load_dataset(DatasetSpec.from_task({"kind": "classification", "dataset": "digits"}))
    # Ruin the test set in place (labels shuffled, images replaced by noise) in the evaluator's cache.
    saved = resident.test_x.clone(), resident.test_y.clone()
    try:
        resident.test_y.copy_(resident.test_y.roll(1))
        resident.test_x.copy_(torch.randn_like(resident.test_x))
        corrupted = evaluate(task)
    finally:
        resident.test_x.copy_(saved[0])
        resident.test_y.copy_(saved[1])
    assert corrupted.test_accuracy < 0.5 < honest.test_accuracy  # the test set really changed...
    # ...and nothing that selection uses did.
    assert corrupted.val_accuracy == honest.val_accuracy and corrupted.val_loss == honest.val_loss
    assert corrupted.best_epoch == honest.best_epoch and corrupted.epochs_run == honest.epochs_run
    assert corrupted.extra["history"] == [dict(h, seconds=c["seconds"]) for h, c in
                                          zip(honest.extra["history"], corrupted.extra["history"])]


def _raise_oom_when(condition):
    original = GenomeNet.forward

    def forward(self, x):
        if condition(self, x):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, x)

    return forward


def test_oom_retries_with_half_micro_batch_and_same_effective_batch(monkeypatch):
    # Only full training batches of 64 "do not fit": the retry with micro-batches of 32 succeeds.
    monkeypatch.setattr(GenomeNet, "forward", _raise_oom_when(lambda self, x: self.training and len(x) > 32))
    result = evaluate(digits_task(epochs=2))
    assert result.status == "done", result.error_message
    assert result.extra["oom_retry"] == {"batch_size": 64, "micro_batch_before": 64, "micro_batch": 32}


@pytest.mark.slow
def test_oom_twice_is_recorded_as_oom_and_the_next_task_succeeds(monkeypatch):
    calls = []

    def always(self, x):
        calls.append(len(x))
        return True

    monkeypatch.setattr(GenomeNet, "forward", _raise_oom_when(always))
    result = evaluate(digits_task(epochs=2))
    assert result.status == "failed" and result.error_kind == "oom"
    assert "OutOfMemoryError" in result.error_message and "micro-batch 32" in result.error_message
    assert calls == [64, 32] and result.peak_memory_bytes > 0 and result.params == 2746
    monkeypatch.undo()
    assert evaluate(digits_task(epochs=1)).status == "done"


@pytest.mark.slow
def test_oom_runtime_error_text_is_recognised(monkeypatch):
    def forward(self, x):
        raise RuntimeError("CUDA error: out of memory")

    monkeypatch.setattr(GenomeNet, "forward", forward)
    assert evaluate(digits_task(epochs=1)).error_kind == "oom"


def test_nan_loss_is_recorded_as_nan_loss(monkeypatch):
    original = GenomeNet.forward
    monkeypatch.setattr(GenomeNet, "forward", lambda self, x: original(self, x) * float("nan"))
    result = evaluate(digits_task(epochs=3))
    assert result.error_kind == "nan_loss" and "epoch 1" in result.error_message


def test_too_large_is_refused_without_building(monkeypatch):
    import nascli.layers

    monkeypatch.setattr(nascli.layers, "build_model", lambda *a, **k: pytest.fail("built a too-large genome"))
    task = Task(genome="In_8_8:C_3-3-1-1-256:D_1-1-1-1-512:D_10", task={"kind": "classification", "dataset": "digits"},
                train=QUICK_TRAIN, search_space={"max_params": 10_000})
    started = time.perf_counter()
    result = evaluate(task)
    assert result.error_kind == "too_large" and result.params > 10_000
    assert "max_params 10000" in result.error_message and time.perf_counter() - started < 1


@pytest.mark.parametrize("genome, needle", [("In_8_8:Q_1:D_10", "Q_1"), ("In_28_28:C_3-3-1-1-8:D_10", "In_8_8_1"),
                                            ("In_8_8:D_7", "D_10")])
def test_invalid_or_mismatched_genome_is_invalid_genome(genome, needle):
    result = evaluate(digits_task(genome))
    assert result.error_kind == "invalid_genome" and needle in result.error_message


def test_any_other_exception_is_a_crash_with_its_message(monkeypatch):
    def forward(self, x):
        raise ValueError("broken layer")

    monkeypatch.setattr(GenomeNet, "forward", forward)
    result = evaluate(digits_task(epochs=1))
    assert result.error_kind == "crash" and result.error_message == "ValueError: broken layer"


def test_bad_train_section_is_a_crash_not_an_exception():
    result = evaluate(digits_task(optimizer="lbfgs"))
    assert result.error_kind == "crash" and "optimizer" in result.error_message


def test_should_stop_cancels_between_batches():
    asked = []

    def should_stop():
        asked.append(1)
        return len(asked) > 3

    result = evaluate(digits_task(epochs=5), should_stop=should_stop)
    assert result.error_kind == "crash" and result.extra["cancelled"] is True and len(asked) == 4


def test_progress_reports_every_epoch():
    seen = []
    evaluate(digits_task(epochs=3, patience=3), progress=lambda epoch, metrics: seen.append((epoch, metrics)))
    assert [e for e, _ in seen] == [1, 2, 3] and {"val_accuracy", "train_loss"} <= set(seen[0][1])


def test_latency_is_measured_when_asked():
    result = evaluate(digits_task(epochs=1, measure_latency=True))
    assert result.latency_ms is not None and 0 < result.latency_ms < 1000


def test_kfold_averages_over_folds():
    result = evaluate(digits_task(epochs=2, patience=2, kfolds=3))
    assert result.status == "done" and len(result.extra["folds"]) == 3
    assert result.epochs_run == 6
    folds = result.extra["folds"]
    assert result.val_accuracy == pytest.approx(sum(f["val_accuracy"] for f in folds) / 3)


def test_proxy_mode_trains_few_steps_on_few_samples():
    result = evaluate(digits_task(mode="proxy", proxy_samples=128, proxy_iterations=5, batch_size=32))
    assert result.status == "done"
    assert result.extra["proxy"] == {"samples": 128, "steps": 5}
    assert result.epochs_run == 2 and len(result.extra["history"]) == 1  # 4 steps per pass; validated once


def test_proxy_mode_validates_on_a_share_of_the_training_split_size():
    """Klos #9 validates its proxy on 1/10 of the training set size; here 1/20 of digits' 1,367
    training rows (69), fewer than its validation split holds (136)."""
    result = evaluate(digits_task(mode="proxy", proxy_samples=64, proxy_iterations=2, batch_size=32,
                                  proxy_val_share=0.05))
    assert result.status == "done"
    from nascli.train.data import DatasetSpec, load_dataset

    data = load_dataset(DatasetSpec.from_task(digits_task().task), torch.device("cpu"))
    expected = math.ceil(0.05 * len(data.train_x))
    assert expected < len(data.val_x)
    assert result.extra["proxy"] == {"samples": 64, "steps": 2, "val_samples": expected}


def test_synthetic_tasks_do_not_import_torch():
    code = ("import sys\nfrom nascli.task import Task\nfrom nascli.train.evaluate import evaluate\n"
            "r = evaluate(Task(genome='In_8_8:C_3-3-1-1-16:D_10', task={'kind': 'synthetic', 'dataset': 'synthetic'},"
            " train={'epochs': 2}))\nassert r.status == 'done', r\nassert 'torch' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
