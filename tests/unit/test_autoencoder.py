"""Hajewski modular autoencoders: shapes, exact parameter/FLOP counts, denoise and reconstruct tasks."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from nascli.errors import GenomeError
from nascli.ga.modules import DROPOUT2D, ModuleGenome, ModuleLayer, channels_after
from nascli.layers.autoencoder import autoencoder_cost, build_autoencoder
from nascli.task import Task
from nascli.train.evaluate import evaluate
from tests.helpers import one_torch_thread  # noqa: F401 - autouse: training on one thread, as a worker trains

module_genomes = st.lists(st.one_of(st.builds(ModuleLayer, st.sampled_from([1, 2, 3, 5, 7]), st.integers(1, 12)),
                                    st.just(DROPOUT2D)),
                          min_size=1, max_size=3).map(lambda layers: ModuleGenome(tuple(layers)))


def module_channels(genome: ModuleGenome, channels: int) -> int:
    for layer in genome.layers:
        channels = channels_after(layer, channels)
    return channels


@settings(max_examples=25, deadline=None)
@given(genome=module_genomes, channels=st.sampled_from([1, 3]), reductions=st.integers(0, 3))
def test_builder_matches_the_cost_model_and_keeps_the_input_shape(genome, channels, reductions):
    shape = (channels, 16, 8)
    model = build_autoencoder(genome, shape, reductions)
    cost = autoencoder_cost(genome, shape, reductions)
    assert sum(p.numel() for p in model.parameters()) == cost.params
    x = torch.randn(2, *shape)
    with FlopCounterMode(display=False) as counter:
        code = model.encoder(x[:1])
        out = model.decoder(code)
    assert counter.get_total_flops() == cost.flops
    assert tuple(code.shape[1:]) == cost.code_shape == (module_channels(genome, channels) * 2 ** reductions,
                                                        16 >> reductions, 8 >> reductions)
    assert out.shape == x[:1].shape and out.abs().max() <= 1  # tanh output


def test_dropout2d_builds_seed_002_channel_dropout():
    """Seed 002 Table 3 greyscale module: dropout p = 0.5 of whole channels, in training only."""
    model = build_autoencoder("3x3conv2d:16,dropout2d,1x1conv2d:32", (1, 8, 8), 2)
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout2d)]
    assert len(dropouts) == 2 and all(m.p == 0.5 for m in dropouts)  # once in the encoder, once in the decoder
    x = torch.randn(1, 1, 8, 8)
    model.eval()
    assert torch.equal(model(x), model(x))


def test_paper_example_string_builds():
    model = build_autoencoder("5x5conv2d:16,3x3conv2d:32,3x3conv2d:32", (3, 96, 96), 3)
    assert model.genome == "5x5conv2d:16,3x3conv2d:32,3x3conv2d:32"
    assert model.encoder(torch.zeros(1, 3, 96, 96)).shape == (1, 256, 12, 12)


def test_reductions_must_divide_the_input():
    with pytest.raises(GenomeError, match="divisible by 8"):
        build_autoencoder("3x3conv2d:8", (1, 12, 12), 3)
    with pytest.raises(GenomeError):
        autoencoder_cost("3x3conv2d:0", (1, 8, 8), 1)


def autoencoder_task(kind: str, genome: str = "3x3conv2d:16", **train) -> Task:
    return Task(genome=genome,
                task={"kind": kind, "dataset": "synthetic", "genome_family": "modules", "synthetic_shape": [1, 16, 16],
                      "reduction_modules": 2},
                train={"epochs": 4, "patience": 4, "batch_size": 32, "lr": 3e-3, "weight_decay": 0.0, "threads": 1,
                       **train},
                search_space={"max_params": 100_000}, seed=5)


def test_denoise_on_synthetic_data_reduces_the_loss():
    history = []
    result = evaluate(autoencoder_task("denoise"), progress=lambda epoch, m: history.append(m["val_loss"]))
    assert result.status == "done", result.error_message
    assert result.val_accuracy is None and result.test_accuracy is None  # fitness is 1 / val_loss
    assert result.val_loss < history[0] and result.val_loss == min(history)
    # Denoised output is closer to the clean image than the noisy input was (noise variance 1/3).
    assert result.val_loss < 1 / 3 and result.test_loss < 1 / 3
    print(f"denoise val loss per epoch: {[round(v, 4) for v in history]}")


def test_reconstruct_trains_and_reports_losses_only():
    result = evaluate(autoencoder_task("reconstruct", "5x5conv2d:8", epochs=2))
    assert result.status == "done" and result.val_loss > 0 and result.train_accuracy is None
    assert result.params == autoencoder_cost("5x5conv2d:8", (1, 16, 16), 2).params


def test_autoencoder_failures_are_typed():
    assert evaluate(autoencoder_task("denoise", "3x3conv2d:16x")).error_kind == "invalid_genome"
    big = Task(**{**autoencoder_task("denoise", "7x7conv2d:64,7x7conv2d:64").__dict__,
                  "search_space": {"max_params": 1000}})
    assert evaluate(big).error_kind == "too_large"
