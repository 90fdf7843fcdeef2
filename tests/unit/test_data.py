"""Dataset loaders on small files in the real on-disk formats, fixed splits, residency, offline errors."""

from __future__ import annotations

import gzip
import pickle
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from nascli.errors import DatasetError
from nascli.train import data as data_mod
from nascli.train.data import DatasetSpec, load_dataset, load_raw, split_indices


@pytest.fixture(autouse=True)
def fresh_cache():
    data_mod.clear_cache()
    yield
    data_mod.clear_cache()


def _images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def _write_idx(path: Path, array: np.ndarray, *, gz: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(f"{path}.gz", "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


def _write_mnist(root: Path, folder: str) -> dict[str, np.ndarray]:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    arrays = {"train_x": _images(30, (28, 28), 1), "train_y": np.arange(30) % 10,
              "test_x": _images(12, (28, 28), 2), "test_y": (np.arange(12) * 3) % 10}
    # Train files gzipped (as downloaded), test files extracted: both forms must load.
    _write_idx(raw / "train-images-idx3-ubyte", arrays["train_x"], gz=True)
    _write_idx(raw / "train-labels-idx1-ubyte", arrays["train_y"], gz=True)
    _write_idx(raw / "t10k-images-idx3-ubyte", arrays["test_x"], gz=False)
    _write_idx(raw / "t10k-labels-idx1-ubyte", arrays["test_y"], gz=False)
    return arrays


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_family_reads_idx_files(tmp_path, name, folder):
    arrays = _write_mnist(tmp_path, folder)
    raw = load_raw(name, str(tmp_path), download=False)
    assert raw.train_x.shape == (30, 1, 28, 28) and raw.test_x.shape == (12, 1, 28, 28)
    np.testing.assert_array_equal(raw.train_x[:, 0], arrays["train_x"])
    np.testing.assert_array_equal(raw.test_y, arrays["test_y"])
    assert raw.train_y.dtype == np.int64


def test_cifar10_reads_python_pickle_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    expected = []
    for i, name in enumerate([*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]):
        images = _images(4, (3, 32, 32), 10 + i)
        labels = [(i + j) % 10 for j in range(4)]
        with open(folder / name, "wb") as handle:
            pickle.dump({"data": images.reshape(4, -1), "labels": labels, "batch_label": name}, handle)
        expected.append((images, labels))
    raw = load_raw("cifar10", str(tmp_path), download=False)
    assert raw.shape == (3, 32, 32) and len(raw.train_x) == 20 and len(raw.test_x) == 4
    np.testing.assert_array_equal(raw.train_x[4:8], expected[1][0])  # channel-major rows -> (3, 32, 32)
    np.testing.assert_array_equal(raw.test_y, expected[5][1])


def test_stl10_reads_column_major_binary(tmp_path):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    train, test = _images(3, (3, 96, 96), 20), _images(2, (3, 96, 96), 21)
    for split, images, labels in (("train", train, [1, 10, 5]), ("test", test, [2, 3])):
        # The file stores each channel column-major: (w, h) order.
        (folder / f"{split}_X.bin").write_bytes(images.transpose(0, 1, 3, 2).tobytes())
        (folder / f"{split}_y.bin").write_bytes(bytes(labels))
    raw = load_raw("stl10", str(tmp_path), download=False)
    np.testing.assert_array_equal(raw.train_x, train)
    np.testing.assert_array_equal(raw.train_y, [0, 9, 4])
    np.testing.assert_array_equal(raw.test_x, test)


def test_truncated_file_is_a_dataset_error(tmp_path):
    _write_mnist(tmp_path, "MNIST")
    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DatasetError, match="mnist.*header says"):
        load_raw("mnist", str(tmp_path), download=False)


def test_offline_without_files_names_dataset_directory_and_remedy(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_raw("cifar10", str(tmp_path), download=False)
    text = str(info.value)
    assert "'cifar10'" in text and str(tmp_path / "cifar-10-batches-py") in text
    assert "data_batch_1" in text and "task.data_dir" in text and "\n" not in text


def test_failed_download_becomes_one_line_dataset_error(tmp_path, monkeypatch):
    def offline(source, data_dir):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>\nmore lines")

    monkeypatch.setattr(data_mod, "_download", offline)
    with pytest.raises(DatasetError, match=r"'mnist' is not in .*MNIST/raw and the download failed \(<urlopen") as info:
        load_raw("mnist", str(tmp_path))
    assert "\n" not in str(info.value)


def test_download_happens_once_under_the_lock(tmp_path, monkeypatch):
    calls = []

    def slow_download(source, data_dir):
        calls.append(threading.get_ident())
        time.sleep(0.2)  # the other thread arrives meanwhile and must wait, then find the files
        _write_mnist(data_dir, "MNIST")

    monkeypatch.setattr(data_mod, "_download", slow_download)
    folders, errors = [], []

    def fetch():
        try:
            folders.append(data_mod.ensure_files("mnist", tmp_path))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(calls) == 1 and len(folders) == 3


def test_nascli_offline_env_disables_download(tmp_path, monkeypatch):
    monkeypatch.setenv(data_mod.OFFLINE_ENV, "1")
    monkeypatch.setattr(data_mod, "_download", lambda *a: pytest.fail("must not download"))
    with pytest.raises(DatasetError, match="downloading is disabled"):
        load_raw("mnist", str(tmp_path))


def test_digits_is_bundled_with_a_fixed_test_split():
    raw = load_raw("digits", "/nonexistent")
    assert raw.shape == (1, 8, 8) and len(raw.train_x) + len(raw.test_x) == 1797
    assert len(raw.test_x) == 300 and raw.max_value == 16
    load_raw.cache_clear()
    again = load_raw("digits", "/nonexistent")
    np.testing.assert_array_equal(raw.test_y, again.test_y)


def test_split_is_fixed_disjoint_and_complete():
    train, val = split_indices(1497, 1 / 11)
    assert len(val) == 136 and len(train) == 1361
    assert not set(train) & set(val) and set(train) | set(val) == set(range(1497))
    train2, val2 = split_indices(1497, 1 / 11)
    np.testing.assert_array_equal(val, val2)


def test_kfold_folds_partition_the_training_set():
    vals = [data_mod.kfold_indices(103, 5, fold)[1] for fold in range(5)]
    assert sorted(np.concatenate(vals).tolist()) == list(range(103))
    train, val = data_mod.kfold_indices(103, 5, 2)
    assert not set(train) & set(val)


def test_standardisation_uses_the_training_split_only(tmp_path):
    spec = DatasetSpec("digits", str(tmp_path))
    data = load_dataset(spec)
    assert data.train_x.dtype == torch.float32 and data.train_x.shape[1:] == (1, 8, 8)
    assert abs(data.train_x.mean().item()) < 1e-4 and abs(data.train_x.std().item() - 1) < 1e-3
    # Validation and test are scaled with the training statistics, so they are only close to 0/1.
    assert data.val_x.mean().item() != pytest.approx(0, abs=1e-6)
    assert len(data.val_x) == 136 and len(data.test_x) == 300


def test_symmetric_scaling_maps_to_minus_one_one(tmp_path):
    data = load_dataset(DatasetSpec("digits", str(tmp_path), scaling="symmetric"))
    assert data.train_x.min().item() == -1 and data.train_x.max().item() == 1


def test_resident_tensors_are_loaded_once_per_process(tmp_path, monkeypatch):
    spec = DatasetSpec("digits", str(tmp_path))
    first = load_dataset(spec)
    monkeypatch.setattr(data_mod, "make_resident", lambda *a, **k: pytest.fail("reloaded"))
    assert load_dataset(spec) is first


def test_synthetic_images_are_seeded_and_shaped():
    a = data_mod.synthetic_images((3, 16, 12), 4, train_size=50, test_size=10)
    b = data_mod.synthetic_images((3, 16, 12), 4, train_size=50, test_size=10)
    assert a.train_x.shape == (50, 3, 16, 12) and set(a.train_y.tolist()) <= set(range(4))
    np.testing.assert_array_equal(a.train_x, b.train_x)


def test_unknown_dataset_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset 'imagenet'"):
        load_raw("imagenet", str(tmp_path))


class _RunsCode:
    """Pickles as a call of os.system: what a crafted "CIFAR batch" would do when loaded."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


def write_crafted_cifar(data_dir, marker) -> None:
    folder = data_dir / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]:
        with open(folder / name, "wb") as handle:
            pickle.dump({"data": _RunsCode(f"touch {marker}"), "labels": [0]}, handle)


def test_a_crafted_cifar_batch_runs_nothing_and_is_one_line(tmp_path):
    marker = tmp_path / "code-ran"
    write_crafted_cifar(tmp_path, marker)
    with pytest.raises(DatasetError, match="refused to load posix.system") as info:
        load_raw("cifar10", str(tmp_path), download=False)
    assert "\n" not in str(info.value) and "data_batch_1" in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_cifar_batches_of_every_pickle_protocol_still_load(tmp_path, protocol):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    images = _images(3, (3, 32, 32), 3)
    for name in [*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]:
        with open(folder / name, "wb") as handle:
            pickle.dump({"data": images.reshape(3, -1), "labels": np.array([1, 2, 3]), "batch_label": name,
                         "filenames": [b"a.png", b"b.png", b"c.png"]}, handle, protocol=protocol)
    raw = load_raw("cifar10", str(tmp_path), download=False)
    np.testing.assert_array_equal(raw.test_x, images)
    assert raw.test_y.tolist() == [1, 2, 3]
