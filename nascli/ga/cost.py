"""Pure shape inference and exact parameter / FLOP counts for a genome.

The torch builder (`nascli.layers`) follows the same semantics, and a test checks that its
parameter count and `torch.utils.flop_counter.FlopCounterMode` FLOPs equal these numbers.
FLOPs are 2 x multiply-accumulates of convolutions and linear layers only (batch of 1).
Shapes are (channels, height, width) for spatial tensors and (units,) after flattening.
"""

from __future__ import annotations

from dataclasses import dataclass

from nascli.errors import GenomeError
from nascli.ga.genome_spec import (
    Branch,
    Genome,
    HiddenLayer,
    InceptionSpec,
    LayerSpec,
    OutputLayer,
    check_structure,
    format_layer,
)

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Analysis:
    shapes: tuple[Shape, ...]  # input, one per hidden layer, output
    params: int
    flops: int


# ---------------------------------------------------------------- inception branch plan (shared)

@dataclass(frozen=True)
class ConvStep:
    """conv (bias False, "same" padding) + BN + activation."""

    in_channels: int
    out_channels: int
    kernel_h: int
    kernel_w: int
    stride_h: int
    stride_w: int


@dataclass(frozen=True)
class PoolSameStep:
    """max-pool, stride 1, "same" padding (inception branch type 4)."""

    kernel_h: int
    kernel_w: int


@dataclass(frozen=True)
class ParallelStep:
    """convs on the same input, outputs concatenated on channels (factorisation 3)."""

    convs: tuple[ConvStep, ...]

    @property
    def out_channels(self) -> int:
        return sum(c.out_channels for c in self.convs)


Step = ConvStep | PoolSameStep | ParallelStep


