"""Hajewski module genome (seed 002): `5x5conv2d:16,dropout2d,3x3conv2d:32` — a sequential layer module
that a macro structure repeats (module -> reduction 1x1 conv + 2x2 max-pool -> module ...).

A layer is a zero-padded convolution `KxKconv2d:F` or seed 002's 2D dropout `dropout2d` (drops whole
channels with p = 0.5 while training; it keeps the channel count).

Pure standard library; grammar in docs/genome.md. Layers zero-pad to keep their input size, so any
module fits any input: only syntax and ranges are checked here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nascli.errors import GenomeError
from nascli.ga.genome import canonical_string_hash

LAYER_SEPARATOR = ","
_LAYER = re.compile(r"([0-9]{1,3})x([0-9]{1,3})conv2d:([0-9]{1,6})", re.ASCII)
DROPOUT_TOKEN = "dropout2d"
DROPOUT_P = 0.5  # seed 002, Sec. 3
_MAX_TOKEN_SHOWN = 40


@dataclass(frozen=True)
class ModuleLayer:
    kernel: int  # square kernel: `kernel x kernel`
    filters: int


@dataclass(frozen=True)
class DropoutLayer:
    """Seed 002's 2D dropout (p = DROPOUT_P): no weights, channels pass through."""


DROPOUT2D = DropoutLayer()
ModuleItem = ModuleLayer | DropoutLayer


def channels_after(layer: ModuleItem, channels: int) -> int:
    """The channels a layer outputs for `channels` in: a convolution's filters, dropout's input."""
    return channels if isinstance(layer, DropoutLayer) else layer.filters


@dataclass(frozen=True)
class ModuleGenome:
    layers: tuple[ModuleItem, ...]

    def __str__(self) -> str:
        return format_module_genome(self)


def format_module_layer(layer: ModuleItem) -> str:
    if isinstance(layer, DropoutLayer):
        return DROPOUT_TOKEN
    return f"{layer.kernel}x{layer.kernel}conv2d:{layer.filters}"


def format_module_genome(genome: ModuleGenome) -> str:
    """Canonical string; parse_module_genome() reads it back to an equal genome."""
    return LAYER_SEPARATOR.join(format_module_layer(layer) for layer in genome.layers)


def module_genome_hash(genome: ModuleGenome) -> str:
    return canonical_string_hash(format_module_genome(genome))


def _error(token: str, position: int, expected: str) -> GenomeError:
    shown = token if len(token) <= _MAX_TOKEN_SHOWN else token[:_MAX_TOKEN_SHOWN] + "..."
    return GenomeError(f"bad module layer {shown!r} at position {position}: expected {expected}",
                       "write layers like 5x5conv2d:16 or dropout2d joined by ',' (see docs/genome.md)")


def _parse_layer(token: str, position: int) -> ModuleItem:
    if token == DROPOUT_TOKEN:
        return DROPOUT2D
    match = _LAYER.fullmatch(token)
    if match is None:
        raise _error(token, position, "KxKconv2d:F with a kernel of at most 3 digits and at most "
                     f"6-digit filters, or {DROPOUT_TOKEN}")
    kernel_h, kernel_w, filters = (int(g) for g in match.groups())
    if kernel_h != kernel_w:
        raise _error(token, position, f"a square kernel, got {kernel_h}x{kernel_w}")
    layer = ModuleLayer(kernel_h, filters)
    check_module_layer(layer, position)
    return layer


def check_module_layer(layer: ModuleItem, position: int) -> None:
    if isinstance(layer, DropoutLayer):
        return
    if not isinstance(layer, ModuleLayer):
        raise GenomeError(f"module layer {position} is a {type(layer).__name__}, not a ModuleLayer or DropoutLayer")
    token = format_module_layer(layer)
    if layer.kernel < 1:
        raise _error(token, position, "a kernel size >= 1")
    if layer.filters < 1:
        raise _error(token, position, "at least 1 filter")


def check_module_genome(genome: ModuleGenome) -> None:
    """Ranges of a directly built module genome; GenomeError on the first bad layer."""
    if not genome.layers:
        raise GenomeError("a module genome needs at least one layer", "e.g. 3x3conv2d:16")
    for position, layer in enumerate(genome.layers):
        check_module_layer(layer, position)


def parse_module_genome(text: str) -> ModuleGenome:
    """Parse `5x5conv2d:16,dropout2d,3x3conv2d:32`; GenomeError naming the bad token and its position."""
    if not isinstance(text, str):
        raise GenomeError(f"a module genome must be a string, got {type(text).__name__}")
    text = text.strip()
    if not text:
        raise GenomeError("empty module genome string", "e.g. 5x5conv2d:16,3x3conv2d:32")
    return ModuleGenome(tuple(_parse_layer(token, position)
                              for position, token in enumerate(text.split(LAYER_SEPARATOR))))
