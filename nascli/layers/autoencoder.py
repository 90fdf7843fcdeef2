"""Hajewski et al. (seed 002) modular autoencoders from a module genome (`5x5conv2d:16,3x3conv2d:32`).

encoder: the layer module (nascli.layers.modular: zero-padded convs, each + ReLU, and 2D dropouts:
         spatial size kept), then `reductions`
         reduction modules: 1x1 conv doubling the channels + ReLU, 2x2 max-pool stride 2;
decoder: as many dilation modules: 1x1 conv halving the channels + ReLU, 2x2 transpose conv
         stride 2 + ReLU (doubles height and width); the layer module again; a 1x1 conv back to
         the input channels and tanh (inputs are scaled to [-1, 1]).
The paper keeps a single layer module (more over-fit), so the module appears once on each side.
`autoencoder_cost` counts parameters (nascli.ga.module_operators.autoencoder_params) and FLOPs
without building, for the max_params check.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from nascli.ga.modules import ModuleGenome, format_module_genome
from nascli.layers.modular import as_module_genome, check_reductions_fit, module_conv_flops, module_layers


@dataclass(frozen=True)
class AutoencoderCost:
    params: int
    flops: int  # 2 x multiply-adds of convolutions and transpose convolutions, batch of one
    code_shape: tuple[int, int, int]  # the intermediate representation (channels, height, width)


def autoencoder_cost(genome: ModuleGenome | str, input_shape: tuple[int, int, int], reductions: int) -> AutoencoderCost:
    """Exact parameter count (as torch counts it) and FLOPs of `build_autoencoder`, without torch work."""
    from nascli.ga.module_operators import autoencoder_params

    genome = as_module_genome(genome)
    channels, height, width = input_shape
    check_reductions_fit(height, width, reductions)
    flops = 0

    def conv(kernel: int, c_in: int, c_out: int, pixels: int) -> None:
        nonlocal flops
        flops += 2 * kernel * kernel * c_in * c_out * pixels

    pixels = height * width
    flops, c = module_conv_flops(genome, channels, pixels)
    for _ in range(reductions):
        conv(1, c, 2 * c, pixels)
        c, pixels = 2 * c, pixels // 4
    code = (c, height >> reductions, width >> reductions)
    for _ in range(reductions):
        conv(1, c, c // 2, pixels)
        c //= 2
        conv(2, c, c, pixels)  # transpose conv: each input pixel spreads over a 2x2 output patch
        pixels *= 4
    module, c = module_conv_flops(genome, c, pixels)
    flops += module
    conv(1, c, channels, pixels)
    return AutoencoderCost(autoencoder_params(genome, channels, reductions), flops, code)


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


def build_autoencoder(genome: ModuleGenome | str, input_shape: tuple[int, int, int], reductions: int) -> Autoencoder:
    """The autoencoder of a module genome for inputs (channels, height, width)."""
    genome = as_module_genome(genome)
    channels, height, width = input_shape
    check_reductions_fit(height, width, reductions)
    encoder, c = module_layers(genome, channels)
    for _ in range(reductions):
        encoder += [nn.Conv2d(c, 2 * c, 1), nn.ReLU(inplace=True), nn.MaxPool2d(2, stride=2)]
        c *= 2
    decoder: list[nn.Module] = []
    for _ in range(reductions):
        decoder += [nn.Conv2d(c, c // 2, 1), nn.ReLU(inplace=True),
                    nn.ConvTranspose2d(c // 2, c // 2, 2, stride=2), nn.ReLU(inplace=True)]
        c //= 2
    module, c = module_layers(genome, c)
    decoder += [*module, nn.Conv2d(c, channels, 1), nn.Tanh()]
    return Autoencoder(nn.Sequential(*encoder), nn.Sequential(*decoder), format_module_genome(genome),
                       (channels, height, width))