def _factorised(in_c: int, f: int, kh: int, kw: int, sh: int, sw: int, fact: int) -> list[Step]:
    """One (kh, kw) convolution of an inception branch after factorisation `fact`."""
    if fact == 1 and max(kh, kw) >= 3:
        n = max(1, (max(kh, kw) - 1) // 2)
        small_h, small_w = min(kh, 3), min(kw, 3)
        return [ConvStep(in_c if i == 0 else f, f, small_h, small_w,
                         sh if i == n - 1 else 1, sw if i == n - 1 else 1) for i in range(n)]
    if fact == 2:
        return [ConvStep(in_c, f, 1, kw, 1, 1), ConvStep(f, f, kh, 1, sh, sw)]
    if fact == 3:
        return [ParallelStep((ConvStep(in_c, f, 1, kw, sh, sw), ConvStep(in_c, f, kh, 1, sh, sw)))]
    return [ConvStep(in_c, f, kh, kw, sh, sw)]


def _out_channels(steps: list[Step], in_c: int) -> int:
    c = in_c
    for step in steps:
        c = c if isinstance(step, PoolSameStep) else step.out_channels
    return c


def branch_plan(branch: Branch, in_channels: int) -> tuple[Step, ...]:
    """The ops of one enabled inception branch, in order; the branch stride sits on the last op."""
    b, f = branch, branch.filters
    kh, kw, sh, sw = b.kernel_h, b.kernel_w, b.stride_h, b.stride_w
    if b.branch_type == 4:
        return (PoolSameStep(kh, kw), ConvStep(in_channels, f, 1, 1, sh, sw))
    steps: list[Step] = []
    if b.branch_type in (2, 3):
        steps.append(ConvStep(in_channels, f, 1, 1, 1, 1))
    if b.branch_type == 3:
        steps += _factorised(_out_channels(steps, in_channels), f, kh, kw, 1, 1, b.factorisation)
    steps += _factorised(_out_channels(steps, in_channels), f, kh, kw, sh, sw, b.factorisation)
    return tuple(steps)


# ----------------------------------------------------------------------------------- accounting

class _Tally:
    """Parameters and FLOPs of one layer; knows the layer only to name it in an error.

    The layer token is formatted when an error is raised, not up front: `analyse` runs for every
    genome an operator proposes, and formatting every layer would be most of its cost.
    """

    __slots__ = ("layer", "position", "params", "flops")

    def __init__(self, layer: HiddenLayer | OutputLayer, position: int) -> None:
        self.layer, self.position = layer, position
        self.params = 0
        self.flops = 0

    def misfit(self, what: str, shape: Shape) -> GenomeError:
        c, h, w = shape
        return GenomeError(
            f"genome layer {format_layer(self.layer)!r} at position {self.position} does not fit its input "
            f"{c}x{h}x{w} (channels x height x width): {what}",
            "use a smaller kernel, or fewer strided/pooling layers before it")

    def fits(self, kh: int, kw: int, shape: Shape) -> None:
        _, h, w = shape
        if kh > h or kw > w:
            raise self.misfit(f"kernel {kh}x{kw} (h x w) is larger than {h}x{w}", shape)

    def conv(self, step: ConvStep, shape: Shape) -> Shape:
        """conv "same" + BN; returns the output shape."""
        return self.conv_of(step.in_channels, step.out_channels, step.kernel_h, step.kernel_w,
                            step.stride_h, step.stride_w, shape)

    def conv_of(self, c_in: int, c_out: int, kh: int, kw: int, sh: int, sw: int, shape: Shape) -> Shape:
        """`conv` from plain numbers: plain and residual layers need no ConvStep object."""
        _, h, w = shape
        if kh > h or kw > w:
            raise self.misfit(f"kernel {kh}x{kw} (h x w) is larger than {h}x{w}", shape)
        oh, ow = -(-h // sh), -(-w // sw)
        weights = c_in * c_out * kh * kw
        self.params += weights + 2 * c_out  # + BN weight and bias
        self.flops += 2 * weights * oh * ow
        return c_out, oh, ow

    def linear(self, in_features: int, out_features: int) -> Shape:
        self.params += in_features * out_features + out_features
        self.flops += 2 * in_features * out_features
        return (out_features,)

    def steps(self, steps: tuple[Step, ...], shape: Shape) -> Shape:
        for step in steps:
            if isinstance(step, PoolSameStep):
                self.fits(step.kernel_h, step.kernel_w, shape)
            elif isinstance(step, ParallelStep):
                outs = [self.conv(c, shape) for c in step.convs]
                shape = (step.out_channels, outs[0][1], outs[0][2])
            else:
                shape = self.conv(step, shape)
        return shape


def _flat(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _hidden(layer: LayerSpec | InceptionSpec, shape: Shape, tally: _Tally) -> Shape:
    if isinstance(layer, InceptionSpec):
        outs = [tally.steps(branch_plan(b, shape[0]), shape) for b in layer.enabled_branches]
        return sum(o[0] for o in outs), outs[0][1], outs[0][2]
    kh, kw, sh, sw, f = layer.kernel_h, layer.kernel_w, layer.stride_h, layer.stride_w, layer.filters
    if layer.type == "D":
        return tally.linear(_flat(shape), f)
    c, h, w = shape
    if layer.type == "P":
        tally.fits(kh, kw, shape)
        return c, (h - kh) // sh + 1, (w - kw) // sw + 1
    if layer.type == "C":
        return tally.conv_of(c, f, kh, kw, sh, sw, shape)
    # "R": conv s -> BN -> act -> conv 1 -> BN, shortcut identity or 1x1 projection, add, act
    mid = tally.conv_of(c, f, kh, kw, sh, sw, shape)
    out = tally.conv_of(f, f, kh, kw, 1, 1, mid)
    if needs_projection(c, layer):
        tally.conv_of(c, f, 1, 1, sh, sw, shape)
    return out


def needs_projection(in_channels: int, layer: LayerSpec) -> bool:
    """A residual block's shortcut is a 1x1 conv + BN unless shapes already match."""
    return in_channels != layer.filters or (layer.stride_h, layer.stride_w) != (1, 1)


def analyse(genome: Genome) -> Analysis:
    """Shapes, parameters and FLOPs; GenomeError if the genome is malformed or does not fit."""
    check_structure(genome)
    return analyse_checked(genome)


def analyse_checked(genome: Genome) -> Analysis:
    """`analyse` for a genome that has passed check_structure (parse_genome's own)."""
    inp = genome.input
    shape: Shape = (inp.channels, inp.height, inp.width)
    shapes = [shape]
    params = flops = 0
    for position, layer in enumerate(genome.hidden, start=1):
        tally = _Tally(layer, position)
        shape = _hidden(layer, shape, tally)
        shapes.append(shape)
        params, flops = params + tally.params, flops + tally.flops
    tally = _Tally(genome.output, len(genome.hidden) + 1)
    shapes.append(tally.linear(_flat(shape), genome.output.units))
    return Analysis(tuple(shapes), params + tally.params, flops + tally.flops)
