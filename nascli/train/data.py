"""Dataset registry, fixed splits and device-resident tensors.

Three layers, each cached per process so a worker loads a dataset once and reuses it across tasks:
1. `load_raw(name, data_dir)`: the dataset's train and test sets as uint8 numpy arrays (N, C, H, W),
   read from its real on-disk format (downloaded once per data directory under a file lock).
2. `split_indices(...)`: train / validation indices from the training set with a fixed seed (every
   individual of every run sees the same split); the test set stays separate.
3. `load_dataset(spec, device)`: float32 tensors on the device, scaled with statistics of the
   training split only. Trainers slice batches out of these by index; no per-sample DataLoader.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nascli.errors import DatasetError
from nascli.train import formats

# Every split derives from this seed, never from the task's: all individuals share one split.
SPLIT_SEED = 20_240_611
DIGITS_TEST_FRACTION = 1 / 6
SYNTHETIC_TRAIN_SIZE = 1200
SYNTHETIC_TEST_SIZE = 300
# Resident splits kept per process (two cover a worker alternating between two runs).
RESIDENT_CACHE_SIZE = 2
OFFLINE_ENV = "NASCLI_OFFLINE"

Scaling = Literal["standardize", "symmetric"]


@dataclass(frozen=True)
class RawDataset:
    """A dataset as stored: uint8 images (N, C, H, W) in [0, max_value] and int64 labels."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: int
    max_value: float = 255.0

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])


@dataclass(frozen=True)
class DatasetSpec:
    """What to load: the dataset, where, how to split and scale. Hashable (the cache key)."""

    name: str
    data_dir: str
    val_fraction: float = 1 / 11
    scaling: Scaling = "standardize"
    synthetic_shape: tuple[int, int, int] = (1, 8, 8)
    synthetic_classes: int = 10

    @classmethod
    def from_task(cls, task: Mapping[str, Any], *, scaling: Scaling = "standardize") -> DatasetSpec:
        from nascli.config import data_dir_of

        return cls(
            name=str(task.get("dataset", "digits")),
            data_dir=str(data_dir_of(task)),
            val_fraction=float(task.get("val_fraction", 1 / 11)),
            scaling=scaling,
            synthetic_shape=tuple(task.get("synthetic_shape", (1, 8, 8))),
            synthetic_classes=int(task.get("synthetic_classes", 10)),
        )


# --- registry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    folder: str  # where the files live below data_dir (torchvision's layout, so its downloads fit)
    files: tuple[str, ...]  # what must exist (IDX files may also be .gz)
    torchvision: str  # the torchvision dataset class that downloads it
    splits: tuple[dict[str, Any], ...]  # constructor arguments that fetch everything we read


_SOURCES: dict[str, _Source] = {
    "mnist": _Source("MNIST/raw", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                   "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
                     "MNIST", ({"train": True}, {"train": False})),
    "fashion-mnist": _Source("FashionMNIST/raw", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                  "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
                             "FashionMNIST", ({"train": True}, {"train": False})),
    "cifar10": _Source("cifar-10-batches-py", formats.CIFAR10_TRAIN_BATCHES + (formats.CIFAR10_TEST_BATCH,),
                       "CIFAR10", ({"train": True},)),
    "stl10": _Source("stl10_binary", ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin"),
                     "STL10", ({"split": "train"},)),
}
DATASETS = ("digits", *_SOURCES, "synthetic")
DOWNLOADABLE = tuple(_SOURCES)  # the datasets that live in files under task.data_dir


def _missing_files(source: _Source, folder: Path) -> list[str]:
    """The required files that are missing (IDX files count as present when gzipped)."""
    missing = []
    for name in source.files:
        present = formats.find_idx_file(folder, name) is not None if "idx" in name else (folder / name).is_file()
        if not present:
            missing.append(name)
    return missing


def _unavailable(name: str, folder: Path, source: _Source, reason: str) -> DatasetError:
    files = ", ".join(source.files)
    return DatasetError(
        f"dataset {name!r} is not in {folder} and {reason}",
        hint=f"connect to the network once so it downloads, or copy torchvision's files ({files}) into {folder}; "
        "task.data_dir selects another directory",
    )


def ensure_files(name: str, data_dir: Path, *, download: bool = True) -> Path:
    """The folder holding `name`'s files, downloading them once (under a lock) when missing."""
    source = _SOURCES[name]
    folder = data_dir / source.folder
    if not _missing_files(source, folder):
        return folder
    if not download or os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        raise _unavailable(name, folder, source, "downloading is disabled")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unavailable(name, folder, source, f"the directory cannot be created ({exc.strerror})") from None
    from filelock import FileLock

    # Several workers on one host start together: one downloads, the others wait and then find the files.
    # filelock opens the lock file with O_NOFOLLOW: a link planted at its name is refused, not followed.
    lock_path = data_dir / f".{name}.download.lock"
    try:
        lock = FileLock(str(lock_path))
        lock.acquire()
    except OSError as exc:
        raise DatasetError(f"cannot lock {lock_path}: {exc.strerror or exc}",
                           hint="remove that file if it is a symbolic link, or choose another task.data_dir") from None
    try:
        if _missing_files(source, folder):  # still missing after waiting for the lock
            try:
                _download(source, data_dir)
            except DatasetError:
                raise
            except Exception as exc:  # offline, DNS, HTTP error, checksum: all one message for the user
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise _unavailable(name, folder, source, f"the download failed ({reason})") from None
        missing = _missing_files(source, folder)
        if missing:
            raise _unavailable(name, folder, source, f"the download did not provide {', '.join(missing)}")
    finally:
        lock.release()
    return folder


