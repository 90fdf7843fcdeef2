"""Every file nascli creates on a path a user chose goes through here.

A file is written to a fresh temporary sibling (created with O_EXCL|O_NOFOLLOW, so nothing already
there is opened), fsynced, then moved onto its name: a crash never leaves half a file under the
final name, and a failed write removes its temporary file. The target must lie in the chosen
directory and must not be a symlink; an existing file is replaced only with `force`. Any OSError
(read-only, not a directory, disk full, permission) becomes a one-line `FileWriteError`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from nascli.errors import FileWriteError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def describe_os_error(error: OSError, path: Path | str, action: str = "write") -> FileWriteError:
    """One line for an OSError: what failed, where, and how to fix it."""
    reason = os.strerror(error.errno) if error.errno else str(error)
    hints = {
        errno.ENOSPC: "free some space on that disk, or choose another directory",
        errno.EDQUOT: "free some space (disk quota exceeded), or choose another directory",
        errno.EROFS: "the file system is read-only: choose a writable directory",
        errno.EACCES: "choose a directory you can write to",
        errno.EPERM: "choose a directory you can write to",
        errno.ENOTDIR: "a part of the path is a file, not a directory: choose another path",
        errno.EEXIST: "pass --force to overwrite, or choose another path",
        errno.ELOOP: "the path is a symlink: remove it or choose another path",
    }
    return FileWriteError(f"cannot {action} {path}: {reason}",
                          hint=hints.get(error.errno or 0, "check the path and its permissions"))


def ensure_directory(directory: Path | str) -> Path:
    """Create `directory` (parents too); an existing non-directory or an OSError is one line."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise FileWriteError(f"{directory} exists and is not a directory", hint="choose a directory path")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise describe_os_error(error, directory, "create the directory") from None
    return directory


def check_target(path: Path | str, *, root: Path | str | None = None, force: bool = False) -> Path:
    """Refuse `path` if it is a symlink, lies outside `root` (default: its own directory), or exists
    without `force`. Returns the path unchanged."""
    path = Path(path)
    if path.is_symlink():
        raise FileWriteError(f"{path} is a symlink; nascli does not write through links",
                             hint="remove the link or choose another path")
    base = Path(root) if root is not None else path.parent
    try:
        inside = path.parent.resolve().is_relative_to(base.resolve())
    except OSError as error:
        raise describe_os_error(error, path) from None
    if not inside:
        raise FileWriteError(f"{path} resolves outside {base}", hint="choose a path inside the output directory")
    if path.exists() and not force:
        what = "a directory" if path.is_dir() else "a file"
        raise FileWriteError(f"{path} already exists ({what})",
                             hint="pass --force to overwrite, or choose another path")
    if path.is_dir():
        raise FileWriteError(f"{path} is a directory", hint="choose a file path")
    return path


def refuse_existing(directory: Path, names: Iterable[str], *, force: bool) -> None:
    """Check every one of `names` in `directory` before anything is written, so a refusal leaves the
    directory as it was."""
    for name in names:
        check_target(directory / name, root=directory, force=force)


def _create_temporary(directory: Path, name: str) -> tuple[int, Path]:
    """A new file next to `name` with an unpredictable name, created exclusively (never follows a link)."""
    for _ in range(100):
        temporary = directory / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o644)
        except FileExistsError:
            continue
        return fd, temporary
    raise FileWriteError(f"cannot create a temporary file in {directory}", hint="check the directory")


def _fsync_directory(directory: Path) -> None:
    try:  # makes the rename durable (best effort: not every file system allows it)
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: Path | str, *, force: bool = False, root: Path | str | None = None) -> Iterator[BinaryIO]:
    """Yield a binary handle; on a clean exit the bytes appear under `path` whole, otherwise nothing does."""
    path = check_target(path, root=root, force=force)
    try:
        fd, temporary = _create_temporary(path.parent, path.name)
    except OSError as error:
        raise describe_os_error(error, path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _publish(temporary, path, force=force)
    except OSError as error:
        _remove(temporary)
        raise describe_os_error(error, path) from None
    except BaseException:
        _remove(temporary)
        raise
    _fsync_directory(path.parent)


def _publish(temporary: Path, path: Path, *, force: bool) -> None:
    """Move the finished temporary file onto `path`; without `force`, never onto an existing name
    (a hard link fails if the name appeared since the check)."""
    if force:
        os.replace(temporary, path)
        return
    try:
        os.link(temporary, path, follow_symlinks=False)
    except FileExistsError:
        raise FileWriteError(f"{path} already exists",
                             hint="pass --force to overwrite, or choose another path") from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        check_target(path, force=False)  # a file system without hard links: check, then rename
        os.replace(temporary, path)
        return
    os.unlink(temporary)


def _remove(temporary: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(temporary)


def write_file(path: Path | str, data: bytes | str, *, force: bool = False, root: Path | str | None = None) -> Path:
    """Write `data` (text as UTF-8) to `path` atomically; see `atomic_writer`."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_writer(path, force=force, root=root) as handle:
        handle.write(payload)
    return Path(path)


@contextlib.contextmanager
def scratch_file(directory: Path | str, name: str) -> Iterator[tuple[BinaryIO, Path]]:
    """A temporary file in `directory` for the caller's own use (created exclusively, unpredictable name),
    removed when the block ends, however it ends."""
    directory = Path(directory)
    try:
        fd, temporary = _create_temporary(directory, name)
    except OSError as error:
        raise describe_os_error(error, directory / name) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle, temporary
    except OSError as error:
        raise describe_os_error(error, directory / name) from None
    finally:
        _remove(temporary)


def open_lock_file(path: Path | str) -> int:
    """A descriptor of a lock file (for flock), created if absent; never through a symlink, never
    truncated (another process may hold it)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o644)
    except OSError as error:
        raise describe_os_error(error, path, "open the lock file") from None


def open_append(path: Path | str) -> BinaryIO:
    """Open a log file for appending; never through a symlink."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o644)
    except OSError as error:
        raise describe_os_error(error, path, "open the log") from None
    return os.fdopen(fd, "ab")
