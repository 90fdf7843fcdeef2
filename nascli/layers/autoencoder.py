"""Hajewski et al. (seed 002) modular autoencoders from a module genome (`5x5conv2d:16,3x3conv2d:32`).

encoder: the layer module (zero-padded convs, each + ReLU: spatial size kept), then `reductions`
         reduction modules: 1x1 conv doubling the channels + ReLU, 2x2 max-pool stride 2;
decoder: as many dilation modules: 1x1 conv halving the channels + ReLU, 2x2 transpose conv
         stride 2 + ReLU (doubles height and width); the layer module again; a 1x1 conv back to
         the input channels and tanh (inputs are scaled to [-1, 1]).
The paper keeps a single layer module (more over-fit), so the module appears once on each side.
`autoencoder_cost` counts parameters and FLOPs without building, for the max_params check.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from nascli.errors import GenomeError
from nascli.ga.modules import ModuleGenome, check_module_genome, format_module_genome, parse_module_genome


@dataclass(frozen=True)
class AutoencoderCost:
    params: int
    flops: int  # 2 x multiply-adds of convolutions and transpose convolutions, batch of one
    code_shape: tuple[int, int, int]  # the intermediate representation (channels, height, width)


def _as_genome(genome: ModuleGenome | str) -> ModuleGenome:
    if isinstance(genome, str):
        return parse_module_genome(genome)
    check_module_genome(genome)
    return genome


def _check_fits(height: int, width: int, reductions: int) -> None:
    factor = 2 ** reductions
    if reductions < 0 or height % factor or width % factor:
        raise GenomeError(f"{reductions} reduction modules need height and width divisible by {factor}, "
                          f"the input is {height}x{width}", "use fewer reduction modules")


def autoencoder_cost(genome: ModuleGenome | str, input_shape: tuple[int, int, int], reductions: int) -> AutoencoderCost:
    """Exact parameter count (as torch counts it) and FLOPs of `build_autoencoder`, without torch work."""
    genome = _as_genome(genome)
    channels, height, width = input_shape
    _check_fits(height, width, reductions)
    params = flops = 0

    def conv(kernel: int, c_in: int, c_out: int, pixels: int) -> None:
        nonlocal params, flops
        params += kernel * kernel * c_in * c_out + c_out
        flops += 2 * kernel * kernel * c_in * c_out * pixels

    pixels = height * width
    c = channels
    for layer in genome.layers:
        conv(layer.kernel, c, layer.filters, pixels)
        c = layer.filters
    for _ in range(reductions):
        conv(1, c, 2 * c, pixels)
        c, pixels = 2 * c, pixels // 4
    code = (c, height >> reductions, width >> reductions)
    for _ in range(reductions):
        conv(1, c, c // 2, pixels)
        c //= 2
        conv(2, c, c, pixels)  # transpose conv: each input pixel spreads over a 2x2 output patch
        pixels *= 4
    for layer in genome.layers:
        conv(layer.kernel, c, layer.filters, pixels)
        c = layer.filters
    conv(1, c, channels, pixels)
    return AutoencoderCost(params, flops, code)


class Autoencoder(nn.Module):
    def __init__(self, encoder: nn.Sequential, decoder: nn.Sequential, genome: str,
                 input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.genome = genome
        self.input_shape = input_shape

    def forward(self, x):
        return self.decoder(self.encoder(x))


def _same_conv(c_in: int, c_out: int, kernel: int) -> list[nn.Module]:
    """A conv that keeps height and width. Even kernels pad one more on the right/bottom, explicitly
    (torch's padding='same' would copy the input for them on every call)."""
    if kernel % 2:
        return [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)]
    before = (kernel - 1) // 2
    after = kernel - 1 - before
    return [nn.ZeroPad2d((before, after, before, after)), nn.Conv2d(c_in, c_out, kernel)]


def _module(genome: ModuleGenome, in_channels: int) -> tuple[list[nn.Module], int]:
    layers: list[nn.Module] = []
    c = in_channels
    for layer in genome.layers:
        layers += [*_same_conv(c, layer.filters, layer.kernel), nn.ReLU(inplace=True)]
        c = layer.filters
    return layers, c


def build_autoencoder(genome: ModuleGenome | str, input_shape: tuple[int, int, int], reductions: int) -> Autoencoder:
    """The autoencoder of a module genome for inputs (channels, height, width)."""
    genome = _as_genome(genome)
    channels, height, width = input_shape
    _check_fits(height, width, reductions)
    encoder, c = _module(genome, channels)
    for _ in range(reductions):
        encoder += [nn.Conv2d(c, 2 * c, 1), nn.ReLU(inplace=True), nn.MaxPool2d(2, stride=2)]
        c *= 2
    decoder: list[nn.Module] = []
    for _ in range(reductions):
        decoder += [nn.Conv2d(c, c // 2, 1), nn.ReLU(inplace=True),
                    nn.ConvTranspose2d(c // 2, c // 2, 2, stride=2), nn.ReLU(inplace=True)]
        c //= 2
    module, c = _module(genome, c)
    decoder += [*module, nn.Conv2d(c, channels, 1), nn.Tanh()]
    return Autoencoder(nn.Sequential(*encoder), nn.Sequential(*decoder), format_module_genome(genome),
                       (channels, height, width))
