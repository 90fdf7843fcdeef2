"""Which device a worker trains on: chosen, checked and started once per process; and which
accelerator errors are the host's fault rather than the genome's.

Importing this module does not import torch. A host with no NVIDIA/AMD driver node has no CUDA
device, so `nas worker` there decides "cpu" without paying for the torch import.

`NASCLI_FAKE_GPUS=N` is a test seam: this module then reports N CUDA devices (fewer when
CUDA_VISIBLE_DEVICES lists fewer, as CUDA does) and starting one touches no driver. It lets the
device decisions (default device, index check, `--gpus` expansion, one child per GPU with its own
CUDA_VISIBLE_DEVICES, restarts) run for real on a machine without a GPU, with synthetic tasks.
`NASCLI_INJECT_DEVICE_FAULT=<ids>|all` makes every evaluation on those GPUs (as CUDA_VISIBLE_DEVICES
names them in the worker) fail with a device fault: a real device-side assert on a real GPU
(benchmarks/gpu_check.py), a CUDA-error-shaped RuntimeError on a fake one.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from nascli.errors import ConfigError, DeviceError

FAKE_GPUS_ENV = "NASCLI_FAKE_GPUS"
INJECT_FAULT_ENV = "NASCLI_INJECT_DEVICE_FAULT"
# A worker that gave its task back after a device fault exits with this (EX_OSERR): its launcher
# restarts it, and leaves the GPU out after repeated faults.
EXIT_DEVICE_FAULT = 71

_DRIVER_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/proc/driver/nvidia/version")
_GPU_LIST = re.compile(r"[0-9]+(,[0-9]+)*")
# Messages of accelerator failures that leave the CUDA context unusable (torch raises them as
# torch.AcceleratorError, or RuntimeError in older versions and in cuDNN/cuBLAS wrappers).
_FAULT_MARKERS = ("cuda error", "cudaerror", "illegal memory access", "device-side assert",
                  "unspecified launch failure", "cublas_status", "cudnn_status_execution_failed",
                  "cudnn_status_internal_error", "uncorrectable ecc", "hip error", "hiperror",
                  "nccl error", "misaligned address", "an illegal instruction")
_OOM_MARKERS = ("out of memory", "cublas_status_alloc_failed", "cudnn_status_alloc_failed")


def _visible_list(value: str) -> list[str]:
    return [entry.strip() for entry in value.split(",") if entry.strip()]


def visible_gpu_count() -> int:
    """How many CUDA devices this process can use (0 without a driver or a CUDA build)."""
    fake = os.environ.get(FAKE_GPUS_ENV)
    if fake is not None:
        count = int(fake)
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        return count if visible is None else min(count, len(_visible_list(visible)))
    if "torch" not in sys.modules and not any(Path(node).exists() for node in _DRIVER_NODES):
        return 0
    import torch  # already imported, or a driver is there to ask

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def default_device() -> str:
    """`cuda` when a GPU is visible, else `cpu` (what `nas worker` without --device trains on)."""
    return "cuda:0" if visible_gpu_count() > 0 else "cpu"


def check_device(device: str) -> str:
    """The device in canonical form (`cpu` or `cuda:N`); DeviceError (one line) unless it exists here."""
    if device == "cpu":
        return device
    count = visible_gpu_count()
    index = int(device.partition(":")[2] or 0)
    if count == 0:
        raise DeviceError(f"--device {device}: no CUDA device is visible on this host",
                          "check nvidia-smi and CUDA_VISIBLE_DEVICES, or use --device cpu")
    if index >= count:
        raise DeviceError(f"--device {device}: this host has {count} visible CUDA device"
                          f"{'s' if count > 1 else ''} (cuda:0 to cuda:{count - 1})",
                          f"use an index below {count}, or check CUDA_VISIBLE_DEVICES")
    return f"cuda:{index}"


_started: set[str] = set()


def start_device(device: str) -> str:
    """Check `device`, make it this process's current CUDA device and initialise CUDA, once, before
    any task: later calls that need an initialised device (peak-memory statistics) then work."""
    device = check_device(device)
    if device in _started or not device.startswith("cuda") or os.environ.get(FAKE_GPUS_ENV) is not None:
        return device
    import torch

    try:
        torch.cuda.set_device(torch.device(device))
        torch.cuda.init()
        torch.cuda.current_stream().synchronize()  # creates the context now: a broken GPU fails here
    except RuntimeError as error:
        first = (str(error).strip().splitlines() or [""])[0]
        raise DeviceError(f"cannot start {device}: {first}", "check nvidia-smi; another process may hold the "
                          "GPU in exclusive mode") from error
    _started.add(device)
    return device


def cuda_initialized() -> bool:
    """Whether CUDA has been initialised in this process (imports torch only if it is loaded)."""
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


def gpu_indices(gpus: str, count: int) -> list[int]:
    """`--gpus all|0,1` as indices among the `count` visible devices; ConfigError (one line) otherwise."""
    if gpus == "all":
        if count == 0:
            raise ConfigError("--gpus all: no CUDA device is visible", "check nvidia-smi and CUDA_VISIBLE_DEVICES, "
                              "or run with --device cpu")
        return list(range(count))
    if not _GPU_LIST.fullmatch(gpus):
        raise ConfigError(f"--gpus {gpus!r} is not 'all' or a list of GPU indices", "e.g. --gpus all or --gpus 0,1")
    indices = [int(i) for i in gpus.split(",")]
    if len(set(indices)) != len(indices):
        raise ConfigError(f"--gpus {gpus!r} lists a GPU twice", "name each GPU once, e.g. --gpus 0,1")
    too_high = [i for i in indices if i >= count]
    if too_high:
        seen = f"{count} visible CUDA device{'s' if count != 1 else ''}"
        raise ConfigError(f"--gpus {gpus}: GPU {too_high[0]} does not exist here ({seen})",
                          "use indices below the device count, counted within CUDA_VISIBLE_DEVICES")
    return indices


def child_visible_devices(index: int, parent_visible: str | None) -> str:
    """The CUDA_VISIBLE_DEVICES of the child that owns visible GPU `index`: the parent's own entry
    for it (so CUDA_VISIBLE_DEVICES=4,5 and --gpus 0,1 give the children 4 and 5), each child then
    seeing its GPU as cuda:0."""
    if parent_visible is None:
        return str(index)
    return _visible_list(parent_visible)[index]


def is_oom(error: BaseException) -> bool:
    if type(error).__name__ == "OutOfMemoryError" or isinstance(error, MemoryError):
        return True
    text = str(error).lower()
    return any(marker in text for marker in _OOM_MARKERS)


def is_device_fault(error: BaseException) -> bool:
    """A non-OOM accelerator failure (the host's fault: the genome is not to blame)."""
    if isinstance(error, DeviceError):
        return True
    if is_oom(error):
        return False
    if type(error).__name__ == "AcceleratorError":
        return True
    if not isinstance(error, RuntimeError):
        return False
    text = str(error).lower()
    return any(marker in text for marker in _FAULT_MARKERS)


def inject_fault_if_asked(device: str) -> None:
    """The NASCLI_INJECT_DEVICE_FAULT test seam (see the module docstring); nothing when unset."""
    wanted = os.environ.get(INJECT_FAULT_ENV)
    if not wanted or not device.startswith("cuda"):
        return
    here = os.environ.get("CUDA_VISIBLE_DEVICES", device.partition(":")[2] or "0")
    if wanted != "all" and here not in _visible_list(wanted):
        return
    if os.environ.get(FAKE_GPUS_ENV) is not None:
        raise RuntimeError(f"CUDA error: an illegal memory access was encountered ({INJECT_FAULT_ENV} on GPU {here})")
    import torch

    values = torch.zeros(2, device=device)
    values[torch.tensor([1 << 20], device=device)] += 1  # out of bounds on the device: device-side assert
    torch.cuda.synchronize(device)


__all__ = ["EXIT_DEVICE_FAULT", "FAKE_GPUS_ENV", "INJECT_FAULT_ENV", "check_device", "child_visible_devices",
           "cuda_initialized", "default_device", "gpu_indices", "inject_fault_if_asked", "is_device_fault", "is_oom",
           "start_device", "visible_gpu_count"]
