"""The seed genome a user gives (`ga.seed_genome`) checked against the task and the search space."""

from __future__ import annotations

from nascli.config.helpers import search_space_of
from nascli.config.model import RunConfig, input_shape
from nascli.errors import ConfigError


def check_seed_genome(cfg: RunConfig) -> None:
    """A user-given seed genome must fit the task and the search space (e.g. not be too large)."""
    if not cfg.ga.seed_genome or cfg.task.genome_family != "layers":
        return
    from nascli.ga.genome import parse_genome  # pure; imported here to keep config standalone
    from nascli.ga.operators import violations

    genome = parse_genome(cfg.ga.seed_genome)
    channels, height, width, classes = input_shape(cfg.task)
    expected = f"In_{width}_{height}" + (f"_{channels}" if channels != 1 else "")
    if (genome.input.width, genome.input.height, genome.input.channels) != (width, height, channels):
        raise ConfigError(f"ga.seed_genome starts with {str(genome).split(':')[0]} but the "
                          f"{cfg.task.dataset} input is {expected}", hint=f"start the genome with {expected}")
    if genome.output.units != classes:
        raise ConfigError(f"ga.seed_genome ends with D_{genome.output.units} but {cfg.task.dataset} has {classes} "
                          f"classes", hint=f"end the genome with D_{classes}")
    problems = violations(genome, search_space_of(cfg))
    if problems:
        raise ConfigError(f"ga.seed_genome is outside the search space: {problems[0]}",
                          hint="raise search_space.max_params / max_layers or widen the allowed values")
