"""Hajewski et al. module networks from a module genome (`5x5conv2d:16,dropout2d,3x3conv2d:32`).

The layer module (shared by the autoencoder of seed 002 and the classifier of seed 001): every
convolution zero-pads to keep height and width and is followed by ReLU; `dropout2d` is
nn.Dropout2d(0.5), which zeroes whole channels while training and passes its input through.

The classifier (seed 001, Sec. 3): the module, then `reductions` times a reduction module (1x1
conv doubling the channels + ReLU, 2x2 max-pool stride 2) followed by the module again (the
module is repeated, its weights are not shared); then the classifier head: global average pooling
and one linear layer to the classes (the loss applies the softmax). `classifier_cost` counts
parameters and FLOPs without building, for the max_params check.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from nascli.errors import GenomeError
from nascli.ga.modules import (
    DROPOUT_P,
    DropoutLayer,
    ModuleGenome,
    channels_after,
    check_module_genome,
    format_module_genome,
    parse_module_genome,
)


def as_module_genome(genome: ModuleGenome | str) -> ModuleGenome:
    if isinstance(genome, str):
        return parse_module_genome(genome)
    check_module_genome(genome)
    return genome


def check_reductions_fit(height: int, width: int, reductions: int) -> None:
    factor = 2 ** reductions
    if reductions < 0 or height % factor or width % factor:
        raise GenomeError(f"{reductions} reduction modules need height and width divisible by {factor}, "
                          f"the input is {height}x{width}", "use fewer reduction modules")


def same_conv(c_in: int, c_out: int, kernel: int) -> list[nn.Module]:
    """A conv that keeps height and width. Even kernels pad one more on the right/bottom, explicitly
    (torch's padding='same' would copy the input for them on every call)."""
    if kernel % 2:
        return [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)]
    before = (kernel - 1) // 2
    after = kernel - 1 - before
    return [nn.ZeroPad2d((before, after, before, after)), nn.Conv2d(c_in, c_out, kernel)]


def module_layers(genome: ModuleGenome, in_channels: int) -> tuple[list[nn.Module], int]:
    """The torch layers of one pass through the module, and the channels it outputs."""
    layers: list[nn.Module] = []
    c = in_channels
    for layer in genome.layers:
        if isinstance(layer, DropoutLayer):
            layers.append(nn.Dropout2d(DROPOUT_P))
        else:
            layers += [*same_conv(c, layer.filters, layer.kernel), nn.ReLU(inplace=True)]
        c = channels_after(layer, c)
    return layers, c


def module_conv_flops(genome: ModuleGenome, in_channels: int, pixels: int) -> tuple[int, int]:
    """(FLOPs of the module's convolutions for one input, channels out): 2 x multiply-adds."""
    flops = 0
    c = in_channels
    for layer in genome.layers:
        if not isinstance(layer, DropoutLayer):
            flops += 2 * layer.kernel * layer.kernel * c * layer.filters * pixels
        c = channels_after(layer, c)
    return flops, c


@dataclass(frozen=True)
class ClassifierCost:
    params: int
    flops: int  # 2 x multiply-adds of the convolutions and the linear layer, batch of one


def classifier_cost(genome: ModuleGenome | str, input_shape: tuple[int, int, int], reductions: int,
                    classes: int) -> ClassifierCost:
    """Exact parameters (as torch counts them) and FLOPs of `build_modular_classifier`, without torch work."""
    from nascli.ga.module_operators import classifier_params

    genome = as_module_genome(genome)
    channels, height, width = input_shape
    check_reductions_fit(height, width, reductions)
    pixels = height * width
    flops, c = module_conv_flops(genome, channels, pixels)
    for _ in range(reductions):
        flops += 2 * c * 2 * c * pixels
        pixels //= 4
        module, c = module_conv_flops(genome, 2 * c, pixels)
        flops += module
    flops += 2 * c * classes
    return ClassifierCost(classifier_params(genome, channels, reductions, classes), flops)


class ModularClassifier(nn.Module):
    def __init__(self, features: nn.Sequential, head: nn.Linear, genome: str,
                 input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.features = features
        self.head = head
        self.genome = genome
        self.input_shape = input_shape

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


def build_modular_classifier(genome: ModuleGenome | str, input_shape: tuple[int, int, int], reductions: int,
                             classes: int) -> ModularClassifier:
    """Seed 001's network of a module genome for inputs (channels, height, width)."""
    genome = as_module_genome(genome)
    channels, height, width = input_shape
    check_reductions_fit(height, width, reductions)
    features, c = module_layers(genome, channels)
    for _ in range(reductions):
        features += [nn.Conv2d(c, 2 * c, 1), nn.ReLU(inplace=True), nn.MaxPool2d(2, stride=2)]
        module, c = module_layers(genome, 2 * c)
        features += module
    return ModularClassifier(nn.Sequential(*features), nn.Linear(c, classes), format_module_genome(genome),
                             (channels, height, width))
