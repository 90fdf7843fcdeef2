"""The Klos layer-string genome: parse, canonical format and hash.

Pure standard library. Grammar and examples: docs/genome.md. The frozen specs, their format and
structural checks live in `nascli.ga.genome_spec` (re-exported here); shape checks ("does it fit
the input") live in `nascli.ga.cost`. `parse_genome` runs both, so a parsed genome always builds.
"""

from __future__ import annotations

import hashlib
import re

from nascli.errors import GenomeError
from nascli.ga.cost import Analysis, analyse_checked
from nascli.ga.genome_spec import (
    BRANCH_TYPES,
    FACTORISATIONS,
    HIDDEN_TYPES,
    INCEPTION_TYPE,
    LAYER_SEPARATOR,
    SPATIAL_TYPES,
    Branch,
    Genome,
    HiddenLayer,
    InceptionSpec,
    InputLayer,
    LayerSpec,
    OutputLayer,
    _error,
    _shown,
    check_structure,
    format_genome,
    format_layer,
)

__all__ = [  # the specs are re-exported: callers import the genome from one place
    "BRANCH_TYPES", "FACTORISATIONS", "HIDDEN_TYPES", "INCEPTION_TYPE", "LAYER_SEPARATOR", "SPATIAL_TYPES",
    "Analysis", "Branch", "Genome", "HiddenLayer", "InceptionSpec", "InputLayer", "LayerSpec", "OutputLayer",
    "check_structure", "format_genome", "format_layer", "genome_hash", "parse_and_analyse", "parse_genome",
    "parse_layer",
]

# Plain ASCII digits only; nine digits keep every value far below anything int() refuses and
# reject absurd numbers with a clear message instead of an overflow later.
_INT = re.compile(r"[0-9]{1,9}", re.ASCII)


def canonical_string_hash(canonical: str) -> str:
    """The genotype-cache key of a genome of either family from its canonical string: the first 16
    hex chars of its sha256."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def genome_hash(genome: Genome) -> str:
    return canonical_string_hash(format_genome(genome))


# ----------------------------------------------------------------------------------------- parse

def _ints(fields: list[str], token: str, position: int, what: str) -> list[int]:
    values = []
    for field in fields:
        if not _INT.fullmatch(field):
            raise _error(token, position, f"{what} (non-negative integers of at most 9 digits), "
                         f"got {_shown(field)}")
        values.append(int(field))
    return values


def _parse_input(token: str, position: int) -> InputLayer:
    expected = "an input layer In_w_h or In_w_h_c"
    parts = token.split("_")
    if parts[0] != "In" or len(parts) not in (3, 4):
        raise _error(token, position, expected)
    width, height, *rest = _ints(parts[1:], token, position, expected)
    return InputLayer(width, height, rest[0] if rest else 1)


def _parse_output(token: str, position: int) -> OutputLayer:
    expected = "the output layer D_n as the last layer"
    parts = token.split("_")
    if len(parts) != 2 or parts[0] != "D" or "-" in parts[1]:
        hint = ("every genome ends with an output layer D_n, e.g. D_10"
                if len(parts) == 2 and parts[0] in HIDDEN_TYPES else None)
        raise _error(token, position, expected, hint)
    (units,) = _ints(parts[1:], token, position, expected)
    return OutputLayer(units)


def _parse_hidden(token: str, position: int) -> LayerSpec:
    expected = "a hidden layer type_kw-kh-sw-sh-f with type C, P, R or D (or an inception layer I.…)"
    parts = token.split("_")
    if len(parts) != 2 or parts[0] not in HIDDEN_TYPES:
        raise _error(token, position, expected)
    fields = parts[1].split("-")
    if len(fields) != 5:
        raise _error(token, position, f"5 fields kw-kh-sw-sh-f after {parts[0]}_, got {len(fields)}")
    return LayerSpec(parts[0], *_ints(fields, token, position, "kw-kh-sw-sh-f"))


def _parse_inception(token: str, position: int) -> InceptionSpec:
    parts = token.split(".")
    if len(parts) != 5:
        raise _error(token, position, f"an inception layer I.b1.b2.b3.b4 with 4 branches, got "
                     f"{len(parts) - 1}")
    return InceptionSpec(tuple(_parse_branch(p, token, position, i + 1)  # type: ignore[arg-type]
                               for i, p in enumerate(parts[1:])))


def _parse_branch(text: str, token: str, position: int, slot: int) -> Branch:
    expected = f"branch {slot} as bt-e-fact_kw-kh-sw-sh-f"
    head, sep, tail = text.partition("_")
    head_fields, tail_fields = head.split("-"), tail.split("-")
    if not sep or len(head_fields) != 3 or len(tail_fields) != 5:
        raise _error(token, position, f"{expected}, got {_shown(text)}")
    bt, enabled, fact = _ints(head_fields, token, position, expected)
    if enabled not in (0, 1):
        raise _error(token, position, f"branch {slot} enabled flag 0 or 1, got {enabled}")
    return Branch(bt, bool(enabled), fact, *_ints(tail_fields, token, position, expected))


def parse_layer(token: str, position: int) -> HiddenLayer:
    """One hidden layer token (used by parse_genome; handy for operators and tests)."""
    if token.startswith(INCEPTION_TYPE + "."):
        return _parse_inception(token, position)
    return _parse_hidden(token, position)


def parse_genome(text: str) -> Genome:
    """Parse a genome string; GenomeError naming the bad token and its position on any problem."""
    return parse_and_analyse(text)[0]


def parse_and_analyse(text: str) -> tuple[Genome, Analysis]:
    """parse_genome, plus the cost model's shapes, parameters and FLOPs it checks the genome with."""
    if not isinstance(text, str):
        raise GenomeError(f"a genome must be a string, got {type(text).__name__}")
    tokens = text.strip().split(LAYER_SEPARATOR)
    if tokens == [""]:
        raise GenomeError("empty genome string", "write layers joined by ':', e.g. In_28_28:C_3-3-1-1-32:D_10")
    if len(tokens) < 2:
        raise _error(tokens[0], 0, "at least an input and an output layer joined by ':'",
                     "e.g. In_28_28:D_10")
    genome = Genome(
        input=_parse_input(tokens[0], 0),
        hidden=tuple(parse_layer(t, i) for i, t in enumerate(tokens[1:-1], start=1)),
        output=_parse_output(tokens[-1], len(tokens) - 1),
    )
    check_structure(genome)
    # Shapes ("kernel larger than its input") are the cost model's job.
    return genome, analyse_checked(genome)


