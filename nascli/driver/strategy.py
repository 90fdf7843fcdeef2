"""The run's strategy, built from its configuration with the real operators of its genome family."""

from __future__ import annotations

from nascli.config import RunConfig, input_shape, search_space_of
from nascli.ga.genome import parse_genome
from nascli.ga.operators import minimal_genome
from nascli.ga.strategies import Strategy, make_module_variation, make_strategy, make_variation


def build_strategy(cfg: RunConfig) -> Strategy:
    """The run's strategy with the real operators of its genome family, seeded by run.seed."""
    channels, height, width, classes = input_shape(cfg.task)
    if cfg.task.genome_family == "modules":  # Hajewski module genomes (seed 002 autoencoders)
        from nascli.ga.module_operators import ModuleSpace, minimal_module_genome
        from nascli.ga.modules import parse_module_genome

        space = ModuleSpace.from_search_space(search_space_of(cfg), channels=channels,
                                              reductions=cfg.task.reduction_modules)
        seed_module = parse_module_genome(cfg.ga.seed_genome) if cfg.ga.seed_genome else minimal_module_genome(space)
        variation = make_module_variation(space, seed_module, init_mutations=cfg.ga.init_mutations,
                                          init_probabilities=cfg.ga.operators.model_dump(),
                                          uniform_init=cfg.run.strategy == "random")  # seed 002's baseline
        return make_strategy(cfg.model_dump(mode="json"), variation, seed=cfg.run.seed)
    seed_genome = (parse_genome(cfg.ga.seed_genome) if cfg.ga.seed_genome
                   else minimal_genome(width, height, channels, classes))
    variation = make_variation(search_space_of(cfg), seed_genome, init_mutations=cfg.ga.init_mutations,
                               init_probabilities=cfg.ga.operators.model_dump())
    return make_strategy(cfg.model_dump(mode="json"), variation, seed=cfg.run.seed)
