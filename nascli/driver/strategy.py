"""The run's strategy, built from its configuration with the real operators of its genome family."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from nascli.config import RunConfig, input_shape, search_space_of
from nascli.ga.genome import parse_genome
from nascli.ga.operators import minimal_genome
from nascli.ga.proxy_init import walked_init
from nascli.ga.strategies import Strategy, make_module_variation, make_strategy, make_variation


def layer_seed_genome(cfg: RunConfig):
    """The layer genome initial individuals start from: ga.seed_genome, else the minimal one."""
    channels, height, width, classes = input_shape(cfg.task)
    return parse_genome(cfg.ga.seed_genome) if cfg.ga.seed_genome else minimal_genome(width, height, channels, classes)


def build_strategy(cfg: RunConfig, walked: Callable[[], Sequence[Any]] | None = None) -> Strategy:
    """The run's strategy with the real operators of its genome family, seeded by run.seed.
    `walked`: the genomes of the proxy-scored initial walks (ga.init_proxy, nascli.driver.proxy_init), which
    its first `random_init` calls return."""
    if cfg.task.genome_family == "modules":  # Hajewski module genomes (seed 002 autoencoders, seed 001 classifiers)
        from nascli.ga.module_operators import ModuleSpace, minimal_module_genome
        from nascli.ga.modules import parse_module_genome

        channels, _, _, classes = input_shape(cfg.task)
        space = ModuleSpace.from_search_space(search_space_of(cfg), channels=channels,
                                              reductions=cfg.task.reduction_modules,
                                              dropout=cfg.search_space.module_dropout,
                                              classes=classes if cfg.task.kind == "classification" else None)
        seed_module = parse_module_genome(cfg.ga.seed_genome) if cfg.ga.seed_genome else minimal_module_genome(space)
        variation = make_module_variation(space, seed_module, init_mutations=cfg.ga.init_mutations,
                                          init_probabilities=cfg.ga.operators.model_dump(),
                                          uniform_init=cfg.run.strategy == "random")  # seed 002's baseline
        return make_strategy(cfg.model_dump(mode="json"), variation, seed=cfg.run.seed)
    variation = make_variation(search_space_of(cfg), layer_seed_genome(cfg), init_mutations=cfg.ga.init_mutations,
                               init_probabilities=cfg.ga.operators.model_dump())
    if walked is not None:
        variation = dataclasses.replace(variation, random_init=walked_init(walked, variation.random_init))
    return make_strategy(cfg.model_dump(mode="json"), variation, seed=cfg.run.seed)
