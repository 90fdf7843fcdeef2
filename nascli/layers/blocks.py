"""Torch building blocks for the Klos genome: conv, pool, residual, dense, output, inception.

Semantics (and the parameter / FLOP counts they imply) are defined in `nascli.ga.cost`; keep the
two in step — tests/unit/test_layers.py compares them on random genomes.
"""

from __future__ import annotations

import torch
from torch import nn

from nascli.errors import ConfigError
from nascli.ga.cost import ConvStep, ParallelStep, PoolSameStep, Step, branch_plan
from nascli.ga.genome import InceptionSpec

ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "tanh")


def make_activation(name: str) -> nn.Module:
    factories = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "gelu": nn.GELU,
                 "tanh": nn.Tanh}
    if name not in factories:
        raise ConfigError(f"unknown activation {name!r}", f"use one of {', '.join(ACTIVATIONS)}")
    return factories[name]()


def same_padding(kernel_h: int, kernel_w: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) padding of k-1 per dimension, so out = ceil(in / stride) for
    any input size; the odd pixel goes after, as TensorFlow's "same" does for even kernels."""
    return ((kernel_w - 1) // 2, kernel_w // 2, (kernel_h - 1) // 2, kernel_h // 2)


class ConvBN(nn.Sequential):
    """[zero pad] -> Conv2d(bias=False) "same" -> BatchNorm2d -> [activation]."""

    def __init__(self, step: ConvStep, *, activation: str | None, bn_momentum: float) -> None:
        left, right, top, bottom = same_padding(step.kernel_h, step.kernel_w)
        layers: list[nn.Module] = []
        if (left, top) == (right, bottom):
            padding: tuple[int, int] = (top, left)
        else:  # even kernel: Conv2d can only pad symmetrically
            layers.append(nn.ZeroPad2d((left, right, top, bottom)))
            padding = (0, 0)
        layers.append(nn.Conv2d(step.in_channels, step.out_channels, (step.kernel_h, step.kernel_w),
                                stride=(step.stride_h, step.stride_w), padding=padding, bias=False))
        layers.append(nn.BatchNorm2d(step.out_channels, momentum=bn_momentum))
        if activation is not None:
            layers.append(make_activation(activation))
        super().__init__(*layers)


class MaxPoolSame(nn.Sequential):
    """Stride-1 max-pool that keeps the size: pads with -inf so padding never wins the max."""

    def __init__(self, kernel_h: int, kernel_w: int) -> None:
        super().__init__(nn.ConstantPad2d(same_padding(kernel_h, kernel_w), float("-inf")),
                         nn.MaxPool2d((kernel_h, kernel_w), stride=1))


class ResidualBlock(nn.Module):
    """conv s -> BN -> act -> conv 1 -> BN, plus identity or 1x1-conv+BN projection, then act."""

    def __init__(self, in_channels: int, filters: int, kernel_h: int, kernel_w: int,
                 stride_h: int, stride_w: int, *, activation: str, bn_momentum: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvBN(ConvStep(in_channels, filters, kernel_h, kernel_w, stride_h, stride_w),
                   activation=activation, bn_momentum=bn_momentum),
            ConvBN(ConvStep(filters, filters, kernel_h, kernel_w, 1, 1),
                   activation=None, bn_momentum=bn_momentum),
        )
        if in_channels != filters or (stride_h, stride_w) != (1, 1):
            self.shortcut: nn.Module = ConvBN(ConvStep(in_channels, filters, 1, 1, stride_h, stride_w),
                                              activation=None, bn_momentum=bn_momentum)
        else:
            self.shortcut = nn.Identity()
        self.act = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class Concat(nn.Module):
    """Runs modules on the same input and concatenates their outputs on channels."""

    def __init__(self, parts: list[nn.Module]) -> None:
        super().__init__()
        self.parts = nn.ModuleList(parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([part(x) for part in self.parts], dim=1)


def _step_module(step: Step, *, activation: str, bn_momentum: float) -> nn.Module:
    if isinstance(step, PoolSameStep):
        return MaxPoolSame(step.kernel_h, step.kernel_w)
    if isinstance(step, ParallelStep):
        return Concat([ConvBN(c, activation=activation, bn_momentum=bn_momentum) for c in step.convs])
    return ConvBN(step, activation=activation, bn_momentum=bn_momentum)


def inception_block(layer: InceptionSpec, in_channels: int, *, activation: str,
                    bn_momentum: float) -> Concat:
    """Enabled branches (see `nascli.ga.cost.branch_plan`), concatenated on channels."""
    return Concat([
        nn.Sequential(*[_step_module(step, activation=activation, bn_momentum=bn_momentum)
                        for step in branch_plan(branch, in_channels)])
        for branch in layer.enabled_branches
    ])


def dense_block(in_features: int, out_features: int, *, flatten: bool, dropout: float,
                activation: str | None) -> nn.Sequential:
    """[flatten] -> Dropout -> Linear -> [activation]; the output layer has no activation."""
    layers: list[nn.Module] = [nn.Flatten()] if flatten else []
    layers += [nn.Dropout(dropout), nn.Linear(in_features, out_features)]
    if activation is not None:
        layers.append(make_activation(activation))
    return nn.Sequential(*layers)
