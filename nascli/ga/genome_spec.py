"""The Klos layer-string genome as frozen specs: layer dataclasses, canonical format, and the
structural checks (ranges and layer order) that need no shapes.

Pure standard library. `nascli.ga.cost` infers shapes from these specs; `nascli.ga.genome` parses
strings into them and runs both checks, so a parsed genome always builds.
"""

from __future__ import annotations

from dataclasses import dataclass

from nascli.errors import GenomeError

LAYER_SEPARATOR = ":"
HIDDEN_TYPES = ("C", "P", "R", "D")
INCEPTION_TYPE = "I"
BRANCH_TYPES = (1, 2, 3, 4)
FACTORISATIONS = (0, 1, 2, 3)
SPATIAL_TYPES = ("C", "P", "R", "I")

_MAX_TOKEN_SHOWN = 40


@dataclass(frozen=True)
class InputLayer:
    width: int
    height: int
    channels: int = 1


@dataclass(frozen=True)
class OutputLayer:
    units: int


@dataclass(frozen=True)
class LayerSpec:
    type: str  # 'C' conv | 'P' max-pool | 'R' residual | 'D' dense
    kernel_w: int
    kernel_h: int
    stride_w: int
    stride_h: int
    filters: int


@dataclass(frozen=True)
class Branch:
    branch_type: int  # 1..4, see docs/genome.md
    enabled: bool
    factorisation: int  # 0 none, 1 smaller kernels, 2 asymmetric, 3 expanded
    kernel_w: int
    kernel_h: int
    stride_w: int
    stride_h: int
    filters: int

    def __post_init__(self) -> None:
        # A disabled branch builds nothing, so its other fields are normalised: equal architectures
        # must give equal strings (and parse(format(b)) == b for a branch built directly).
        if not self.enabled:
            for name, value in (("enabled", False), ("factorisation", 0), ("kernel_w", 1),
                                ("kernel_h", 1), ("stride_w", 1), ("stride_h", 1), ("filters", 0)):
                object.__setattr__(self, name, value)


@dataclass(frozen=True)
class InceptionSpec:
    branches: tuple[Branch, Branch, Branch, Branch]

    @property
    def type(self) -> str:
        return INCEPTION_TYPE

    @property
    def enabled_branches(self) -> tuple[Branch, ...]:
        return tuple(b for b in self.branches if b.enabled)

    @property
    def stride(self) -> tuple[int, int]:
        """(stride_w, stride_h) shared by the enabled branches."""
        first = self.enabled_branches[0]
        return first.stride_w, first.stride_h


HiddenLayer = LayerSpec | InceptionSpec


@dataclass(frozen=True)
class Genome:
    input: InputLayer
    hidden: tuple[HiddenLayer, ...]
    output: OutputLayer

    def __str__(self) -> str:
        return format_genome(self)


# ---------------------------------------------------------------------------------------- format

def format_layer(layer: InputLayer | OutputLayer | HiddenLayer) -> str:
    """One layer token in canonical form."""
    if isinstance(layer, InputLayer):
        tail = "" if layer.channels == 1 else f"_{layer.channels}"
        return f"In_{layer.width}_{layer.height}{tail}"
    if isinstance(layer, OutputLayer):
        return f"D_{layer.units}"
    if isinstance(layer, LayerSpec):
        return (f"{layer.type}_{layer.kernel_w}-{layer.kernel_h}-{layer.stride_w}-"
                f"{layer.stride_h}-{layer.filters}")
    if isinstance(layer, InceptionSpec):
        return ".".join([INCEPTION_TYPE] + [_format_branch(b) for b in layer.branches])
    raise TypeError(f"not a genome layer: {layer!r}")


def _format_branch(b: Branch) -> str:
    return (f"{b.branch_type}-{int(b.enabled)}-{b.factorisation}_{b.kernel_w}-{b.kernel_h}-"
            f"{b.stride_w}-{b.stride_h}-{b.filters}")


def format_genome(genome: Genome) -> str:
    """Canonical string: equal genomes give equal strings, and parse_genome() reads it back."""
    layers = [genome.input, *genome.hidden, genome.output]
    return LAYER_SEPARATOR.join(format_layer(layer) for layer in layers)


