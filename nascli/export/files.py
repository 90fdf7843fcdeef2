"""Output paths for exports: taken literally, never silently overwritten, hashed after writing."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from nascli.errors import ExportError
from nascli.safe_files import check_target, ensure_directory, refuse_existing


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def prepare_directory(out: Path | None, names: Iterable[str], *, force: bool) -> Path:
    """Create `out` (parents too) and check every one of `names` in it can be written (no symlink,
    nothing existing unless `force`) before anything is written, so a refused export leaves the
    directory as it was. The path is used as given (relative to the working directory)."""
    if out is None:
        raise ExportError("no output directory given", hint="pass --out DIR (it is created if missing)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} exists and is not a directory",
                          hint="choose a directory path; with --all --out names a file")
    names = list(names)
    existing = sorted(name for name in names if os.path.lexists(out / name) and not (out / name).is_symlink())
    if existing and not force:
        raise ExportError(f"{out} already holds {', '.join(existing)}",
                          hint="pass --force to overwrite, or choose another --out")
    ensure_directory(out)
    refuse_existing(out, names, force=force)
    return out


def prepare_file(out: Path | None, *, force: bool, suffix: str) -> Path:
    """The single output file of `nas export --all`."""
    if out is None:
        raise ExportError("no output file given", hint=f"pass --out FILE{suffix}")
    out = Path(out)
    if out.is_dir() and not out.is_symlink():
        raise ExportError(f"--out {out} is a directory",
                          hint=f"with --all, --out names a file, e.g. {out / ('run' + suffix)}")
    if out.exists() and not out.is_symlink() and not force:
        raise ExportError(f"{out} already exists", hint="pass --force to overwrite, or choose another --out")
    ensure_directory(out.parent)
    check_target(out, force=force)
    return out
