"""Generate a standalone `model.py` (imports only torch) for a seed 001 modular classifier.

The layers are those of `nascli.layers.modular.build_modular_classifier`, written out one
constructor per line (read from the built network, so the two cannot differ) with the genome
token or the reduction module each belongs to as a comment; module names are the same
(`features.N`, `head`), so the in-process state_dict loads into the generated network with
strict=True.
"""

from __future__ import annotations

from typing import Any

from nascli.export.codegen import LOADERS_TEMPLATE, TEMPLATE_HEADER, _docstring_text, _rounded
from nascli.ga.modules import format_module_genome, format_module_layer

NETWORK_TEMPLATE = '''\
class Network(nn.Module):
    """GENOME's module, then REDUCTIONS x (reduction module, the module again); global average
    pooling and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
{layers}
        )
        self.head = nn.Linear({head_in}, NUM_OUTPUTS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


''' + LOADERS_TEMPLATE


def _constructor(layer) -> str:
    from torch import nn

    if isinstance(layer, nn.Conv2d):
        padding = layer.padding if isinstance(layer.padding, str) else layer.padding[0]
        return f"nn.Conv2d({layer.in_channels}, {layer.out_channels}, {layer.kernel_size[0]}, padding={padding})"
    if isinstance(layer, nn.ZeroPad2d):
        return f"nn.ZeroPad2d({tuple(layer.padding)})"
    if isinstance(layer, nn.ReLU):
        return "nn.ReLU(inplace=True)"
    if isinstance(layer, nn.MaxPool2d):
        return "nn.MaxPool2d(2, stride=2)"
    if isinstance(layer, nn.Dropout2d):
        return f"nn.Dropout2d({layer.p})"
    raise TypeError(f"no constructor line for {type(layer).__name__}")  # the builder gained a layer type


def _comments(genome, reductions: int) -> list[str]:
    """What each child of `features` belongs to, in order (mirrors build_modular_classifier)."""
    from nascli.ga.modules import DropoutLayer

    def module(label: str) -> list[str]:
        parts = []
        for layer in genome.layers:
            token = format_module_layer(layer)
            if isinstance(layer, DropoutLayer):
                parts.append(f"{label}{token}")
            else:
                padded = layer.kernel % 2 == 0
                parts += [f"{label}{token}"] * (3 if padded else 2)  # [pad], conv, relu
        return parts

    comments = module("module 1: ")
    for index in range(reductions):
        comments += [f"reduction {index + 1}"] * 3 + module(f"module {index + 2}: ")
    return comments


def generate_modular_source(genome: str, input_shape: tuple[int, int, int], reductions: int, classes: int, *,
                            title: str = "A modular network found by nascli.", origin: str = "",
                            version: str | None = None, normalisation: dict[str, Any] | None = None) -> str:
    """The complete text of model.py for the modular classifier of `genome`."""
    from nascli import __version__
    from nascli.layers.modular import as_module_genome, build_modular_classifier

    parsed = as_module_genome(genome)
    text = format_module_genome(parsed)
    model = build_modular_classifier(parsed, input_shape, reductions, classes)
    normalisation = normalisation or {}
    c, h, w = input_shape
    header = TEMPLATE_HEADER.format(
        title=_docstring_text(title), version=version or __version__, origin=_docstring_text(origin), genome=text,
        c=c, h=h, w=w, n=classes, activation="relu", bn_momentum=0.0, dropout=0.5,
        mean=_rounded(normalisation.get("mean")), std=_rounded(normalisation.get("std")),
        norm_note="" if normalisation.get("mean") is not None else " (statistics unknown: they were not available)",
    )
    # the Klos block settings of the shared header mean nothing here: say what the network uses
    header = (header.replace("ACTIVATION = 'relu'\nBN_MOMENTUM = 0.0\nDROPOUT = 0.5\n",
                             f"REDUCTIONS = {reductions}  # reduction modules; the module runs REDUCTIONS + 1 times\n"))
    comments = _comments(parsed, reductions)
    indent = " " * 12
    lines = "\n".join(f"{indent}{_constructor(layer)},  # {comment}"
                      for layer, comment in zip(model.features, comments, strict=True))
    network = NETWORK_TEMPLATE.replace("{layers}", lines).replace("{head_in}", str(model.head.in_features))
    return header + "\n\n" + network
