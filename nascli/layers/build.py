"""genome -> torch.nn.Module, threading shapes with the pure cost model."""

from __future__ import annotations

from typing import Any

from torch import nn

from nascli.errors import ConfigError
from nascli.ga.cost import ConvStep, analyse
from nascli.ga.genome import Genome, InceptionSpec, LayerSpec, format_genome, parse_genome
from nascli.layers.blocks import (
    ACTIVATIONS,
    ConvBN,
    ResidualBlock,
    dense_block,
    inception_block,
)


class GenomeNet(nn.Sequential):
    """The network of one genome: one child module per hidden layer, then the output layer."""

    def __init__(self, blocks: list[nn.Module], genome: str, input_shape: tuple[int, int, int]) -> None:
        super().__init__(*blocks)
        self.genome = genome
        self.input_shape = input_shape  # (channels, height, width)


def _check_options(activation: str, bn_momentum: float, dropout: float) -> None:
    if activation not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {activation!r}", f"use one of {', '.join(ACTIVATIONS)}")
    if not 0.0 <= bn_momentum <= 1.0:
        raise ConfigError(f"batch-norm momentum {bn_momentum} is outside [0, 1]",
                          "PyTorch momentum = 1 - Keras momentum, e.g. 0.01")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout {dropout} is outside [0, 1)", "e.g. 0.5")


def build_model(genome: Genome | str, *, activation: str = "leaky_relu", bn_momentum: float = 0.01,
                dropout: float = 0.5) -> GenomeNet:
    """Build the network; raises GenomeError for a genome that does not fit its input and
    ConfigError for a bad option. Its parameter count equals `nascli.ga.cost.analyse(g).params`."""
    if isinstance(genome, str):
        genome = parse_genome(genome)
    _check_options(activation, bn_momentum, dropout)
    shapes = analyse(genome).shapes
    opts: dict[str, Any] = {"activation": activation, "bn_momentum": bn_momentum}
    blocks: list[nn.Module] = []
    for layer, shape in zip(genome.hidden, shapes):
        if isinstance(layer, InceptionSpec):
            blocks.append(inception_block(layer, shape[0], **opts))
        else:
            blocks.append(_plain_block(layer, shape, dropout=dropout, **opts))
    last = shapes[-2]
    blocks.append(dense_block(_flat(last), genome.output.units, flatten=len(last) == 3,
                              dropout=dropout, activation=None))
    inp = genome.input
    return GenomeNet(blocks, format_genome(genome), (inp.channels, inp.height, inp.width))


def _plain_block(layer: LayerSpec, shape: tuple[int, ...], *, dropout: float, activation: str,
                 bn_momentum: float) -> nn.Module:
    kh, kw, sh, sw, f = layer.kernel_h, layer.kernel_w, layer.stride_h, layer.stride_w, layer.filters
    if layer.type == "D":
        return dense_block(_flat(shape), f, flatten=len(shape) == 3, dropout=dropout,
                           activation=activation)
    if layer.type == "P":
        return nn.MaxPool2d((kh, kw), stride=(sh, sw))
    if layer.type == "C":
        return ConvBN(ConvStep(shape[0], f, kh, kw, sh, sw), activation=activation,
                      bn_momentum=bn_momentum)
    return ResidualBlock(shape[0], f, kh, kw, sh, sw, activation=activation, bn_momentum=bn_momentum)


def _flat(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def count_parameters(model: nn.Module) -> int:
    """Every parameter element (weights, biases, BN affine), as the cost model counts them."""
    return sum(p.numel() for p in model.parameters())
