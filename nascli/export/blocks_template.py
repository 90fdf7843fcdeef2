"""The block classes written into every exported model.py, and one constructor call per genome layer.

`BLOCKS_SOURCE` is plain PyTorch text (it is executed only inside the generated file). It mirrors
`nascli.layers` module for module, so parameter names and the computation are identical; the
export tests compare state_dict keys and outputs with `build_model` for every layer type.
"""

from __future__ import annotations

import math

BLOCKS_SOURCE = '''
def make_activation() -> nn.Module:
    return {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "gelu": nn.GELU, "tanh": nn.Tanh}[ACTIVATION]()


def same_padding(kernel_h: int, kernel_w: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom): k - 1 per dimension so out = ceil(in / stride); the odd pixel goes after."""
    return ((kernel_w - 1) // 2, kernel_w // 2, (kernel_h - 1) // 2, kernel_h // 2)


class ConvBN(nn.Sequential):
    """[zero pad] -> Conv2d (no bias) "same" -> BatchNorm2d -> [activation]."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int], stride: tuple[int, int],
                 act: bool = True) -> None:
        left, right, top, bottom = same_padding(*kernel)
        layers: list[nn.Module] = []
        if (left, top) == (right, bottom):
            padding = (top, left)
        else:  # even kernel: Conv2d pads only symmetrically
            layers.append(nn.ZeroPad2d((left, right, top, bottom)))
            padding = (0, 0)
        layers.append(nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, bias=False))
        layers.append(nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM))
        if act:
            layers.append(make_activation())
        super().__init__(*layers)


class Residual(nn.Module):
    """conv(k, s) -> BN -> act -> conv(k, 1) -> BN, plus identity or a 1x1 conv + BN shortcut, then act."""

    def __init__(self, in_channels: int, filters: int, kernel: tuple[int, int], stride: tuple[int, int]) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvBN(in_channels, filters, kernel, stride),
                                  ConvBN(filters, filters, kernel, (1, 1), act=False))
        if in_channels != filters or tuple(stride) != (1, 1):
            self.shortcut: nn.Module = ConvBN(in_channels, filters, (1, 1), stride, act=False)
        else:
            self.shortcut = nn.Identity()
        self.act = make_activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class MaxPoolSame(nn.Sequential):
    """Stride-1 max-pool that keeps the size: padded with -inf, so padding never wins the max."""

    def __init__(self, kernel: tuple[int, int]) -> None:
        super().__init__(nn.ConstantPad2d(same_padding(*kernel), float("-inf")), nn.MaxPool2d(kernel, stride=1))


class Concat(nn.Module):
    """Runs its parts on the same input and concatenates their outputs on channels (inception)."""

    def __init__(self, *parts: nn.Module) -> None:
        super().__init__()
        self.parts = nn.ModuleList(parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([part(x) for part in self.parts], dim=1)


def Dense(in_features: int, units: int, flatten: bool, act: bool = True) -> nn.Sequential:  # noqa: N802
    """[Flatten] -> Dropout -> Linear -> [activation]; the output layer has no activation."""
    layers: list[nn.Module] = [nn.Flatten()] if flatten else []
    layers += [nn.Dropout(DROPOUT), nn.Linear(in_features, units)]
    if act:
        layers.append(make_activation())
    return nn.Sequential(*layers)
'''


def _conv(step) -> str:
    return (f"ConvBN({step.in_channels}, {step.out_channels}, ({step.kernel_h}, {step.kernel_w}), "
            f"({step.stride_h}, {step.stride_w}))")


def _branch(branch, in_channels: int) -> str:
    """One enabled inception branch, from the same plan the cost model counts."""
    from nascli.ga.cost import ParallelStep, PoolSameStep, branch_plan

    calls = []
    for step in branch_plan(branch, in_channels):
        if isinstance(step, PoolSameStep):
            calls.append(f"MaxPoolSame(({step.kernel_h}, {step.kernel_w}))")
        elif isinstance(step, ParallelStep):
            calls.append("Concat(" + ", ".join(_conv(conv) for conv in step.convs) + ")")
        else:
            calls.append(_conv(step))
    return "nn.Sequential(" + ", ".join(calls) + ")"


def layer_constructors(genome) -> list[tuple[str, str]]:
    """(constructor call, genome layer text) per hidden layer and the output layer."""
    from nascli.ga.cost import analyse
    from nascli.ga.genome import format_layer

    shapes = analyse(genome).shapes  # input, one per hidden layer, output
    calls: list[tuple[str, str]] = []
    for layer, shape in zip(genome.hidden, shapes, strict=False):
        text = format_layer(layer)
        spatial = len(shape) == 3
        kernel = f"({getattr(layer, 'kernel_h', 0)}, {getattr(layer, 'kernel_w', 0)})"
        stride = f"({getattr(layer, 'stride_h', 0)}, {getattr(layer, 'stride_w', 0)})"
        if layer.type == "I":
            branches = "".join(f"\n    {_branch(branch, shape[0])}," for branch in layer.enabled_branches)
            calls.append((f"Concat({branches}\n)", text))
        elif layer.type == "C":
            calls.append((f"ConvBN({shape[0]}, {layer.filters}, {kernel}, {stride})", text))
        elif layer.type == "R":
            calls.append((f"Residual({shape[0]}, {layer.filters}, {kernel}, {stride})", text))
        elif layer.type == "P":
            calls.append((f"nn.MaxPool2d({kernel}, stride={stride})", text))
        elif layer.type == "D":
            calls.append((f"Dense({_features(shape)}, {layer.filters}, flatten={spatial})", text))
        else:
            raise ValueError(f"unknown layer type {layer.type!r}")
    last = shapes[-2]
    calls.append((f"Dense({_features(last)}, {genome.output.units}, flatten={len(last) == 3}, act=False)",
                  format_layer(genome.output)))
    return calls


def _features(shape: tuple[int, ...]) -> int:
    return math.prod(shape)