def _download(source: _Source, data_dir: Path) -> None:
    from nascli.train.download import download_staged  # a planted symlink cannot redirect it

    download_staged(source.torchvision, source.splits, source.folder, data_dir)


def _read(name: str, folder: Path) -> RawDataset:
    try:
        if name in ("mnist", "fashion-mnist"):
            train = formats.read_idx_images_labels(folder, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")
            test = formats.read_idx_images_labels(folder, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
        elif name == "cifar10":
            train = formats.read_cifar_batches(folder, formats.CIFAR10_TRAIN_BATCHES)
            test = formats.read_cifar_batches(folder, (formats.CIFAR10_TEST_BATCH,))
        else:
            train, test = formats.read_stl10(folder, "train"), formats.read_stl10(folder, "test")
    except formats.FormatError as exc:
        raise DatasetError(f"dataset {name!r}: {exc}",
                           hint=f"delete the damaged files in {folder} so they download again") from None
    return RawDataset(name, train[0], train[1], test[0], test[1], classes=10)


def _digits() -> RawDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.uint8)[:, None, :, :]  # integer intensities 0..16
    labels = bunch.target.astype(np.int64)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    n_test = round(len(images) * DIGITS_TEST_FRACTION)
    test, train = order[:n_test], order[n_test:]
    return RawDataset("digits", images[train], labels[train], images[test], labels[test], classes=10, max_value=16.0)


def synthetic_images(shape: tuple[int, int, int], classes: int, *, train_size: int = SYNTHETIC_TRAIN_SIZE,
                     test_size: int = SYNTHETIC_TEST_SIZE, seed: int = SPLIT_SEED) -> RawDataset:
    """Smooth, learnable images: each class is a sum of random plane waves; samples vary its contrast
    and add pixel noise. Deterministic for a seed."""
    channels, height, width = shape
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(height) / height, np.arange(width) / width, indexing="ij")
    prototypes = np.zeros((classes, channels, height, width))
    for _wave in range(3):
        freq_y, freq_x = rng.integers(0, 3, size=(2, classes, channels, 1, 1))
        phase = rng.uniform(0, 2 * np.pi, size=(classes, channels, 1, 1))
        prototypes += np.sin(2 * np.pi * (freq_y * yy + freq_x * xx) + phase)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, classes, size=n)
        contrast = rng.uniform(0.6, 1.0, size=(n, 1, 1, 1))
        images = prototypes[labels] * contrast + rng.normal(0, 0.4, size=(n, channels, height, width))
        return np.clip(128 + 36 * images, 0, 255).astype(np.uint8), labels.astype(np.int64)

    train_x, train_y = sample(train_size)
    test_x, test_y = sample(test_size)
    return RawDataset("synthetic", train_x, train_y, test_x, test_y, classes=classes)


@lru_cache(maxsize=8)
def load_raw(name: str, data_dir: str, *, download: bool = True,
             synthetic_shape: tuple[int, int, int] = (1, 8, 8), synthetic_classes: int = 10) -> RawDataset:
    """A dataset's train and test sets (cached per process)."""
    if name == "digits":
        return _digits()
    if name == "synthetic":
        channels, height, width = synthetic_shape  # a list when read back from JSON
        return synthetic_images((channels, height, width), synthetic_classes)
    if name not in _SOURCES:
        raise DatasetError(f"unknown dataset {name!r}", hint=f"choose one of {', '.join(DATASETS)}")
    return _read(name, ensure_files(name, Path(data_dir), download=download))


def raw_of(spec: DatasetSpec, *, download: bool = True) -> RawDataset:
    return load_raw(spec.name, spec.data_dir, download=download, synthetic_shape=tuple(spec.synthetic_shape),
                    synthetic_classes=spec.synthetic_classes)


# --- splits --------------------------------------------------------------------------------------


def split_indices(n: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices of a training set of n samples: fixed seed, at least one of each."""
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def kfold_indices(n: int, folds: int, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices of fold `fold` of `folds` over n samples (fixed seed)."""
    if not 2 <= folds <= n:
        raise DatasetError(f"train.kfolds = {folds} needs between 2 and {n} training samples per fold set",
                           hint="lower train.kfolds")
    parts = np.array_split(np.random.default_rng(SPLIT_SEED).permutation(n), folds)
    val = parts[fold]
    train = np.concatenate([p for i, p in enumerate(parts) if i != fold])
    return np.sort(train), np.sort(val)


# --- device-resident tensors ---------------------------------------------------------------------


@dataclass
class ResidentData:
    """Train / validation / test tensors on one device, scaled with training-split statistics."""

    name: str
    classes: int
    train_x: Any
    train_y: Any
    val_x: Any
    val_y: Any
    test_x: Any
    test_y: Any

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])