def _shown(token: str) -> str:
    if len(token) <= _MAX_TOKEN_SHOWN:
        return repr(token)
    return repr(token[:_MAX_TOKEN_SHOWN] + "...")


def _error(token: str, position: int, expected: str, hint: str | None = None) -> GenomeError:
    return GenomeError(f"bad genome layer {_shown(token)} at position {position}: expected {expected}",
                       hint or "see docs/genome.md for the layer grammar")


def _bad_layer(layer: InputLayer | OutputLayer | HiddenLayer, position: int, expected: str,
               hint: str | None = None) -> GenomeError:
    # Formats the token only when there is an error to report: validation runs for every genome
    # an operator proposes, and eager formatting was most of its cost.
    return _error(format_layer(layer), position, expected, hint)


# ------------------------------------------------------------------------------------ validation

def check_structure(genome: Genome) -> None:
    """Ranges and layer order, independent of shapes. Raises GenomeError; returns None if fine."""
    inp = genome.input
    if min(inp.width, inp.height, inp.channels) < 1:
        raise _bad_layer(inp, 0, "input width, height and channels >= 1")
    seen_dense = False
    for position, layer in enumerate(genome.hidden, start=1):
        if isinstance(layer, InceptionSpec):
            _check_inception(layer, position)
        elif isinstance(layer, LayerSpec):
            _check_layer(layer, position)
        else:
            raise GenomeError(f"position {position}: not a genome layer: {layer!r}")
        if layer.type in SPATIAL_TYPES and seen_dense:
            raise _bad_layer(layer, position, "no convolution, pooling, residual or inception layer "
                         "after a dense layer", "move dense layers to the end, before the output")
        seen_dense = seen_dense or layer.type == "D"
    out_position = len(genome.hidden) + 1
    if genome.output.units < 1:
        raise _bad_layer(genome.output, out_position, "at least 1 output unit")


def _check_layer(layer: LayerSpec, position: int) -> None:
    if layer.type not in HIDDEN_TYPES:
        raise _bad_layer(layer, position, f"layer type one of {', '.join(HIDDEN_TYPES)} or I")
    if min(layer.kernel_w, layer.kernel_h) < 1:
        raise _bad_layer(layer, position, "kernel sizes >= 1")
    if min(layer.stride_w, layer.stride_h) < 1:
        raise _bad_layer(layer, position, "strides >= 1")
    if layer.type == "P":
        if layer.filters != 0:
            raise _bad_layer(layer, position, "filters 0 for a max-pool layer (it keeps the channels)",
                         f"write P_{layer.kernel_w}-{layer.kernel_h}-{layer.stride_w}-{layer.stride_h}-0")
    elif layer.filters < 1:
        raise _bad_layer(layer, position, f"at least 1 filter/unit for a {layer.type} layer")
    if layer.type == "D" and (layer.kernel_w, layer.kernel_h, layer.stride_w, layer.stride_h) != (1, 1, 1, 1):
        raise _bad_layer(layer, position, "kernels and strides all 1 for a hidden dense layer",
                     f"write D_1-1-1-1-{layer.filters}")


def _check_inception(layer: InceptionSpec, position: int) -> None:
    if len(layer.branches) != 4:
        raise _bad_layer(layer, position, "exactly 4 inception branches")
    for slot, b in enumerate(layer.branches, start=1):
        if b.branch_type not in BRANCH_TYPES:
            raise _bad_layer(layer, position, f"branch {slot} type 1, 2, 3 or 4, got {b.branch_type}")
        if not b.enabled:
            continue
        if b.factorisation not in FACTORISATIONS:
            raise _bad_layer(layer, position, f"branch {slot} factorisation 0-3, got {b.factorisation}")
        if min(b.kernel_w, b.kernel_h) < 1 or min(b.stride_w, b.stride_h) < 1:
            raise _bad_layer(layer, position, f"branch {slot} kernels and strides >= 1")
        if b.filters < 1:
            raise _bad_layer(layer, position, f"branch {slot} at least 1 filter when enabled")
    enabled = layer.enabled_branches
    if not enabled:
        raise _bad_layer(layer, position, "at least one enabled inception branch")
    if len({(b.stride_w, b.stride_h) for b in enabled}) != 1:
        raise _bad_layer(layer, position, "the same stride on every enabled inception branch",
                     "branch outputs are concatenated, so their sizes must agree")
