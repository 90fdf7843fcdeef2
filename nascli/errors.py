"""Errors a user can cause. The CLI renders any NascliError as one line plus a hint, exit code 2
(a kind of error with its own `exit_code` says so)."""

from __future__ import annotations


class NascliError(Exception):
    """A problem the user can fix. `message` says what is wrong, `hint` how to fix it."""

    kind = "error"
    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class ConfigError(NascliError):
    kind = "config"


class GenomeError(NascliError):
    kind = "genome"


class StoreError(NascliError):
    kind = "store"


class StorePrivilegeError(StoreError):
    """The database role lacks a privilege nascli needs: no retry helps, an administrator must grant it."""


class DatasetError(NascliError):
    kind = "dataset"


class RunNotFoundError(StoreError):
    kind = "run"


class ExportError(NascliError):
    kind = "export"


class DeviceError(NascliError):
    """This host's accelerator cannot be used as asked (absent, index out of range, cannot start).
    A property of the host, never of a genome."""

    kind = "device"


class DeviceFault(DeviceError):
    """The accelerator failed while training (illegal memory access, device-side assert, any
    non-OOM CUDA error). The CUDA context is unusable afterwards: the worker gives its task back
    and exits with `nascli.devices.EXIT_DEVICE_FAULT` so that its launcher can restart it."""

    kind = "device_fault"


class FileWriteError(NascliError):
    kind = "file"


class RunBusy(NascliError):
    """Another driver is alive and holds the run (its liveness token): not bad input, so exit 3."""

    kind = "busy"
    exit_code = 3


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a driver after it had cleaned up: the CLI says how to continue."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id