def make_resident(raw: RawDataset, train_idx: np.ndarray, val_idx: np.ndarray, device: Any,
                  scaling: Scaling = "standardize") -> ResidentData:
    """Move the chosen samples to `device` as float32; scale with statistics of `train_idx` only."""
    import torch

    def tensor(images: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(images)).to(device).float()

    def labels(values: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(values)).to(device)

    return _scaled(raw, tensor(raw.train_x[train_idx]), labels(raw.train_y[train_idx]), tensor(raw.train_x[val_idx]),
                   labels(raw.train_y[val_idx]), tensor(raw.test_x), labels(raw.test_y), device, scaling)


def _scaled(raw: RawDataset, train_x: Any, train_y: Any, val_x: Any, val_y: Any, test_x: Any, test_y: Any,
            device: Any, scaling: Scaling) -> ResidentData:
    """Scale (in place) with the training part's statistics, then store the images channels_last,
    once: the trainer's batches are index slices of these and stay channels_last without a copy."""
    import torch

    if scaling == "standardize":
        mean = train_x.mean(dim=(0, 2, 3), keepdim=True)
        std = train_x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    else:  # "symmetric": [-1, 1], the range of an autoencoder's tanh output
        mean = torch.tensor(raw.max_value / 2, device=device)
        std = mean
    for x in (train_x, val_x, test_x):
        x.sub_(mean).div_(std)
    train_x, val_x, test_x = (x.contiguous(memory_format=torch.channels_last) for x in (train_x, val_x, test_x))
    return ResidentData(raw.name, raw.classes, train_x, train_y, val_x, val_y, test_x, test_y)


@dataclass(frozen=True)
class _Uploaded:
    """A dataset's whole training and test sets on one device, unscaled (k-fold's source)."""

    key: tuple
    train_x: Any
    train_y: Any
    test_x: Any
    test_y: Any


_uploaded: _Uploaded | None = None  # one dataset at a time: the folds of consecutive evaluations share it


def _uploaded_once(spec: DatasetSpec, raw: RawDataset, device: Any) -> _Uploaded:
    global _uploaded
    import torch

    key = (spec.name, spec.data_dir, spec.synthetic_shape, spec.synthetic_classes, str(device))
    with _resident_lock:
        if _uploaded is not None and _uploaded.key == key:
            return _uploaded
        _uploaded = None  # free the previous dataset's device memory first

    def upload(array: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(array)).to(device)

    uploaded = _Uploaded(key, upload(raw.train_x).float(), upload(raw.train_y), upload(raw.test_x).float(),
                         upload(raw.test_y))
    with _resident_lock:
        _uploaded = uploaded
    return uploaded


_resident: OrderedDict[tuple, ResidentData] = OrderedDict()
_resident_lock = threading.Lock()


def load_dataset(spec: DatasetSpec, device: Any = "cpu", *, download: bool = True) -> ResidentData:
    """The spec's standard split as device-resident tensors, loaded once per process and reused."""
    key = (spec, str(device))
    with _resident_lock:
        if key in _resident:
            _resident.move_to_end(key)
            return _resident[key]
    raw = raw_of(spec, download=download)
    train_idx, val_idx = split_indices(len(raw.train_x), spec.val_fraction)
    data = make_resident(raw, train_idx, val_idx, device, spec.scaling)
    with _resident_lock:
        _resident[key] = data
        while len(_resident) > RESIDENT_CACHE_SIZE:
            _resident.popitem(last=False)
    return data


def load_fold(spec: DatasetSpec, device: Any, folds: int, fold: int, *, download: bool = True) -> ResidentData:
    """One fold of k-fold cross-validation over the whole training set. The whole set goes to the
    device once per process (and stays while folds of the same dataset are asked for); each fold is
    selected and scaled there, never uploaded again. Folds themselves are not cached: k scaled copies
    of a large dataset would not fit beside each other."""
    import torch

    raw = raw_of(spec, download=download)
    train_idx, val_idx = kfold_indices(len(raw.train_x), folds, fold)
    whole = _uploaded_once(spec, raw, device)
    train_at, val_at = (torch.from_numpy(idx).to(whole.train_x.device) for idx in (train_idx, val_idx))
    return _scaled(raw, whole.train_x[train_at], whole.train_y[train_at], whole.train_x[val_at], whole.train_y[val_at],
                   whole.test_x.clone(), whole.test_y, device, spec.scaling)


def clear_cache() -> None:
    """Forget every resident and raw dataset (tests; freeing device memory)."""
    global _uploaded
    with _resident_lock:
        _resident.clear()
        _uploaded = None
    load_raw.cache_clear()
