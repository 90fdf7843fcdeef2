"""Hajewski module genome: round trips and GenomeError discipline."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nascli.errors import GenomeError
from nascli.ga.modules import (
    DROPOUT2D,
    ModuleGenome,
    ModuleLayer,
    check_module_genome,
    format_module_genome,
    module_genome_hash,
    parse_module_genome,
)

module_genomes = st.builds(
    ModuleGenome,
    st.lists(st.one_of(st.builds(ModuleLayer, st.sampled_from([1, 2, 3, 5, 7]), st.sampled_from([8, 16, 32, 64])),
                       st.just(DROPOUT2D)),
             min_size=1, max_size=6).map(tuple),
)


def test_paper_example():
    text = "5x5conv2d:16,3x3conv2d:32,3x3conv2d:32"
    genome = parse_module_genome(text)
    assert genome == ModuleGenome((ModuleLayer(5, 16), ModuleLayer(3, 32), ModuleLayer(3, 32)))
    assert format_module_genome(genome) == str(genome) == text


def test_dropout_example_of_table_3():
    """Seed 002 Table 3: 16-3x3conv2d – Dropout2D – 32-1x1conv2d."""
    genome = parse_module_genome("3x3conv2d:16,dropout2d,1x1conv2d:32")
    assert genome == ModuleGenome((ModuleLayer(3, 16), DROPOUT2D, ModuleLayer(1, 32)))
    assert str(genome) == "3x3conv2d:16,dropout2d,1x1conv2d:32"


@given(module_genomes)
def test_round_trip_and_hash(genome):
    text = format_module_genome(genome)
    assert parse_module_genome(text) == genome
    assert len(module_genome_hash(genome)) == 16
    assert module_genome_hash(parse_module_genome(text)) == module_genome_hash(genome)


def test_canonical_form_drops_leading_zeros_and_outer_space():
    assert format_module_genome(parse_module_genome(" 03x03conv2d:016\n")) == "3x3conv2d:16"


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("5x5conv2d:16,", "position 1"),
    ("5x5conv2d", "position 0"),
    ("5x3conv2d:16", "square"),
    ("3x3conv2d:0", "at least 1 filter"),
    ("0x0conv2d:8", "kernel size"),
    ("3x3conv3d:8", "KxKconv2d:F"),
    ("3x3conv2d:8, 3x3conv2d:8", "position 1"),
    ("3x3conv2d:-8", "position 0"),
    ("3x3conv2d:99999999", "6-digit"),
    ("y" * 10_000, "position 0"),
])
def test_malformed_module_strings(text, fragment):
    with pytest.raises(GenomeError) as info:
        parse_module_genome(text)
    assert fragment in str(info.value) and len(str(info.value)) < 300


def test_directly_built_bad_module_genomes():
    for genome in (ModuleGenome(()), ModuleGenome((ModuleLayer(3, 0),))):
        with pytest.raises(GenomeError):
            check_module_genome(genome)


@given(st.text(max_size=120))
@settings(max_examples=300)
def test_fuzz_only_genome_error(text):
    try:
        genome = parse_module_genome(text)
    except GenomeError:
        return
    assert parse_module_genome(format_module_genome(genome)) == genome
