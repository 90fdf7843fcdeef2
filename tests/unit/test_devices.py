"""Device decisions with a faked device count (torch.cuda.device_count/is_available monkeypatched),
fault classification with faked exceptions, and the start-up path on this GPU-less machine."""

from __future__ import annotations

import pytest
import torch
from test_train import digits_task

from nascli import devices
from nascli.errors import ConfigError, DeviceError, DeviceFault
from nascli.train import engine
from nascli.worker import evaluate_task


@pytest.fixture
def gpus(monkeypatch):
    """Pretend torch sees `n` CUDA devices (the real torch calls, answers faked)."""
    monkeypatch.delenv(devices.FAKE_GPUS_ENV, raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    def fake(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

    return fake


def test_default_device_is_cuda_when_a_gpu_is_visible_else_cpu(gpus):
    gpus(2)
    assert devices.default_device() == "cuda:0"
    gpus(0)
    assert devices.default_device() == "cpu"


def test_an_index_at_or_above_the_device_count_is_one_line(gpus):
    gpus(2)
    assert devices.check_device("cuda") == "cuda:0"
    assert devices.check_device("cuda:1") == "cuda:1"
    with pytest.raises(DeviceError, match=r"cuda:2: this host has 2 visible CUDA devices \(cuda:0 to cuda:1\)"):
        devices.check_device("cuda:2")
    gpus(0)
    with pytest.raises(DeviceError, match="no CUDA device is visible"):
        devices.check_device("cuda:0")
    assert devices.check_device("cpu") == "cpu"


def test_gpus_all_and_lists_expand_against_the_visible_count():
    assert devices.gpu_indices("all", 3) == [0, 1, 2]
    assert devices.gpu_indices("0,2", 3) == [0, 2]
    with pytest.raises(ConfigError, match="GPU 4 does not exist here"):
        devices.gpu_indices("4,5", 2)  # CUDA_VISIBLE_DEVICES=4,5: the children are 0 and 1, not 4 and 5
    with pytest.raises(ConfigError, match="no CUDA device is visible"):
        devices.gpu_indices("all", 0)
    with pytest.raises(ConfigError, match="twice"):
        devices.gpu_indices("1,1", 2)


def test_each_child_sees_only_its_own_gpu_named_as_the_launcher_sees_it():
    assert [devices.child_visible_devices(i, None) for i in (0, 1)] == ["0", "1"]
    assert [devices.child_visible_devices(i, "4,5") for i in (0, 1)] == ["4", "5"]
    assert devices.child_visible_devices(1, "GPU-aa, GPU-bb") == "GPU-bb"


def test_the_fake_gpu_seam_counts_like_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv(devices.FAKE_GPUS_ENV, "4")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert devices.visible_gpu_count() == 4
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert devices.visible_gpu_count() == 1 and devices.start_device("cuda") == "cuda:0"


@pytest.mark.parametrize("error", [
    RuntimeError("CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be ..."),
    RuntimeError("CUDA error: device-side assert triggered"),
    RuntimeError("cudaErrorLaunchFailure: unspecified launch failure"),
    RuntimeError("CUBLAS_STATUS_EXECUTION_FAILED when calling `cublasSgemm( handle, opa, opb, ...)`"),
    DeviceFault("cuda:0: injected"),
])
def test_accelerator_errors_are_device_faults(error):
    assert devices.is_device_fault(error)


@pytest.mark.parametrize("error", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("CUDA error: out of memory"),
    RuntimeError("CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
    RuntimeError("Given groups=1, weight of size [16, 3, 3, 3], expected input to have 3 channels"),
    ValueError("loss is nan"),
])
def test_genome_failures_and_oom_are_not_device_faults(error):
    assert not devices.is_device_fault(error)


def test_accelerator_error_type_is_a_device_fault_whatever_its_text():
    error = torch.AcceleratorError.__new__(torch.AcceleratorError)
    assert devices.is_device_fault(error)


def test_an_absent_indexed_device_is_refused_at_start_up_not_recorded_as_a_crash():
    # Before: torch.cuda.reset_peak_memory_stats(cuda:0) ran before CUDA init and raised
    # "Invalid device argument 0: did you call init?" on every evaluation.
    with pytest.raises(DeviceError, match="cuda:0: no CUDA device is visible on this host"):
        evaluate_task(digits_task(), device="cuda:0")


def test_a_device_fault_inside_training_is_raised_not_charged_to_the_genome(monkeypatch):
    def faulting_fit(*args, **kwargs):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(engine, "fit", faulting_fit)
    with pytest.raises(DeviceFault, match="illegal memory access"):
        evaluate_task(digits_task())


def test_a_genuine_crash_inside_training_is_still_the_genomes(monkeypatch):
    def crashing_fit(*args, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (64x10 and 12x10)")

    monkeypatch.setattr(engine, "fit", crashing_fit)
    result = evaluate_task(digits_task())
    assert result.status == "failed" and result.error_kind == "crash"


def _config(strategy: str = "island-ga", kind: str = "classification", **ga):
    from nascli.config import RunConfig

    return RunConfig.model_validate({"run": {"strategy": strategy}, "task": {"kind": kind, "dataset": "digits"}
                                     if kind != "synthetic" else {"kind": "synthetic", "dataset": "synthetic"},
                                     "ga": ga})


def test_nas_run_starts_no_more_gpu_workers_than_the_strategy_keeps_busy(gpus):
    from nascli.driver.workers import plan_local_workers

    gpus(8)
    island5 = plan_local_workers(_config(islands=5, offspring_per_generation=1), None)
    assert (island5.count, island5.devices) == (5, [f"cuda:{i}" for i in range(5)])
    assert island5.note == ("8 GPUs visible, but island-ga keeps at most 5 evaluations in flight: starting 5 local "
                            "workers (--workers 8 starts one per GPU anyway)")
    assert plan_local_workers(_config(islands=4, offspring_per_generation=2), None).count == 8
    assert plan_local_workers(_config("mu-plus-lambda", population=20, offspring_per_generation=3), None).count == 3
    assert plan_local_workers(_config("regularized-evolution", population=6), None).count == 6
    told = plan_local_workers(_config(islands=5), 8)  # told otherwise: as many as asked, round-robin on all GPUs
    assert (told.count, len(told.devices), told.note) == (8, 8, None)
    gpus(2)
    assert plan_local_workers(_config(islands=5), None) == plan_local_workers(_config(islands=5), 2)
    assert plan_local_workers(_config(islands=5), None).note is None
    gpus(0)
    assert (plan_local_workers(_config(), None).count, plan_local_workers(_config(), None).devices) == (1, ["cpu"])
    gpus(8)
    assert plan_local_workers(_config(kind="synthetic"), None).devices == ["cpu"]


def test_nas_run_gpu_workers_each_see_only_their_own_gpu_as_cuda_0():
    from nascli.local_workers import LocalWorkers

    pool = LocalWorkers("sqlite://", "run", 3, devices=["cuda:0", "cuda:1"])
    assert pool._device_of(1, {"CUDA_VISIBLE_DEVICES": "4,5"}) == ("cuda:0", {"CUDA_VISIBLE_DEVICES": "5"})
    assert pool._device_of(2, {}) == ("cuda:0", {"CUDA_VISIBLE_DEVICES": "0"})
    assert LocalWorkers("sqlite://", "run", 1)._device_of(0, {}) == ("cpu", {})
