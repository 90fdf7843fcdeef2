"""The block classes written into every exported model.py, and one constructor call per genome layer.

`BLOCKS_SOURCE` is plain PyTorch text (it is executed only inside the generated file). It mirrors
`nascli.layers` module for module, so parameter names and the computation are identical; the
export tests compare state_dict keys and outputs with `build_model` for every layer type.
"""

from __future__ import annotations

import math

BLOCKS_SOURCE = '''
def make_activation() -> nn.Module:
    if ACTIVATION == "relu":
        return nn.ReLU()
    if ACTIVATION == "leaky_relu":
        return nn.LeakyReLU(0.01)
    if ACTIVATION == "elu":
        return nn.ELU()
    if ACTIVATION == "gelu":
        return nn.GELU()
    if ACTIVATION == "tanh":
        return nn.Tanh()
    raise ValueError(f"unknown activation {ACTIVATION!r}")


def same_padding(kernel_h: int, kernel_w: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) zero padding so that out = ceil(in / stride); extra on the right/bottom."""
    return ((kernel_w - 1) // 2, kernel_w // 2, (kernel_h - 1) // 2, kernel_h // 2)


class ConvBN(nn.Sequential):
    """"Same" zero padding -> Conv2d (no bias) -> BatchNorm2d [-> activation]."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int], stride: tuple[int, int],
                 act: bool = True) -> None:
        kernel_h, kernel_w = kernel
        layers = [nn.ZeroPad2d(same_padding(kernel_h, kernel_w)),
                  nn.Conv2d(in_channels, out_channels, kernel, stride, bias=False),
                  nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM)]
        if act:
            layers.append(make_activation())
        super().__init__(*layers)


class MaxPool(nn.Module):
    """MaxPool2d without padding: out = floor((in - kernel) / stride) + 1."""

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int]) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


class Residual(nn.Module):
    """conv(k, s) -> BN -> act -> conv(k, 1) -> BN, plus the shortcut (identity or 1x1 conv + BN), then act."""

    def __init__(self, in_channels: int, filters: int, kernel: tuple[int, int], stride: tuple[int, int]) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvBN(in_channels, filters, kernel, stride),
                                  ConvBN(filters, filters, kernel, (1, 1), act=False))
        if in_channels == filters and stride == (1, 1):
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, filters, 1, stride, bias=False),
                                          nn.BatchNorm2d(filters, momentum=BN_MOMENTUM))
        self.act = make_activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class SamePool(nn.Module):
    """Max-pool with stride 1 and "same" padding (padded with -inf, so padding never wins)."""

    def __init__(self, kernel: tuple[int, int]) -> None:
        super().__init__()
        self.padding = same_padding(*kernel)
        self.pool = nn.MaxPool2d(kernel, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.pad(x, self.padding, value=float("-inf")))


class Expanded(nn.Module):
    """Factorisation 3: parallel (1, kw) and (kh, 1) convolutions, concatenated (2 x filters channels)."""

    def __init__(self, in_channels: int, filters: int, kernel: tuple[int, int], stride: tuple[int, int]) -> None:
        super().__init__()
        kernel_h, kernel_w = kernel
        self.wide = ConvBN(in_channels, filters, (1, kernel_w), stride)
        self.tall = ConvBN(in_channels, filters, (kernel_h, 1), stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.wide(x), self.tall(x)], dim=1)


class Inception(nn.Module):
    """Enabled branches side by side, concatenated on channels."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class Dense(nn.Sequential):
    """[Flatten] -> Dropout -> Linear [-> activation]."""

    def __init__(self, in_features: int, units: int, flatten: bool, act: bool = True) -> None:
        layers = [nn.Flatten()] if flatten else []
        layers += [nn.Dropout(DROPOUT), nn.Linear(in_features, units)]
        if act:
            layers.append(make_activation())
        super().__init__(*layers)
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
            calls.append(f"SamePool(({step.kernel_h}, {step.kernel_w}))")
        elif isinstance(step, ParallelStep):
            wide, tall = step.convs
            calls.append(f"Expanded({wide.in_channels}, {wide.out_channels}, ({tall.kernel_h}, {wide.kernel_w}), "
                         f"({wide.stride_h}, {wide.stride_w}))")
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
            calls.append((f"Inception({branches}\n)", text))
        elif layer.type == "C":
            calls.append((f"ConvBN({shape[0]}, {layer.filters}, {kernel}, {stride})", text))
        elif layer.type == "R":
            calls.append((f"Residual({shape[0]}, {layer.filters}, {kernel}, {stride})", text))
        elif layer.type == "P":
            calls.append((f"MaxPool({kernel}, {stride})", text))
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
