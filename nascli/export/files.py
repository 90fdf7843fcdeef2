"""Output paths for exports: taken literally, never silently overwritten, hashed after writing."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from nascli.errors import ExportError


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def prepare_directory(out: Path | None, names: Iterable[str], *, force: bool) -> Path:
    """Create `out` (parents too) and check none of `names` exists in it unless `force`.

    The path is used as given (relative to the working directory, `..` kept as written): we only
    refuse what would destroy data. Checked before anything is written, so a refused export
    leaves the directory as it was.
    """
    if out is None:
        raise ExportError("no output directory given", hint="pass --out DIR (it is created if missing)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} exists and is not a directory",
                          hint="choose a directory path; with --all --out names a file")
    existing = sorted(name for name in names if (out / name).exists())
    if existing and not force:
        raise ExportError(f"{out} already holds {', '.join(existing)}",
                          hint="pass --force to overwrite, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def prepare_file(out: Path | None, *, force: bool, suffix: str) -> Path:
    """The single output file of `nas export --all`."""
    if out is None:
        raise ExportError("no output file given", hint=f"pass --out FILE{suffix}")
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"--out {out} is a directory", hint=f"with --all, --out names a file, e.g. {out / ('run' + suffix)}")
    if out.exists() and not force:
        raise ExportError(f"{out} already exists", hint="pass --force to overwrite, or choose another --out")
    if not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    return out


def write_atomically(path: Path, data: bytes | str) -> None:
    """Write to a temporary sibling, then rename: a crash never leaves half a file under the final name."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(temporary, mode, **({} if isinstance(data, bytes) else {"encoding": "utf-8"})) as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
