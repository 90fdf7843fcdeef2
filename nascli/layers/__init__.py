"""Genome -> torch model (imports torch; keep it out of anything `nas --help` imports)."""

from nascli.layers.build import GenomeNet, build_model, count_parameters

__all__ = ["GenomeNet", "build_model", "count_parameters"]
