"""Data files are data: a crafted CIFAR-10 batch in task.data_dir, met by a worker's evaluation,
is one line (DatasetError) and runs nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nascli.errors import DatasetError
from nascli.task import Task
from nascli.train.engine import evaluate_trained

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))
from test_data import write_crafted_cifar  # noqa: E402


def test_a_worker_evaluation_on_a_crafted_cifar_batch_runs_nothing(tmp_path):
    data_dir, marker = tmp_path / "data", tmp_path / "code-ran"
    write_crafted_cifar(data_dir, marker)
    task = Task(genome="In_32_32_3:D_10", task={"dataset": "cifar10", "data_dir": str(data_dir)},
                train={"epochs": 1})
    with pytest.raises(DatasetError, match="refused to load posix.system") as info:
        evaluate_trained(task)
    assert "\n" not in str(info.value)
    assert not marker.exists()
