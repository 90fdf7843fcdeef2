"""Dataset downloads that a symlink planted in `task.data_dir` cannot redirect.

torchvision writes its archives and extracted files with plain `open(path, "wb")`, following any
symlink already at those names. So it downloads into a fresh private directory inside data_dir
(`mkdtemp`: created exclusively, mode 0700, nothing in it but what torchvision writes), and only
the dataset's files are then moved into place with `os.replace`, which replaces a directory entry
and never writes through a link. A dataset folder (or a folder above it, below data_dir) that is
itself a symlink is refused: its files would land wherever it points. The archive is not kept.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nascli.errors import DatasetError


def refuse_linked_folders(data_dir: Path, folder: str) -> None:
    """DatasetError when `folder` (relative to data_dir) or a folder between them is a symlink."""
    path = data_dir
    for part in Path(folder).parts:
        path = path / part
        if path.is_symlink():
            raise DatasetError(f"{path} is a symbolic link; nascli does not download through links",
                               hint=f"remove the link, or put the dataset's files into {path.resolve()} yourself")


def download_staged(torchvision_class: str, splits: Iterable[dict[str, Any]], folder: str, data_dir: Path) -> None:
    """Download with torchvision into a private staging directory, then move `folder`'s files to
    data_dir/folder. Raises whatever torchvision raises (the caller turns it into one line)."""
    import torchvision.datasets

    refuse_linked_folders(data_dir, folder)
    dataset_class = getattr(torchvision.datasets, torchvision_class)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=data_dir))
    try:
        for arguments in splits:
            dataset_class(str(staging), download=True, **arguments)
        _move_files(staging / folder, data_dir / folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_files(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)  # the folders on the way were checked: none is a link
    refuse_linked_folders(target.parent, target.name)  # nor did one appear since
    for entry in source.iterdir():
        if entry.is_file() and not entry.is_symlink():
            os.replace(entry, target / entry.name)


__all__ = ["download_staged", "refuse_linked_folders"]
