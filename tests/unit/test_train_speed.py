"""Fast defaults on CUDA, checked on the CPU: no host synchronisation per batch, the precision each
`train.amp` value picks (with a faked bf16 capability), fixed batch shapes, channels-last resident
data, and k-fold folds cut on the device from one upload."""

from __future__ import annotations

import collections

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from nascli.ga.genome import parse_genome
from nascli.layers.build import build_model
from nascli.train import data
from nascli.train.data import DatasetSpec
from nascli.train.objectives import Classification, Reconstruction
from nascli.train.trainer import TrainSettings, fit, precision_of, resolve_precision, score
from tests.helpers import one_torch_thread  # noqa: F401 - autouse: training on one thread, as a worker trains

# Ops that make the host wait for the device (a value read back, or a data-dependent shape).
_SYNCING = ("_local_scalar_dense", "item", "nonzero", "is_nonzero", "equal", "masked_select", "allclose",
            "unique", "_unique", "_unique2", "bincount", "repeat_interleave")


class SyncCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in _SYNCING:
            self.ops[str(func)] += 1
        return func(*args, **(kwargs or {}))




def _images(n: int = 256, channels: int = 3):
    generator = torch.Generator().manual_seed(0)
    return torch.randn(n, channels, 8, 8, generator=generator), torch.randint(0, 10, (n,), generator=generator)


def _syncs(objective, batch_size: int, **settings) -> collections.Counter:
    x, y = _images()
    torch.manual_seed(0)
    model = build_model(parse_genome("In_8_8_3:C_3-3-1-1-8:P_2-2-2-2-0:D_10"))
    with SyncCounter() as counter:
        fit(model, x, y, x[:200], y[:200], objective, TrainSettings(epochs=2, patience=5, batch_size=batch_size,
                                                                    eval_batch_size=128, **settings), seed=1)
    return counter.ops


@pytest.mark.parametrize("objective", [Classification("mse", 10), Classification("cross_entropy", 10)])
@pytest.mark.parametrize("settings", [{}, {"fixed_shapes": True}, {"amp": "bf16"}, {"amp": "fp16"}])
def test_no_host_synchronisation_per_batch(objective, settings):
    # Two epochs of 2 and of 16 batches: a syncing op inside the loop shows up as a difference.
    few, many = _syncs(objective, 128, **settings), _syncs(objective, 16, **settings)
    assert many == few, f"syncing ops per batch: {many - few}"
    assert sum(many.values()) <= 2 * 2, many  # per epoch at most a couple (there are none today)


def test_no_host_synchronisation_per_batch_for_a_denoising_autoencoder():
    objective = Reconstruction(noise_sigma=0.5)
    x, _ = _images()
    for batch in (128, 16):
        from nascli.ga.modules import parse_module_genome
        from nascli.layers.autoencoder import build_autoencoder

        model = build_autoencoder(parse_module_genome("3x3conv2d:4"), (3, 8, 8), 1)
        with SyncCounter() as counter:
            fit(model, x, x, x[:200], x[:200], objective, TrainSettings(epochs=2, patience=5, batch_size=batch,
                                                                        eval_batch_size=128), seed=1)
        assert sum(counter.ops.values()) == 0, counter.ops


@pytest.mark.parametrize("amp, device, bf16, expected", [
    ("auto", "cuda", True, ("bf16", False)),
    ("auto", "cuda", False, ("fp16", True)),
    ("auto", "cpu", False, ("fp32", False)),
    ("off", "cuda", True, ("fp32", False)),
    ("bf16", "cpu", False, ("bf16", False)),
    ("fp16", "cuda", True, ("fp16", True)),
    ("fp16", "cpu", False, ("fp16", True)),
    (True, "cuda", True, ("bf16", False)),  # a stored run's amp = true reads as auto
    (False, "cuda", True, ("fp32", False)),
])
def test_train_amp_picks_the_precision(amp, device, bf16, expected):
    precision = resolve_precision(amp, device, bf16)
    assert (precision.name, precision.scaler) == expected


def test_auto_asks_the_gpu_whether_it_has_bf16(monkeypatch):
    cuda = torch.device("cuda:0")  # no tensor is made: only the decision
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: not including_emulation)
    assert precision_of(TrainSettings(), cuda).name == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)  # e.g. a V100
    assert (precision_of(TrainSettings(), cuda).name, precision_of(TrainSettings(), cuda).scaler) == ("fp16", True)
    assert precision_of(TrainSettings(), torch.device("cpu")).name == "fp32"


def test_fixed_shapes_give_every_batch_one_size_and_padding_changes_no_metric():
    x, y = _images(300)
    model = build_model(parse_genome("In_8_8_3:C_3-3-1-1-8:P_2-2-2-2-0:D_10"))
    sizes: list[tuple[bool, int]] = []
    model.register_forward_pre_hook(lambda module, args: sizes.append((module.training, len(args[0]))))
    settings = TrainSettings(epochs=2, patience=5, batch_size=64, eval_batch_size=128, fixed_shapes=True)
    fit(model, x, y, x[:300], y[:300], Classification("mse", 10), settings, seed=1)
    assert {size for training, size in sizes if training} == {64}  # 300 = 4 x 64 + 44: the 44 are left out
    assert len([1 for training, _ in sizes if training]) == 2 * 4
    assert {size for training, size in sizes if not training} == {128}  # 128 + 128 + 44 padded to 128
    padded = score(model, x, y, Classification("mse", 10), settings, split=1)
    plain = score(model, x, y, Classification("mse", 10), TrainSettings(eval_batch_size=128, fixed_shapes=False),
                  split=1)
    assert torch.allclose(padded[0], plain[0], rtol=1e-5) and padded[1] == plain[1]


def test_cpu_default_keeps_every_sample_of_every_epoch():
    x, y = _images(300)
    model = build_model(parse_genome("In_8_8_3:C_3-3-1-1-8:P_2-2-2-2-0:D_10"))
    sizes: list[int] = []

    def record(module, args) -> None:
        if module.training:
            sizes.append(len(args[0]))

    model.register_forward_pre_hook(record)
    fit(model, x, y, x[:10], y[:10], Classification("mse", 10), TrainSettings(epochs=1, batch_size=64), seed=1)
    assert sizes == [64, 64, 64, 64, 44]


def test_resident_images_are_channels_last_once():
    data.clear_cache()
    spec = DatasetSpec("synthetic", "/nonexistent", synthetic_shape=(3, 8, 8))
    resident = data.load_dataset(spec)
    for images in (resident.train_x, resident.val_x, resident.test_x):
        assert images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous()
    data.clear_cache()


def test_kfold_cuts_folds_from_one_upload_with_the_same_values():
    data.clear_cache()
    spec = DatasetSpec("synthetic", "/nonexistent", synthetic_shape=(3, 8, 8))
    raw = data.raw_of(spec)
    first = data.load_fold(spec, "cpu", 3, 0)
    uploaded = data._uploaded
    for fold in (1, 2):
        cut = data.load_fold(spec, "cpu", 3, fold)
        assert data._uploaded is uploaded  # the whole set was not uploaded again
        expected = data.make_resident(raw, *data.kfold_indices(len(raw.train_x), 3, fold), "cpu")
        for name in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
            assert torch.equal(getattr(cut, name), getattr(expected, name)), name
    assert not torch.equal(first.val_x[:5], cut.val_x[:5])
    data.clear_cache()
