"""Hypothesis strategies for valid Klos genomes (shared by genome, cost, layer and operator tests).

`genomes()` builds valid genomes by construction: it threads the shape layer by layer through
`nascli.ga.cost.analyse` and simply drops a drawn layer that would not fit, so no draw is
rejected and hypothesis never has to filter. Import with `from genome_strategies import genomes`
(pytest puts tests/unit on sys.path).
"""

from __future__ import annotations

from hypothesis import strategies as st

from nascli.errors import GenomeError
from nascli.ga.cost import analyse
from nascli.ga.genome import Branch, Genome, InceptionSpec, InputLayer, LayerSpec, OutputLayer

INPUT_SHAPES = ((1, 28, 28), (3, 32, 32), (1, 8, 8))  # (channels, height, width)


def branches(max_kernel: int = 5, max_filters: int = 8, stride: tuple[int, int] = (1, 1),
             factorisations: tuple[int, ...] = (0, 1, 2, 3)):
    """One inception branch; disabled branches get random junk (the dataclass normalises it)."""
    sizes = st.integers(1, max_kernel)
    return st.builds(
        Branch,
        branch_type=st.integers(1, 4),
        enabled=st.booleans(),
        factorisation=st.sampled_from(factorisations),
        kernel_w=sizes,
        kernel_h=sizes,
        stride_w=st.just(stride[0]),
        stride_h=st.just(stride[1]),
        filters=st.integers(1, max_filters),
    )


@st.composite
def inceptions(draw, max_kernel: int = 5, max_filters: int = 8,
               factorisations: tuple[int, ...] = (0, 1, 2, 3)) -> InceptionSpec:
    stride = draw(st.tuples(st.integers(1, 2), st.integers(1, 2)))
    parts = draw(st.lists(branches(max_kernel, max_filters, stride, factorisations),
                          min_size=4, max_size=4))
    if not any(b.enabled for b in parts):
        first = parts[0]
        parts[0] = Branch(first.branch_type, True, first.factorisation, first.kernel_w,
                          first.kernel_h, first.stride_w, first.stride_h, max(first.filters, 1))
    return InceptionSpec(tuple(parts))


@st.composite
def layer_specs(draw, layer_type: str, max_kernel: int = 5, max_filters: int = 16,
                max_units: int = 32) -> LayerSpec:
    if layer_type == "D":
        return LayerSpec("D", 1, 1, 1, 1, draw(st.integers(1, max_units)))
    kernel_w, kernel_h = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    stride_w, stride_h = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    filters = 0 if layer_type == "P" else draw(st.integers(1, max_filters))
    return LayerSpec(layer_type, kernel_w, kernel_h, stride_w, stride_h, filters)


@st.composite
def genomes(draw, input_shapes=INPUT_SHAPES, min_hidden: int = 0, max_hidden: int = 6,
            layer_types: str = "CPRDI",
            max_kernel: int = 5, max_filters: int = 16, max_units: int = 32,
            max_outputs: int = 10) -> Genome:
    """A valid genome (parses, fits its input). Small filter counts keep torch tests fast."""
    channels, height, width = draw(st.sampled_from(input_shapes))
    genome = Genome(InputLayer(width, height, channels), (),
                    OutputLayer(draw(st.integers(1, max_outputs))))
    seen_dense = False
    for _ in range(draw(st.integers(min_hidden, max_hidden))):
        layer_type = draw(st.sampled_from(layer_types))
        if seen_dense and layer_type != "D":
            continue  # spatial layers cannot follow a dense one: drop it
        if layer_type == "I":
            layer = draw(inceptions(max_kernel, max(1, max_filters // 2)))
        else:
            layer = draw(layer_specs(layer_type, max_kernel, max_filters, max_units))
        candidate = Genome(genome.input, genome.hidden + (layer,), genome.output)
        try:
            analyse(candidate)
        except GenomeError:
            continue  # does not fit the current shape: drop it, keep drawing
        genome = candidate
        seen_dense = seen_dense or layer_type == "D"
    return genome
