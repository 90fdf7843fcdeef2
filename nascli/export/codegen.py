"""Generate a standalone `model.py` (imports only torch) from a genome.

The generated file holds a few small block classes (a fixed template that mirrors
`nascli.layers`) and one `Network` whose layers are written out explicitly, one line per genome
layer, so a reader can see the architecture. Module names follow `nascli.layers.build_model`
exactly, so a state_dict of the in-process model loads into the generated one with strict=True
(tested on every layer type).
"""

from __future__ import annotations

import textwrap
from typing import Any

from nascli.ga.genome import Genome, format_genome

TEMPLATE_HEADER = '''\
"""{title}

Exported by nascli {version}{origin}.
Genome: {genome}

Needs only PyTorch:

    import torch
    from model import load_model
    model = load_model("weights.pt")          # eval mode, on the CPU
    logits = model(torch.randn(1, {c}, {h}, {w}))  # (batch, {n})

Input: float tensors of shape (batch, {c}, {h}, {w}), standardised like the training data:
`standardise(images)` subtracts INPUT_MEAN and divides by INPUT_STD per channel{norm_note}.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

GENOME = {genome!r}
INPUT_SHAPE = ({c}, {h}, {w})  # channels, height, width
NUM_OUTPUTS = {n}
ACTIVATION = {activation!r}
BN_MOMENTUM = {bn_momentum!r}
DROPOUT = {dropout!r}
INPUT_MEAN = {mean!r}  # per channel, of the raw training images (None: unknown at export time)
INPUT_STD = {std!r}


def standardise(images: torch.Tensor) -> torch.Tensor:
    """Raw images (batch, channels, height, width) -> what the network was trained on."""
    if INPUT_MEAN is None or INPUT_STD is None:
        return images.float()
    mean = torch.tensor(INPUT_MEAN, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(INPUT_STD, dtype=torch.float32).view(1, -1, 1, 1)
    return (images.float() - mean) / std
'''


def generate_model_source(genome: Genome | str, *, activation: str = "leaky_relu", bn_momentum: float = 0.01,
                          dropout: float = 0.5, title: str = "A neural network found by nascli.",
                          origin: str = "", version: str | None = None,
                          normalisation: dict[str, Any] | None = None) -> str:
    """The complete text of model.py for `genome` with the given training-time hyperparameters."""
    from nascli import __version__
    from nascli.export.blocks_template import BLOCKS_SOURCE, layer_constructors

    if isinstance(genome, str):
        from nascli.ga.genome import parse_genome

        genome = parse_genome(genome)
    text = format_genome(genome)
    normalisation = normalisation or {}
    header = TEMPLATE_HEADER.format(
        title=_docstring_text(title), version=version or __version__, origin=_docstring_text(origin), genome=text,
        c=genome.input.channels, h=genome.input.height, w=genome.input.width, n=genome.output.units,
        activation=activation, bn_momentum=float(bn_momentum), dropout=float(dropout),
        mean=_rounded(normalisation.get("mean")), std=_rounded(normalisation.get("std")),
        norm_note="" if normalisation.get("mean") is not None else " (statistics unknown: they were not available)",
    )
    layer_lines = "\n".join(_layer_line(call, layer) for call, layer in layer_constructors(genome))
    network = NETWORK_TEMPLATE.replace("{layers}", layer_lines)
    return header + "\n\n" + textwrap.dedent(BLOCKS_SOURCE).strip() + "\n\n\n" + network


def _docstring_text(value: str) -> str:
    """A value from the database (run id, name, dataset) as text inside the module docstring: no
    control characters, and backslashes and quotes escaped, so it can neither end the docstring
    nor change what the module does. Values used as data are Python literals (`repr`)."""
    from nascli.text import printable

    return printable(value).replace("\\", "\\\\").replace('"', '\\"')


def _rounded(values) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(f"{float(v):.8g}") for v in values)


def _layer_line(call: str, layer: str, indent: str = " " * 12) -> str:
    """One genome layer as an indented constructor line; multi-line calls carry the comment on top."""
    if "\n" not in call:
        return f"{indent}{call},  # {layer}"
    return f"{indent}# {layer}\n" + "\n".join(indent + line for line in call.splitlines()) + ","


# The generated module's entry points, the same for every network class above them.
LOADERS_TEMPLATE = '''\
def build_model() -> Network:
    """A freshly initialised network (train mode)."""
    return Network()


def load_model(weights: str | Path = Path(__file__).with_name("weights.pt"), map_location: str = "cpu") -> Network:
    """The exported network with its trained weights, in eval mode."""
    model = Network()
    state = torch.load(weights, map_location=map_location, weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


if __name__ == "__main__":
    weights_file = Path(__file__).with_name("weights.pt")
    net = load_model(weights_file) if weights_file.exists() else build_model().eval()
    with torch.inference_mode():
        out = net(torch.randn(2, *INPUT_SHAPE))
    print(f"{GENOME}: input {tuple(INPUT_SHAPE)} -> output {tuple(out.shape[1:])}, "
          f"{sum(p.numel() for p in net.parameters()):,} parameters")
'''


NETWORK_TEMPLATE = '''\
class Network(nn.Sequential):
    """The architecture of GENOME: one child module per genome layer, the output layer last."""

    def __init__(self) -> None:
        super().__init__(
{layers}
        )


''' + LOADERS_TEMPLATE
