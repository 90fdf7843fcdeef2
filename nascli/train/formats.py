"""Readers for the on-disk formats torchvision downloads, in plain numpy.

We read the files ourselves instead of through torchvision's dataset classes: those re-check md5
sums on every load (seconds for CIFAR-10) and refuse anything but the exact published files, which
makes small test files impossible. torchvision is only used to download (see `nascli.train.data`).
Every reader returns images as uint8 arrays shaped (N, C, H, W) and labels as int64 (N,).
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

# IDX type codes (http://yann.lecun.com/exdb/mnist/): only unsigned bytes occur in (Fashion-)MNIST.
_IDX_UBYTE = 0x08


class FormatError(ValueError):
    """A file exists but is not in the expected format (truncated download, wrong file)."""


def find_idx_file(folder: Path, stem: str) -> Path | None:
    """`stem` as a raw file or gzipped (`stem.gz`), raw first; None when neither exists."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (raw or .gz) as a numpy array of its declared shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise FormatError(f"{path} is not an IDX file (bad magic number)")
    if data[2] != _IDX_UBYTE:
        raise FormatError(f"{path}: IDX type {data[2]:#x} is not unsigned byte")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) if shape else 0
    if len(data) - header != expected:
        raise FormatError(f"{path}: header says {expected} bytes of data, file has {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_idx_images_labels(folder: Path, images_stem: str, labels_stem: str) -> tuple[np.ndarray, np.ndarray]:
    images_path, labels_path = find_idx_file(folder, images_stem), find_idx_file(folder, labels_stem)
    if images_path is None or labels_path is None:
        missing = images_stem if images_path is None else labels_stem
        raise FileNotFoundError(folder / missing)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise FormatError(f"{folder}: {images_stem} {images.shape} does not match {labels_stem} {labels.shape}")
    return images[:, None, :, :].copy(), labels.astype(np.int64)


# Everything a CIFAR-10 python batch (pickled by Python 2 with numpy 1, or re-pickled with numpy 2)
# may name: the array reconstructors and types, and `_codecs.encode` (how protocols 0-2 spell bytes).
# Dicts, lists, strings and ints need no global.
_CIFAR_GLOBALS = frozenset({
    ("_codecs", "encode"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
})


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain data and numpy arrays only: any other global (os.system, builtins.eval, ...)
    is refused before it is looked up, so a crafted file cannot run code."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _CIFAR_GLOBALS:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: a CIFAR-10 batch holds only arrays")
        import warnings

        with warnings.catch_warnings():  # numpy 2 warns when old pickles name numpy.core
            warnings.simplefilter("ignore", DeprecationWarning)
            return super().find_class(module, name)


def load_array_pickle(handle) -> object:
    """A pickle of plain data and numpy arrays (latin-1 for Python 2 strings), nothing else."""
    return _ArrayOnlyUnpickler(handle, encoding="latin1").load()


CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"


def read_cifar_batches(folder: Path, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 "python version" batches: pickled dicts with `data` (N, 3072) and `labels`."""
    images, labels = [], []
    for name in names:
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(path)
        with open(path, "rb") as handle:
            try:
                entry = load_array_pickle(handle)
            except Exception as exc:  # truncated, not a pickle, or naming anything but arrays
                raise FormatError(f"{path} is not a CIFAR-10 python batch: {exc}") from None
        if not isinstance(entry, dict) or "data" not in entry:
            raise FormatError(f"{path} is not a CIFAR-10 python batch: no 'data' entry")
        data = np.asarray(entry["data"], dtype=np.uint8)
        batch_labels = entry.get("labels", entry.get("fine_labels"))
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or batch_labels is None or len(batch_labels) != len(data):
            raise FormatError(f"{path}: expected data (N, 3072) and N labels")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch_labels, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


STL10_SIZE = 96


def read_stl10(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """STL-10 binary: `{split}_X.bin` uint8 images stored column-major per channel, `{split}_y.bin`
    labels 1..10 (we return 0..9)."""
    images_path, labels_path = folder / f"{split}_X.bin", folder / f"{split}_y.bin"
    for path in (images_path, labels_path):
        if not path.is_file():
            raise FileNotFoundError(path)
    raw = np.fromfile(images_path, dtype=np.uint8)
    pixels = 3 * STL10_SIZE * STL10_SIZE
    if raw.size % pixels:
        raise FormatError(f"{images_path}: size {raw.size} is not a multiple of 3x96x96")
    # Column-major within each channel: the file's (w, h) order is transposed to (h, w).
    images = raw.reshape(-1, 3, STL10_SIZE, STL10_SIZE).transpose(0, 1, 3, 2).copy()
    labels = np.fromfile(labels_path, dtype=np.uint8).astype(np.int64) - 1
    if len(labels) != len(images) or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise FormatError(f"{labels_path}: expected {len(images)} labels in 1..10")
    return images, labels
