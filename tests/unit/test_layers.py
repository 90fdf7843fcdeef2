"""Torch builder: agrees with the pure cost model (shapes, params, FLOPs), trains, traces."""

from __future__ import annotations

import warnings

import pytest
import torch
from genome_strategies import genomes
from hypothesis import HealthCheck, given, settings
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nascli.errors import ConfigError, GenomeError
from nascli.ga.cost import analyse
from nascli.ga.genome import parse_genome
from nascli.layers import build_model, count_parameters
from nascli.layers.blocks import MaxPoolSame, ResidualBlock

torch.set_num_threads(1)

TORCH_SETTINGS = settings(max_examples=150, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def measured(model: nn.Module) -> tuple[list[tuple[int, ...]], int, torch.Tensor]:
    """Per-block output shapes (batch dim dropped), FLOPs of a batch of 1, and the output."""
    shapes: list[tuple[int, ...]] = []
    hooks = [child.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape[1:])))
             for child in model.children()]
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(torch.randn(1, *model.input_shape))
    for hook in hooks:
        hook.remove()
    return shapes, counter.get_total_flops(), out


@pytest.mark.slow
@given(genomes(min_hidden=1))
@TORCH_SETTINGS
def test_builder_matches_cost_model_on_random_genomes(genome):
    expected = analyse(genome)
    model = build_model(genome)
    shapes, flops, out = measured(model)
    assert shapes == list(expected.shapes[1:])
    assert count_parameters(model) == expected.params
    assert flops == expected.flops
    assert out.shape == (1, genome.output.units)


def train_step_checks(model: nn.Module, batch: int = 2) -> None:
    model.train()
    x = torch.randn(batch, *model.input_shape)
    out = model(x)
    assert torch.isfinite(out).all()
    loss = nn.functional.cross_entropy(out, torch.zeros(batch, dtype=torch.long)) + out.pow(2).mean()
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
    total = sum(float(p.grad.abs().sum()) for p in model.parameters())
    assert total > 0 or not list(model.parameters())


def _forward_backward_test(shape):
    @given(genomes(input_shapes=(shape,), min_hidden=1, max_hidden=5))
    @settings(max_examples=80, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    def run(genome):
        torch.manual_seed(0)
        train_step_checks(build_model(genome))

    return run


test_forward_backward_1x28x28 = _forward_backward_test((1, 28, 28))
test_forward_backward_3x32x32 = _forward_backward_test((3, 32, 32))
test_forward_backward_1x8x8 = _forward_backward_test((1, 8, 8))


def test_forward_backward_3x96x96_paper_style():
    genome = ("In_96_96_3:C_5-5-2-2-8:P_3-3-2-2-0:R_3-3-1-1-8:"
              "I.1-1-1_5-5-2-2-8.2-1-2_3-3-2-2-8.3-1-3_3-3-2-2-4.4-1-0_3-3-2-2-8:"
              "R_3-3-2-2-16:D_1-1-1-1-32:D_10")
    model = build_model(genome)
    assert count_parameters(model) == analyse(parse_genome(genome)).params
    train_step_checks(model, batch=2)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "gelu", "tanh"])
def test_every_activation_builds_and_trains(activation):
    model = build_model("In_8_8:C_3-3-1-1-4:R_2-2-2-2-4:D_1-1-1-1-8:D_3", activation=activation)
    kinds = {type(m).__name__.lower() for m in model.modules()}
    assert activation.replace("_", "") in kinds
    train_step_checks(model)


def test_options_reach_batchnorm_and_dropout():
    model = build_model("In_8_8:C_3-3-1-1-4:D_1-1-1-1-8:D_3", bn_momentum=0.1, dropout=0.25)
    assert {m.momentum for m in model.modules() if isinstance(m, nn.BatchNorm2d)} == {0.1}
    assert {m.p for m in model.modules() if isinstance(m, nn.Dropout)} == {0.25}
    default = build_model("In_8_8:C_3-3-1-1-4:D_3")
    assert {m.momentum for m in default.modules() if isinstance(m, nn.BatchNorm2d)} == {0.01}
    assert {m.p for m in default.modules() if isinstance(m, nn.Dropout)} == {0.5}


@pytest.mark.parametrize("options", [{"activation": "swish"}, {"bn_momentum": 0.99 + 1},
                                     {"dropout": 1.0}, {"dropout": -0.1}])
def test_bad_options_are_config_errors(options):
    with pytest.raises(ConfigError):
        build_model("In_8_8:D_3", **options)


