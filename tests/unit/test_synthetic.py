"""The synthetic evaluator: deterministic, torch-free, timed, and failing on request."""

from __future__ import annotations

import subprocess
import sys
import time

from genome_strategies import genomes
from hypothesis import given, settings
from hypothesis import strategies as st

from nascli.ga.cost import analyse
from nascli.ga.genome import format_genome
from nascli.task import Task
from nascli.train.synthetic import evaluate_synthetic, synthetic_accuracies

SMALL = "In_8_8:D_10"
DEEP = "In_28_28:C_3-3-1-1-32:P_2-2-2-2-0:C_3-3-1-1-64:D_10"


def task(genome: str, **task_keys) -> Task:
    return Task(genome=genome, task={"kind": "synthetic", **task_keys}, train={"epochs": 30, "patience": 3},
                search_space={"max_params": 10_000_000})


@settings(max_examples=60, deadline=None)
@given(genomes())
def test_result_is_a_deterministic_function_of_the_genome(genome):
    text = format_genome(genome)
    first, second = evaluate_synthetic(task(text)), evaluate_synthetic(task(text))
    assert first.status == "done"
    assert 0 < first.val_accuracy < 1 and 0 < first.test_accuracy < 1
    assert abs(first.val_accuracy - first.test_accuracy) <= 0.03
    assert first.params == analyse(genome).params and first.flops == analyse(genome).flops
    keys = ("val_accuracy", "test_accuracy", "val_loss", "params", "epochs_run", "best_epoch")
    assert [getattr(first, k) for k in keys] == [getattr(second, k) for k in keys]
    assert 1 <= first.best_epoch <= first.epochs_run <= 30


@settings(max_examples=40, deadline=None)
@given(st.lists(genomes(), min_size=2, max_size=2, unique_by=format_genome))
def test_distinct_genomes_rarely_tie(pair):
    a, b = (synthetic_accuracies(format_genome(g))[0] for g in pair)
    assert a != b


def test_there_is_a_landscape_to_climb():
    """Adding useful structure to a bare input->output genome raises validation accuracy."""
    bare, _ = synthetic_accuracies(SMALL.replace("8_8", "28_28"))
    deep, _ = synthetic_accuracies(DEEP)
    assert deep > bare + 0.2


def test_validation_and_test_are_correlated_but_differ():
    pairs = [synthetic_accuracies(f"In_28_28:C_3-3-1-1-{f}:D_10") for f in range(4, 64)]
    assert any(v != t for v, t in pairs)
    assert all(abs(v - t) <= 0.03 for v, t in pairs)


def test_sleeps_synthetic_seconds_and_reports_epochs():
    epochs = []
    started = time.monotonic()
    result = evaluate_synthetic(task(DEEP, synthetic_seconds=0.3), progress=lambda e, m: epochs.append(e))
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 1.0
    assert result.status == "done" and result.train_seconds >= 0.3
    assert epochs == list(range(1, result.epochs_run + 1))


def cpu_and_wall(**keys) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.monotonic()
    assert evaluate_synthetic(task(DEEP, synthetic_seconds=0.3, **keys)).status == "done"
    return time.process_time() - cpu, time.monotonic() - wall


def test_busy_mode_burns_cpu_for_the_same_time():
    sleeping_cpu, sleeping_wall = cpu_and_wall()
    busy_cpu, busy_wall = cpu_and_wall(synthetic_busy=True)
    assert 0.3 <= sleeping_wall < 1.0 and 0.3 <= busy_wall < 1.0
    assert busy_cpu > 5 * sleeping_cpu  # it worked, not slept (ratio: robust on a loaded machine)


def test_should_stop_ends_a_long_evaluation_quickly():
    started = time.monotonic()
    result = evaluate_synthetic(task(DEEP, synthetic_seconds=30), should_stop=lambda: time.monotonic() - started > 0.2)
    assert time.monotonic() - started < 0.5
    assert result.status == "failed" and "asked to stop" in result.error_message
    assert result.extra == {"cancelled": True}


def test_injected_failures_are_typed():
    crash = evaluate_synthetic(task(DEEP, synthetic_fail_genomes=["C_3-3-1-1-64"]))
    oom = evaluate_synthetic(task(DEEP, synthetic_oom_genomes=["P_2-2"]))
    untouched = evaluate_synthetic(task(DEEP, synthetic_fail_genomes=["R_"], synthetic_oom_genomes=[""]))
    assert (crash.status, crash.error_kind) == ("failed", "crash") and "C_3-3-1-1-64" in crash.error_message
    assert (oom.status, oom.error_kind) == ("failed", "oom")
    assert untouched.status == "done"


def test_bad_and_oversized_genomes_fail_without_raising():
    bad = evaluate_synthetic(task("In_8_8:C_9-9-1-1-3:D_10"))
    garbage = evaluate_synthetic(task("not a genome"))
    big = evaluate_synthetic(Task(genome=DEEP, task={"kind": "synthetic"}, train={}, search_space={"max_params": 1000}))
    assert bad.error_kind == "invalid_genome" and "position 1" in bad.error_message
    assert garbage.error_kind == "invalid_genome"
    assert big.error_kind == "too_large" and big.params == analyse_params(DEEP)


def analyse_params(genome: str) -> int:
    from nascli.ga.genome import parse_genome

    return analyse(parse_genome(genome)).params


def test_importing_and_running_it_never_loads_torch():
    code = (
        "import sys\n"
        "from nascli.task import Task\n"
        "from nascli.train.synthetic import evaluate_synthetic\n"
        f"evaluate_synthetic(Task(genome={DEEP!r}, task={{}}, train={{}}))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_module_genomes_are_scored_as_autoencoders_of_their_family():
    from nascli.ga.module_operators import autoencoder_params
    from nascli.ga.modules import parse_module_genome

    module = "5x5conv2d:16,3x3conv2d:32"
    keys = {"genome_family": "modules", "synthetic_shape": [3, 96, 96], "reduction_modules": 2}
    result = evaluate_synthetic(task(module, **keys))
    assert result.status == "done" and 0 < result.val_accuracy < 1 and result.val_loss > 0
    assert result.params == autoencoder_params(parse_module_genome(module), 3, 2)
    assert evaluate_synthetic(task(module)).error_kind == "invalid_genome"  # a module is no layer genome
    assert evaluate_synthetic(task(SMALL, **keys)).error_kind == "invalid_genome"
