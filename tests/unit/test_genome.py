"""Genome parse / format / hash: round trips, canonical form, and GenomeError for every bad input."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from genome_strategies import genomes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nascli.errors import GenomeError
from nascli.ga.genome import (
    Branch,
    Genome,
    InceptionSpec,
    InputLayer,
    LayerSpec,
    OutputLayer,
    check_structure,
    format_genome,
    genome_hash,
    parse_genome,
)

INCEPTION = "I.1-1-0_1-1-1-1-32.2-1-2_3-3-1-1-32.3-0-0_1-1-1-1-0.4-1-0_3-3-1-1-16"
PAPER_STYLE = [
    "In_28_28:C_3-3-1-1-32:P_2-2-2-2-0:R_3-3-1-1-64:D_1-1-1-1-128:D_10",
    "In_28_28:D_10",
    "In_32_32_3:C_3-3-1-1-32:R_3-3-2-2-64:" + INCEPTION + ":P_2-2-2-2-0:D_10",
    "In_96_96_3:C_5-5-2-2-16:P_3-3-2-2-0:R_3-3-1-1-16:R_3-3-2-2-32:D_1-1-1-1-64:D_1-1-1-1-32:D_10",
    "In_8_8:" + INCEPTION + ":" + INCEPTION + ":D_10",
    "In_28_28:I.1-1-1_5-5-2-2-8.2-1-3_3-3-2-2-8.3-1-2_5-5-2-2-8.4-0-0_1-1-1-1-0:D_10",
]


@pytest.mark.parametrize("text", PAPER_STYLE)
def test_paper_style_examples_round_trip(text):
    genome = parse_genome(text)
    assert format_genome(genome) == text
    assert str(genome) == text
    assert parse_genome(format_genome(genome)) == genome


def test_example_decodes_to_the_documented_dataclasses():
    genome = parse_genome("In_28_28:C_3-3-1-1-32:P_2-2-2-2-0:R_3-3-1-1-64:D_1-1-1-1-128:D_10")
    assert genome == Genome(
        InputLayer(28, 28, 1),
        (LayerSpec("C", 3, 3, 1, 1, 32), LayerSpec("P", 2, 2, 2, 2, 0),
         LayerSpec("R", 3, 3, 1, 1, 64), LayerSpec("D", 1, 1, 1, 1, 128)),
        OutputLayer(10),
    )
    inception = parse_genome(f"In_28_28:{INCEPTION}:D_10").hidden[0]
    assert isinstance(inception, InceptionSpec) and inception.type == "I"
    assert inception.branches[1] == Branch(2, True, 2, 3, 3, 1, 1, 32)
    assert [b.enabled for b in inception.branches] == [True, True, False, True]


def test_width_and_height_keep_their_order():
    genome = parse_genome("In_30_20_3:C_5-3-2-1-4:D_2")
    assert (genome.input.width, genome.input.height, genome.input.channels) == (30, 20, 3)
    conv = genome.hidden[0]
    assert (conv.kernel_w, conv.kernel_h, conv.stride_w, conv.stride_h) == (5, 3, 2, 1)


@pytest.mark.slow
@given(genomes())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_generated_genomes_round_trip(genome):
    text = format_genome(genome)
    assert parse_genome(text) == genome
    assert format_genome(parse_genome(text)) == text
    assert genome_hash(genome) == hashlib.sha256(text.encode()).hexdigest()[:16]


def test_canonical_form_input_channels_and_leading_zeros_and_disabled_branches():
    assert format_genome(parse_genome("In_28_28_1:D_10")) == "In_28_28:D_10"
    assert format_genome(parse_genome("  In_028_28:C_03-3-1-1-8:D_010\n")) == "In_28_28:C_3-3-1-1-8:D_10"
    noisy = "I.1-1-0_1-1-1-1-32.2-0-3_7-7-2-2-99.3-0-1_5-5-1-1-4.4-1-0_3-3-1-1-16"
    clean = "I.1-1-0_1-1-1-1-32.2-0-0_1-1-1-1-0.3-0-0_1-1-1-1-0.4-1-0_3-3-1-1-16"
    a, b = parse_genome(f"In_28_28:{noisy}:D_10"), parse_genome(f"In_28_28:{clean}:D_10")
    assert a == b and genome_hash(a) == genome_hash(b)
    assert format_genome(a) == f"In_28_28:{clean}:D_10"


def test_directly_built_disabled_branch_is_normalised():
    branch = Branch(3, False, 2, 5, 5, 2, 2, 64)
    assert branch == Branch(3, False, 0, 1, 1, 1, 1, 0)


def test_hash_is_16_hex_chars_and_differs_between_architectures():
    a = parse_genome("In_28_28:C_3-3-1-1-32:D_10")
    b = parse_genome("In_28_28:C_3-3-1-1-16:D_10")
    assert len(genome_hash(a)) == 16 and int(genome_hash(a), 16) >= 0
    assert genome_hash(a) != genome_hash(b)


def test_dataclasses_are_frozen_and_hashable():
    genome = parse_genome(PAPER_STYLE[2])
    with pytest.raises(dataclasses.FrozenInstanceError):
        genome.output = OutputLayer(3)  # type: ignore[misc]
    assert len({genome, parse_genome(PAPER_STYLE[2])}) == 1


# ------------------------------------------------------------------------------------- malformed

MALFORMED = {
    "": "empty",
    "   ": "empty",
    "In_28_28": "input and an output",
    "In_28_28:C_3-3-1-1-32": "output layer D_n",
    "In_28_28:X_3-3-1-1-32:D_10": "position 1",
    "Out_28_28:D_10": "position 0",
    "In_28:D_10": "input layer",
    "In_28_28:C_3-3-1-32:D_10": "5 fields",
    "In_28_28:C_3-3-1-1-32-4:D_10": "5 fields",
    "In_28_28:C_3-3-1-1-x:D_10": "integers",
    "In_28_28:C_3-3-1-1--2:D_10": "5 fields",
    "In_28_28:C_3-3-1-1-0:D_10": "at least 1 filter",
    "In_28_28:R_3-3-1-1-0:D_10": "at least 1 filter",
    "In_28_28:D_1-1-1-1-0:D_10": "at least 1",
    "In_28_28:C_0-3-1-1-8:D_10": "kernel sizes >= 1",
    "In_28_28:C_3-3-0-1-8:D_10": "strides >= 1",
    "In_28_28:P_2-2-2-2-8:D_10": "filters 0 for a max-pool",
    "In_28_28:D_3-3-1-1-8:D_10": "kernels and strides all 1",
    "In_28_28:D_0": "at least 1 output",
    "In_0_28:D_10": "input width",
    "In_28_28:C_29-3-1-1-8:D_10": "larger than",
    "In_8_8:P_2-2-2-2-0:P_2-2-2-2-0:C_3-3-1-1-4:D_10": "position 3",
    "In_28_28:D_1-1-1-1-8:C_3-3-1-1-8:D_10": "after a dense layer",
    "In_28_28:I.1-1-0_1-1-1-1-8.2-1-0_3-3-1-1-8.3-1-0_3-3-1-1-8:D_10": "4 branches",
    "In_28_28:I.1-0-0_1-1-1-1-0.2-0-0_1-1-1-1-0.3-0-0_1-1-1-1-0.4-0-0_1-1-1-1-0:D_10": "one enabled",
    "In_28_28:I.5-1-0_1-1-1-1-8.2-0-0_1-1-1-1-0.3-0-0_1-1-1-1-0.4-0-0_1-1-1-1-0:D_10": "type 1, 2, 3 or 4",
    "In_28_28:I.1-2-0_1-1-1-1-8.2-0-0_1-1-1-1-0.3-0-0_1-1-1-1-0.4-0-0_1-1-1-1-0:D_10": "enabled flag",
    "In_28_28:I.1-1-4_1-1-1-1-8.2-0-0_1-1-1-1-0.3-0-0_1-1-1-1-0.4-0-0_1-1-1-1-0:D_10": "factorisation",
    "In_28_28:I.1-1-0_1-1-1-1-0.2-0-0_1-1-1-1-0.3-0-0_1-1-1-1-0.4-0-0_1-1-1-1-0:D_10": "filter",
    "In_28_28:I.1-1-0_1-1-1-1-8.2-1-0_3-3-2-2-8.3-0-0_1-1-1-1-0.4-0-0_1-1-1-1-0:D_10": "same stride",
    "In_28_28:I.1-1-0_1-1-1-1-8.2-1-0_3-3-1-1-8.3-0-0.4-0-0_1-1-1-1-0:D_10": "branch 3",
    "In_4_4:I.1-1-0_5-5-1-1-8.2-0-0_1-1-1-1-0.3-0-0_1-1-1-1-0.4-0-0_1-1-1-1-0:D_10": "larger than",
    "In_28_28:C_3-3-1-1-1234567890:D_10": "at most 9 digits",
    "In_28_28:C_3-3-1-1-٣:D_10": "integers",
    "x" * 10_000: "position 0",
    ":" * 10_000: "position 0",
}


@pytest.mark.parametrize("text, fragment", MALFORMED.items(), ids=lambda v: repr(v)[:40])
def test_malformed_strings_raise_genome_error_naming_the_problem(text, fragment):
    with pytest.raises(GenomeError) as info:
        parse_genome(text)
    assert fragment in str(info.value)
    assert len(str(info.value)) < 400  # one readable line, even for 10k characters of garbage
    assert "\n" not in str(info.value)


def test_non_string_input_is_a_genome_error():
    with pytest.raises(GenomeError):
        parse_genome(None)  # type: ignore[arg-type]


def _parses_or_genome_error(text: str) -> None:
    try:
        genome = parse_genome(text)
    except GenomeError:
        return
    assert parse_genome(format_genome(genome)) == genome


@given(st.text(max_size=200))
@settings(max_examples=400)
def test_fuzz_arbitrary_text_only_raises_genome_error(text):
    _parses_or_genome_error(text)


@given(st.text(alphabet="In_DCPRI.-:0123456789", max_size=80))
@settings(max_examples=400)
def test_fuzz_grammar_alphabet_only_raises_genome_error(text):
    _parses_or_genome_error(text)


@st.composite
def mutated_strings(draw):
    text = format_genome(draw(genomes(max_hidden=4)))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(st.sampled_from("0123456789_-.:ICPRDn x"))
        if action == "insert":
            text = text[:i] + char + text[i:]
        elif action == "delete":
            text = text[:i] + text[i + 1:]
        else:
            text = text[:i] + char + text[i + 1:]
    return text


@pytest.mark.slow
@given(mutated_strings())
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_mutated_valid_strings_only_raise_genome_error(text):
    _parses_or_genome_error(text)


# The whole message and hint a user reads, for one input per rule: the layer as written (shortened
# past 40 characters), its position, what was expected, and the rule's own hint.
GRAMMAR_HINT = "see docs/genome.md for the layer grammar"
DISABLED_BRANCHES_2_TO_4 = "2-0-0_1-1-1-1-0.3-0-0_1-1-1-1-0.4-0-0_1-1-1-1-0"
EXACT_ERRORS = {
    "In_28_28": ("bad genome layer 'In_28_28' at position 0: expected at least an input and an output layer "
                 "joined by ':'", "e.g. In_28_28:D_10"),
    "In_28_28:C_3-3-1-1-32": ("bad genome layer 'C_3-3-1-1-32' at position 1: expected the output layer D_n as the "
                              "last layer", "every genome ends with an output layer D_n, e.g. D_10"),
    "In_28_28:D_1-2": ("bad genome layer 'D_1-2' at position 1: expected the output layer D_n as the last layer",
                       "every genome ends with an output layer D_n, e.g. D_10"),
    "In_28_28:Q_5": ("bad genome layer 'Q_5' at position 1: expected the output layer D_n as the last layer",
                     GRAMMAR_HINT),
    "In_28_28:D_x": ("bad genome layer 'D_x' at position 1: expected the output layer D_n as the last layer "
                     "(non-negative integers of at most 9 digits), got 'x'", GRAMMAR_HINT),
    "In_28_0:D_10": ("bad genome layer 'In_28_0' at position 0: expected input width, height and channels >= 1",
                     GRAMMAR_HINT),
    "In_28_28:I.1-1-0_1-1-1-1-8.2-1-0_3-3-1-1-8.3-1-0_3-3-1-1-8.4-1-0_1-1-1-1-8.5-1-0_1-1-1-1-8:D_10": (
        "bad genome layer 'I.1-1-0_1-1-1-1-8.2-1-0_3-3-1-1-8.3-1-0_...' at position 1: expected an inception layer "
        "I.b1.b2.b3.b4 with 4 branches, got 5", GRAMMAR_HINT),
    f"In_28_28:I.1-1_1-1-1-1-8.{DISABLED_BRANCHES_2_TO_4}:D_10": (
        "bad genome layer 'I.1-1_1-1-1-1-8.2-0-0_1-1-1-1-0.3-0-0_1-...' at position 1: expected branch 1 as "
        "bt-e-fact_kw-kh-sw-sh-f, got '1-1_1-1-1-1-8'", GRAMMAR_HINT),
    f"In_28_28:I.1-1-0_5_1-1-1-1-8.{DISABLED_BRANCHES_2_TO_4}:D_10": (
        "bad genome layer 'I.1-1-0_5_1-1-1-1-8.2-0-0_1-1-1-1-0.3-0-...' at position 1: expected branch 1 as "
        "bt-e-fact_kw-kh-sw-sh-f (non-negative integers of at most 9 digits), got '5_1'", GRAMMAR_HINT),
    f"In_28_28:I.1-x-0_1-1-1-1-8.{DISABLED_BRANCHES_2_TO_4}:D_10": (
        "bad genome layer 'I.1-x-0_1-1-1-1-8.2-0-0_1-1-1-1-0.3-0-0_...' at position 1: expected branch 1 as "
        "bt-e-fact_kw-kh-sw-sh-f (non-negative integers of at most 9 digits), got 'x'", GRAMMAR_HINT),
    f"In_28_28:I.1-1-0_1-1-1-1-y.{DISABLED_BRANCHES_2_TO_4}:D_10": (
        "bad genome layer 'I.1-1-0_1-1-1-1-y.2-0-0_1-1-1-1-0.3-0-0_...' at position 1: expected branch 1 as "
        "bt-e-fact_kw-kh-sw-sh-f (non-negative integers of at most 9 digits), got 'y'", GRAMMAR_HINT),
    "In_28_28:I.1-0-0_1-1-1-1-0.2-0-0_1-1-1-1-0.3-0-0_1-1-1-1-0.4-0-0_1-1-1-1-0:D_10": (
        "bad genome layer 'I.1-0-0_1-1-1-1-0.2-0-0_1-1-1-1-0.3-0-0_...' at position 1: expected at least one enabled "
        "inception branch", GRAMMAR_HINT),
    "In_28_28:C_3-3-1-32:D_10": ("bad genome layer 'C_3-3-1-32' at position 1: expected 5 fields kw-kh-sw-sh-f "
                                 "after C_, got 4", GRAMMAR_HINT),
    "In_28_28:C_3-3-1-1-x:D_10": ("bad genome layer 'C_3-3-1-1-x' at position 1: expected kw-kh-sw-sh-f "
                                  "(non-negative integers of at most 9 digits), got 'x'", GRAMMAR_HINT),
    "In_28_28:R_3-3-1-1-0:D_10": ("bad genome layer 'R_3-3-1-1-0' at position 1: expected at least 1 filter/unit "
                                  "for a R layer", GRAMMAR_HINT),
    "In_28_28:C_3-0-1-1-8:D_10": ("bad genome layer 'C_3-0-1-1-8' at position 1: expected kernel sizes >= 1",
                                  GRAMMAR_HINT),
    "In_28_28:C_3-3-1-0-8:D_10": ("bad genome layer 'C_3-3-1-0-8' at position 1: expected strides >= 1",
                                  GRAMMAR_HINT),
    "In_28_28:C_3-3-1-1-8:P_2-3-4-5-8:D_10": ("bad genome layer 'P_2-3-4-5-8' at position 2: expected filters 0 for "
                                              "a max-pool layer (it keeps the channels)", "write P_2-3-4-5-0"),
    "In_28_28:D_1-1-1-2-8:D_10": ("bad genome layer 'D_1-1-1-2-8' at position 1: expected kernels and strides all 1 "
                                  "for a hidden dense layer", "write D_1-1-1-1-8"),
    "In_28_28:C_3-3-1-1-8:D_0": ("bad genome layer 'D_0' at position 2: expected at least 1 output unit",
                                 GRAMMAR_HINT),
    "In_28_28_0:D_10": ("bad genome layer 'In_28_28_0' at position 0: expected input width, height and channels "
                        ">= 1", GRAMMAR_HINT),
    "In_28_28:D_1-1-1-1-8:C_3-3-1-1-8:D_10": ("bad genome layer 'C_3-3-1-1-8' at position 2: expected no "
                                              "convolution, pooling, residual or inception layer after a dense "
                                              "layer", "move dense layers to the end, before the output"),
    "In_28_28:I.1-0-0_1-1-1-1-0.2-0-0_1-1-1-1-0.3-0-0_1-1-1-1-0.4-5-0_1-1-1-1-0:D_10": (
        "bad genome layer 'I.1-0-0_1-1-1-1-0.2-0-0_1-1-1-1-0.3-0-0_...' at position 1: expected branch 4 enabled flag "
        "0 or 1, got 5", GRAMMAR_HINT),
    "In_28_28:I.1-0-0_1-1-1-1-0.2-0-0_1-1-1-1-0.7-1-0_1-1-1-1-8.4-0-0_1-1-1-1-0:D_10": (
        "bad genome layer 'I.1-0-0_1-1-1-1-0.2-0-0_1-1-1-1-0.7-1-0_...' at position 1: expected branch 3 type 1, 2, 3 "
        "or 4, got 7", GRAMMAR_HINT),
    "In_28_28:I.1-0-0_1-1-1-1-0.2-1-9_3-3-1-1-8.3-0-0_1-1-1-1-0.4-0-0_1-1-1-1-0:D_10": (
        "bad genome layer 'I.1-0-0_1-1-1-1-0.2-1-9_3-3-1-1-8.3-0-0_...' at position 1: expected branch 2 "
        "factorisation 0-3, got 9", GRAMMAR_HINT),
    "In_28_28:I.1-0-0_1-1-1-1-0.2-1-0_3-0-1-1-8.3-0-0_1-1-1-1-0.4-0-0_1-1-1-1-0:D_10": (
        "bad genome layer 'I.1-0-0_1-1-1-1-0.2-1-0_3-0-1-1-8.3-0-0_...' at position 1: expected branch 2 kernels and "
        "strides >= 1", GRAMMAR_HINT),
    "In_28_28:I.1-0-0_1-1-1-1-0.2-1-0_3-3-1-0-8.3-0-0_1-1-1-1-0.4-0-0_1-1-1-1-0:D_10": (
        "bad genome layer 'I.1-0-0_1-1-1-1-0.2-1-0_3-3-1-0-8.3-0-0_...' at position 1: expected branch 2 kernels and "
        "strides >= 1", GRAMMAR_HINT),
    "In_28_28:I.1-0-0_1-1-1-1-0.2-0-0_1-1-1-1-0.3-0-0_1-1-1-1-0.4-1-0_1-1-1-1-0:D_10": (
        "bad genome layer 'I.1-0-0_1-1-1-1-0.2-0-0_1-1-1-1-0.3-0-0_...' at position 1: expected branch 4 at least 1 "
        "filter when enabled", GRAMMAR_HINT),
    "In_28_28:I.1-1-0_1-1-1-1-8.2-0-0_1-1-1-1-0.3-0-0_1-1-1-1-0.4-1-0_1-1-2-1-8:D_10": (
        "bad genome layer 'I.1-1-0_1-1-1-1-8.2-0-0_1-1-1-1-0.3-0-0_...' at position 1: expected the same stride on "
        "every enabled inception branch", "branch outputs are concatenated, so their sizes must agree"),
}


@pytest.mark.parametrize("text", EXACT_ERRORS, ids=lambda v: v[:40])
def test_each_rule_names_the_layer_its_position_and_the_fix_exactly(text):
    with pytest.raises(GenomeError) as info:
        parse_genome(text)
    assert (info.value.message, info.value.hint) == EXACT_ERRORS[text]


def test_a_disabled_branch_may_carry_any_factorisation_kernel_and_stride():
    # checks skip a disabled branch (it is normalised when built): only its type must be 1-4
    genome = parse_genome("In_8_8:I.1-1-0_1-1-1-1-8.2-0-7_0-0-0-0-0.3-0-0_1-1-1-1-0.4-0-0_1-1-1-1-0:D_10")
    assert genome.hidden[0].branches[1] == Branch(2, False, 0, 1, 1, 1, 1, 0)


def test_layers_built_directly_are_checked_like_parsed_ones():
    def error_of(*hidden) -> tuple[str, str | None]:
        with pytest.raises(GenomeError) as info:
            check_structure(Genome(InputLayer(28, 28), hidden, OutputLayer(10)))
        return info.value.message, info.value.hint

    enabled = Branch(1, True, 0, 1, 1, 1, 1, 8)
    disabled = Branch(2, False, 0, 1, 1, 1, 1, 0)
    assert error_of(LayerSpec("C", 3, 3, 1, 1, 8), InceptionSpec((enabled, disabled, disabled))) == (
        "bad genome layer 'I.1-1-0_1-1-1-1-8.2-0-0_1-1-1-1-0.2-0-0_...' at position 2: expected exactly 4 inception "
        "branches", GRAMMAR_HINT)
    assert error_of(LayerSpec("X", 3, 3, 1, 1, 8)) == (
        "bad genome layer 'X_3-3-1-1-8' at position 1: expected layer type one of C, P, R, D or I", GRAMMAR_HINT)
    assert error_of(LayerSpec("C", 3, 3, 1, 1, 8), "C_3-3-1-1-8") == (
        "position 2: not a genome layer: 'C_3-3-1-1-8'", None)
    check_structure(Genome(InputLayer(28, 28), (InceptionSpec((enabled, disabled, disabled, enabled)),),
                           OutputLayer(10)))  # fine: returns None


def test_the_smallest_legal_values_parse():
    smallest = f"In_1_1:C_1-1-1-1-1:I.1-1-0_1-1-1-1-1.{DISABLED_BRANCHES_2_TO_4}:D_1-1-1-1-1:D_1"
    assert format_genome(parse_genome(smallest)) == smallest


def test_formatting_something_that_is_not_a_layer_names_it():
    from nascli.ga.genome import format_layer

    with pytest.raises(TypeError, match=r"^not a genome layer: 'C_3-3-1-1-8'$"):
        format_layer("C_3-3-1-1-8")
