"""`nas worker --gpus` / `--per-device`: which children the launcher starts, with which device and
CUDA_VISIBLE_DEVICES, and how they are named (the processes themselves: tests/integration/test_worker_devices.py)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from nascli import devices
from nascli.cli import app
from nascli.commands.worker import _launcher_gpus, _without_launcher_options
from nascli.gpu_launcher import GpuLauncher


def _layout(launcher: GpuLauncher) -> list[tuple]:
    return [(child.label, child.device, child.visible) for child in launcher.children]


def test_per_device_starts_n_children_on_each_gpu_sharing_its_visible_device():
    launcher = GpuLauncher(["nas", "worker"], [0, 1], per_device=3, env={"CUDA_VISIBLE_DEVICES": "4,5"})
    assert _layout(launcher) == [("gpu0.0", "cuda:0", "4"), ("gpu0.1", "cuda:0", "4"), ("gpu0.2", "cuda:0", "4"),
                                 ("gpu1.0", "cuda:0", "5"), ("gpu1.1", "cuda:0", "5"), ("gpu1.2", "cuda:0", "5")]
    assert [child.describe(True) for child in launcher.children[:2]] == ["GPU 0 worker 0", "GPU 0 worker 1"]


def test_one_child_per_gpu_keeps_the_plain_gpu_names():
    launcher = GpuLauncher(["nas", "worker"], [1], env={})
    assert _layout(launcher) == [("gpu1", "cuda:0", "1")]
    assert launcher.children[0].describe(False) == "GPU 1"


def test_cpu_children_train_on_the_cpu_with_the_environment_as_it_is():
    launcher = GpuLauncher(["nas", "worker"], None, per_device=2, env={})
    assert _layout(launcher) == [("cpu0", "cpu", None), ("cpu1", "cpu", None)]
    assert launcher.children[1].describe(True) == "CPU worker 1"
    with pytest.raises(ValueError, match="at least 1"):
        GpuLauncher(["nas", "worker"], None, per_device=0, env={})


def test_the_launcher_goes_on_gpus_else_the_device_else_the_default(monkeypatch):
    monkeypatch.setenv(devices.FAKE_GPUS_ENV, "2")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert _launcher_gpus("all", None) == [0, 1]
    assert _launcher_gpus(None, "cuda:1") == [1]
    assert _launcher_gpus(None, "cpu") is None
    assert _launcher_gpus(None, None) == [0]  # a visible GPU is the default device
    monkeypatch.setenv(devices.FAKE_GPUS_ENV, "0")
    assert _launcher_gpus(None, None) is None


def test_children_get_neither_launcher_option():
    argv = ["worker", "--gpus", "all", "--per-device", "2", "--db", "x", "--per-device=3", "--device=cpu", "--run", "r"]
    assert _without_launcher_options(argv) == ["worker", "--db", "x", "--run", "r"]


def test_per_device_below_one_or_on_an_absent_gpu_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv(devices.FAKE_GPUS_ENV, "0")
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    zero = CliRunner().invoke(app, ["worker", "--db", url, "--per-device", "0"])
    assert zero.exit_code == 2 and "--per-device" in zero.output
    absent = CliRunner().invoke(app, ["worker", "--db", url, "--device", "cuda:0", "--per-device", "2"])
    assert absent.exit_code == 2 and "cuda:0: no CUDA device is visible" in absent.output