def test_bad_genome_string_is_a_genome_error():
    with pytest.raises(GenomeError):
        build_model("In_8_8:C_9-9-1-1-4:D_3")


def test_even_kernels_and_strides_keep_ceil_sizes():
    shapes, _, _ = measured(build_model("In_7_5:C_2-4-2-2-3:R_2-2-3-1-5:D_2"))
    assert shapes[0] == (3, 3, 4) and shapes[1] == (5, 3, 2)


def test_residual_projection_only_when_shapes_differ():
    identity, projected, strided = (build_model(f"In_8_8_4:{layer}:D_2").get_submodule("0")
                                    for layer in ("R_3-3-1-1-4", "R_3-3-1-1-8", "R_3-3-2-2-4"))
    assert all(isinstance(b, ResidualBlock) for b in (identity, projected, strided))
    assert isinstance(identity.shortcut, nn.Identity)
    assert not isinstance(projected.shortcut, nn.Identity)
    assert not isinstance(strided.shortcut, nn.Identity)


def _convs(model: nn.Module) -> list[tuple[int, int]]:
    return [tuple(m.kernel_size) for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_inception_factorisations():
    off = "2-0-0_1-1-1-1-0.3-0-0_1-1-1-1-0.4-0-0_1-1-1-1-0"
    smaller = build_model(f"In_16_16:I.1-1-1_5-5-1-1-4.{off}:D_2")
    assert _convs(smaller) == [(3, 3), (3, 3)]  # 5x5 -> two 3x3
    asymmetric = build_model(f"In_16_16:I.1-1-2_5-3-1-1-4.{off}:D_2")
    assert _convs(asymmetric) == [(1, 5), (3, 1)]  # (kh, kw): 1 x kw then kh x 1
    expanded = build_model(f"In_16_16:I.1-1-3_3-3-1-1-4.{off}:D_2")
    assert sorted(_convs(expanded)) == [(1, 3), (3, 1)]
    assert analyse(parse_genome(f"In_16_16:I.1-1-3_3-3-1-1-4.{off}:D_2")).shapes[1] == (8, 16, 16)
    pool_branch = build_model("In_16_16:I.4-1-0_3-3-2-2-4.1-0-0_1-1-1-1-0.2-0-0_1-1-1-1-0."
                              "3-0-0_1-1-1-1-0:D_2")
    assert _convs(pool_branch) == [(1, 1)]
    assert measured(pool_branch)[0][0] == (4, 8, 8)


def test_negative_inputs_survive_same_max_pool_padding():
    model = build_model("In_6_6:I.4-1-0_2-2-1-1-2.1-0-0_1-1-1-1-0.2-0-0_1-1-1-1-0."
                        "3-0-0_1-1-1-1-0:D_2")
    model.eval()
    out = model(torch.full((1, 1, 6, 6), -5.0))
    assert torch.isfinite(out).all()
    pools = [module for module in model.modules() if isinstance(module, MaxPoolSame)]
    assert pools
    image = -torch.arange(1.0, 37.0).reshape(1, 1, 6, 6)  # all negative: a zero pad would win every border max
    for pool in pools:
        left, _, top, _ = pool[0].padding
        kernel_h, kernel_w = pool[1].kernel_size
        expected = torch.empty_like(image)
        for row in range(6):
            for col in range(6):
                window = image[0, 0, max(0, row - top):row - top + kernel_h, max(0, col - left):col - left + kernel_w]
                expected[0, 0, row, col] = window.max()
        assert torch.equal(pool(image), expected)


def test_model_traces_and_scripts():
    genome = ("In_16_16_3:C_3-3-1-1-8:I.1-1-3_3-3-2-2-4.2-1-2_3-3-2-2-4.3-1-1_5-5-2-2-4."
              "4-1-0_2-2-2-2-4:R_2-2-1-1-8:D_1-1-1-1-16:D_4")
    model = build_model(genome).eval()
    x = torch.randn(2, 3, 16, 16)
    with warnings.catch_warnings():  # torch 2.14 deprecates jit; export may still use it
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(model, x)
        scripted = torch.jit.script(model)
    torch.testing.assert_close(traced(x), model(x))
    torch.testing.assert_close(scripted(x), model(x))


def test_string_and_dataclass_build_the_same_model():
    text = "In_8_8:C_3-3-1-1-4:D_3"
    a, b = build_model(text), build_model(parse_genome(text))
    assert a.genome == b.genome == text and a.input_shape == (1, 8, 8)
    assert count_parameters(a) == count_parameters(b)
