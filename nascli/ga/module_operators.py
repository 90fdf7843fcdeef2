"""Variation operators for the Hajewski module genome (seed 002, Alg. 2 and 3): a module is a
sequence of zero-padded convolutions and 2D dropouts (`5x5conv2d:16,dropout2d,3x3conv2d:32`) that an
autoencoder uses once in its encoder and once in its decoder (nascli.layers.autoencoder), or that a
classifier repeats between its reduction modules (seed 001, nascli.layers.modular).

Pure: standard library only, every random choice comes from the `random.Random` passed in.

The operator names are the Klos ones, so `[ga.operators]` weights and every strategy work unchanged:
- insert:    add a random layer at a random position — seed 002's AppendRandomLayer, generalised
             from "append" to any position; a random layer is one of the space's kernel x filters
             convolutions or, with `dropout`, a 2D dropout, all equally likely (seed 002: 16 + 1);
- delete:    remove one layer (a module keeps at least one);
- adjust:    change one convolution's kernel or its filter count to another value of the space —
             seed 002's ReplaceRandomLayer, one field at a time as Klos's adjust (a dropout has
             neither: insert and delete add and remove it);
- switch:    swap two different layers (order matters: each layer sets the next one's channels);
- crossover: seed 002's splice `a.layers[:i] + b.layers[j:]` truncated to `max_layers`, with a
             non-empty prefix of `a` and a non-empty suffix of `b`, so the child mixes both.
`mutate_genotype` is Alg. 3's MutateGenotype (append with p 1/2 while there is room, else
replace), `uniform_module_genome` the random-search baseline (U[1, max_layers] random layers).

Validity by construction (as nascli.ga.operators): parents must be valid members of the space
(at least one layer, at most `max_layers`, parameters of the autoencoder within `max_params`;
else GenomeError); a child is accepted only if it is too, and every new value is drawn from the
space. An operator that finds no valid child within `ATTEMPTS` proposals returns the parent
itself (`child is parent`): deterministic, always terminates, valid because the parent is.
Every layer keeps its input's height and width, so any module fits any input: the only size
constraint is the parameter cap, which `network_params` computes exactly for the space's network
(`autoencoder_params` mirrors nascli.layers.autoencoder.autoencoder_cost, `classifier_params`
nascli.layers.modular.classifier_cost; tests check they agree).
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nascli.errors import ConfigError, GenomeError
from nascli.ga.modules import (
    DROPOUT2D,
    DropoutLayer,
    ModuleGenome,
    ModuleItem,
    ModuleLayer,
    channels_after,
    check_module_genome,
    format_module_genome,
)

# The same operator names, weights and retry budget as the layer family, so [ga.operators] means one thing.
from nascli.ga.operators import ATTEMPTS, MUTATIONS, OPERATORS, apply_with, cumulative_weights

_HINT = "set search_space.kernels, search_space.filters, search_space.max_layers and search_space.max_params"


@dataclass(frozen=True)
class ModuleSpace:
    """What a module may contain, plus what the parameter count of its network depends on: the
    input channels, the number of reduction modules (height and width do not matter) and, for a
    classifier (seed 001), the number of classes (None: the network is seed 002's autoencoder)."""

    kernels: tuple[int, ...] = (1, 2, 3, 5, 7)  # seed 002's convolutions (its "5x4" read as 5x5)
    filters: tuple[int, ...] = (8, 16, 32, 64)
    max_layers: int = 10
    max_params: int = 10_000_000
    channels: int = 3
    reductions: int = 2
    dropout: bool = True  # seed 002's 2D dropout is a layer choice
    classes: int | None = None

    def __post_init__(self) -> None:
        for name in ("kernels", "filters"):
            values = getattr(self, name)
            if not values or any(not _is_int(v) or v < 1 for v in values):
                raise ConfigError(f"search_space.{name} must be a non-empty list of positive integers, "
                                  f"got {list(values)!r}", hint=_HINT)
            object.__setattr__(self, name, tuple(sorted(set(values))))
        for name in ("max_layers", "max_params", "channels"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ConfigError(f"module space: {name} must be a positive integer, got {value!r}", hint=_HINT)
        if not _is_int(self.reductions) or self.reductions < 0:
            raise ConfigError(f"module space: reductions must be an integer >= 0, got {self.reductions!r}",
                              hint="set task.reduction_modules")
        if self.classes is not None and (not _is_int(self.classes) or self.classes < 2):
            raise ConfigError(f"module space: classes must be an integer >= 2, got {self.classes!r}",
                              hint="a classifier needs at least two classes")

    @classmethod
    def from_search_space(cls, space: Any, *, channels: int, reductions: int, dropout: bool = True,
                          classes: int | None = None) -> ModuleSpace:
        """The module part of a `nascli.ga.search_space.SearchSpace` (layer types, strides, dense
        units and inception variants have no meaning for a module of convolutions)."""
        return cls(kernels=tuple(space.kernels), filters=tuple(space.filters), max_layers=space.max_layers,
                   max_params=space.max_params, channels=channels, reductions=reductions, dropout=dropout,
                   classes=classes)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ------------------------------------------------------------------------------------- cost

def _module_params(genome: ModuleGenome, channels: int) -> tuple[int, int]:
    """(parameters of one pass through the module, channels out) for `channels` in."""
    params = 0
    c = channels
    for layer in genome.layers:
        if isinstance(layer, ModuleLayer):
            params += layer.kernel * layer.kernel * c * layer.filters + layer.filters
        c = channels_after(layer, c)
    return params, c


def autoencoder_params(genome: ModuleGenome, channels: int, reductions: int) -> int:
    """Trainable parameters of the autoencoder built from `genome` (exactly as torch counts them)."""
    params, c = _module_params(genome, channels)  # encoder module
    for _ in range(reductions):  # 1x1 conv doubling the channels (the pool has no weights)
        params += c * 2 * c + 2 * c
        c *= 2
    for _ in range(reductions):  # 1x1 conv halving, then a 2x2 transpose conv
        c //= 2
        params += 2 * c * c + c
        params += 4 * c * c + c
    decoder, c = _module_params(genome, c)
    return params + decoder + c * channels + channels  # 1x1 conv back to the input channels


def classifier_params(genome: ModuleGenome, channels: int, reductions: int, classes: int) -> int:
    """Trainable parameters of seed 001's modular classifier built from `genome`: the module, then
    `reductions` times (reduction module, module), then global average pooling and a linear layer."""
    params, c = _module_params(genome, channels)
    for _ in range(reductions):
        params += c * 2 * c + 2 * c  # 1x1 conv doubling the channels (the pool has no weights)
        module, c = _module_params(genome, 2 * c)
        params += module
    return params + c * classes + classes


def network_params(genome: ModuleGenome, space: ModuleSpace) -> int:
    """Parameters of the network the space builds from `genome`: a classifier when it has classes."""
    if space.classes is not None:
        return classifier_params(genome, space.channels, space.reductions, space.classes)
    return autoencoder_params(genome, space.channels, space.reductions)


def module_features(genome: ModuleGenome, space: ModuleSpace) -> dict[str, float]:
    """Architecture features for LINAS predictors: depth, filters, kernel area, the largest kernel,
    dropouts, and the exact parameter count (`params`, an objective taken as is) and its log."""
    params = float(network_params(genome, space))
    convolutions = [layer for layer in genome.layers if isinstance(layer, ModuleLayer)]
    return {"depth": float(len(genome.layers)), "filters": float(sum(layer.filters for layer in convolutions)),
            "kernel_area": float(sum(layer.kernel ** 2 for layer in convolutions)),
            "max_kernel": float(max((layer.kernel for layer in convolutions), default=0)),
            "dropouts": float(len(genome.layers) - len(convolutions)),
            "log_params": math.log1p(params), "params": params}


def violations(genome: ModuleGenome, space: ModuleSpace) -> list[str]:
    """Why `genome` is not a valid member of `space` (empty: it is)."""
    if not isinstance(genome, ModuleGenome):
        return [f"expected a ModuleGenome, got {type(genome).__name__}"]
    try:
        check_module_genome(genome)
    except GenomeError as error:
        return [error.message]
    problems = []
    if len(genome.layers) > space.max_layers:
        problems.append(f"{len(genome.layers)} layers > max_layers {space.max_layers}")
    convolutions = [(i, layer) for i, layer in enumerate(genome.layers) if isinstance(layer, ModuleLayer)]
    problems += [f"layer {i}: kernel {layer.kernel} not in {list(space.kernels)}"
                 for i, layer in convolutions if layer.kernel not in space.kernels]
    problems += [f"layer {i}: {layer.filters} filters not in {list(space.filters)}"
                 for i, layer in convolutions if layer.filters not in space.filters]
    if not space.dropout and len(convolutions) < len(genome.layers):
        problems.append("dropout2d is not a layer choice of this space")
    params = network_params(genome, space)
    if params > space.max_params:
        problems.append(f"{params} parameters > max_params {space.max_params}")
    return problems


# ------------------------------------------------------------------------------------- public API

def minimal_module_genome(space: ModuleSpace) -> ModuleGenome:
    """Seed 002's starting point, a single convolution: 3x3 if allowed (a 1x1 sees no neighbours),
    else the smallest kernel, with the fewest filters. GenomeError if even that exceeds max_params."""
    kernel = 3 if 3 in space.kernels else space.kernels[0]
    genome = ModuleGenome((ModuleLayer(kernel, space.filters[0]),))
    _check_parent(genome, space)
    return genome


def mutate(genome: ModuleGenome, operator: str, space: ModuleSpace, rng: random.Random) -> ModuleGenome:
    """One mutation (`insert|switch|delete|adjust`); the parent itself when no valid move exists."""
    function = _MUTATION_FUNCTIONS.get(operator)
    if function is None:
        raise ConfigError(f"unknown mutation operator {operator!r}; allowed: {', '.join(MUTATIONS)}",
                          hint="crossover takes two parents: use crossover() or apply()")
    _check_parent(genome, space)
    return _first_valid(genome, space, lambda: function(genome.layers, space, rng))


def crossover(a: ModuleGenome, b: ModuleGenome, space: ModuleSpace, rng: random.Random) -> ModuleGenome:
    """Seed 002's splice: a non-empty prefix of `a` then a non-empty suffix of `b`, cut to
    `max_layers`. Returns `a` when no valid child is found."""
    _check_parent(a, space)
    _check_parent(b, space)

    def propose() -> tuple[ModuleItem, ...]:
        i = rng.randint(1, len(a.layers))
        j = rng.randrange(len(b.layers))
        return (a.layers[:i] + b.layers[j:])[:space.max_layers]

    return _first_valid(a, space, propose)


def apply(operator: str, parents: Sequence[ModuleGenome], space: ModuleSpace, rng: random.Random) -> ModuleGenome:
    """Run one operator by name: mutations use `parents[0]`, crossover `parents[0]` and `parents[1]`."""
    return apply_with(crossover, mutate, operator, parents, space, rng)


def mutate_genotype(genome: ModuleGenome, space: ModuleSpace, rng: random.Random) -> ModuleGenome:
    """Seed 002 Alg. 3 MutateGenotype: append a random layer with probability 1/2 while the module
    has room, else replace a random layer by a different random one."""
    _check_parent(genome, space)
    layers = genome.layers
    if len(layers) < space.max_layers and rng.random() < 0.5:
        return _first_valid(genome, space, lambda: layers + (_random_layer(space, rng),))

    def replace() -> tuple[ModuleItem, ...] | None:
        position = rng.randrange(len(layers))
        layer = _random_layer(space, rng)
        if layer == layers[position]:
            return None
        return layers[:position] + (layer,) + layers[position + 1:]

    return _first_valid(genome, space, replace)


def random_module_genome(seed: ModuleGenome, space: ModuleSpace, n_mutations: int, rng: random.Random,
                         probabilities: Mapping[str, float] | None = None) -> ModuleGenome:
    """`n_mutations` random mutations of `seed`, each operator drawn with `probabilities`
    (`[ga.operators]` weights; default uniform over the mutations; `crossover` is ignored)."""
    if n_mutations < 0:
        raise ConfigError(f"the number of initial mutations must be >= 0, got {n_mutations}",
                          hint="set ga.init_mutations to 0 or more")
    names, cumulative = cumulative_weights(probabilities or dict.fromkeys(MUTATIONS, 1.0), MUTATIONS)
    current = seed
    for _ in range(n_mutations):
        operator = names[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]
        current = mutate(current, operator, space, rng)
    return current


def uniform_module_genome(space: ModuleSpace, rng: random.Random) -> ModuleGenome:
    """Seed 002's random-search sample: U[1, max_layers] layers, each a random kernel and filter
    count. Layers are dropped from the end while the module is over the parameter cap (the first
    layer alone fits when the minimal module does)."""
    layers = tuple(_random_layer(space, rng) for _ in range(rng.randint(1, space.max_layers)))
    while len(layers) > 1 and not _valid(layers, space):
        layers = layers[:-1]
    if not _valid(layers, space):
        return minimal_module_genome(space)
    return ModuleGenome(layers)


# ------------------------------------------------------------------------------------- the operators

def _random_layer(space: ModuleSpace, rng: random.Random) -> ModuleItem:
    """One of the kernel x filters convolutions or (with `space.dropout`) the dropout, uniformly."""
    if space.dropout and rng.randrange(len(space.kernels) * len(space.filters) + 1) == 0:
        return DROPOUT2D
    return ModuleLayer(rng.choice(space.kernels), rng.choice(space.filters))


def _insert(layers: tuple[ModuleItem, ...], space: ModuleSpace, rng: random.Random) -> tuple[ModuleItem, ...] | None:
    if len(layers) >= space.max_layers:
        return None
    position = rng.randint(0, len(layers))
    return layers[:position] + (_random_layer(space, rng),) + layers[position:]


def _delete(layers: tuple[ModuleItem, ...], space: ModuleSpace, rng: random.Random) -> tuple[ModuleItem, ...] | None:
    if len(layers) <= 1:
        return None
    position = rng.randrange(len(layers))
    return layers[:position] + layers[position + 1:]


def _adjust(layers: tuple[ModuleItem, ...], space: ModuleSpace, rng: random.Random) -> tuple[ModuleItem, ...] | None:
    position = rng.randrange(len(layers))
    layer = layers[position]
    if isinstance(layer, DropoutLayer):
        return None  # nothing to adjust; another attempt may pick a convolution
    choices = {"kernel": [k for k in space.kernels if k != layer.kernel],
               "filters": [f for f in space.filters if f != layer.filters]}
    fields = [name for name, values in choices.items() if values]
    if not fields:
        return None
    field = rng.choice(fields)
    value = rng.choice(choices[field])
    changed = ModuleLayer(value, layer.filters) if field == "kernel" else ModuleLayer(layer.kernel, value)
    return layers[:position] + (changed,) + layers[position + 1:]


def _switch(layers: tuple[ModuleItem, ...], space: ModuleSpace, rng: random.Random) -> tuple[ModuleItem, ...] | None:
    if len(set(layers)) < 2:
        return None  # every swap would give the parent back
    i, j = sorted(rng.sample(range(len(layers)), 2))
    if layers[i] == layers[j]:
        return None
    return layers[:i] + (layers[j],) + layers[i + 1:j] + (layers[i],) + layers[j + 1:]


_MUTATION_FUNCTIONS = {"insert": _insert, "switch": _switch, "delete": _delete, "adjust": _adjust}


# ------------------------------------------------------------------------------------- helpers

def _valid(layers: tuple[ModuleItem, ...], space: ModuleSpace) -> bool:
    """A proposed child: every value is from the space or its parents, so only size is checked."""
    return (1 <= len(layers) <= space.max_layers
            and network_params(ModuleGenome(layers), space) <= space.max_params)


def _first_valid(parent: ModuleGenome, space: ModuleSpace,
                 propose: Callable[[], tuple[ModuleItem, ...] | None]) -> ModuleGenome:
    """The first of at most ATTEMPTS proposals that is valid; the parent itself if none is."""
    for _ in range(ATTEMPTS):
        layers = propose()
        if layers is not None and _valid(layers, space):
            return ModuleGenome(layers)
    return parent


def _check_parent(genome: ModuleGenome, space: ModuleSpace) -> None:
    if not isinstance(genome, ModuleGenome):
        raise GenomeError(f"expected a ModuleGenome, got {type(genome).__name__}",
                          hint="parse strings with nascli.ga.modules.parse_module_genome first")
    check_module_genome(genome)
    if len(genome.layers) > space.max_layers:
        raise GenomeError(f"parent module {format_module_genome(genome)} has {len(genome.layers)} layers, more "
                          f"than search_space.max_layers = {space.max_layers}",
                          hint="raise search_space.max_layers or start from a smaller module")
    params = network_params(genome, space)
    if params > space.max_params:
        raise GenomeError(f"parent module {format_module_genome(genome)} gives a network with {params} "
                          f"parameters, more than search_space.max_params = {space.max_params}",
                          hint="raise search_space.max_params or start from a smaller module")


__all__ = ["MUTATIONS", "OPERATORS", "ATTEMPTS", "ModuleSpace", "autoencoder_params", "classifier_params",
           "network_params", "module_features", "violations",
           "minimal_module_genome", "mutate", "crossover", "apply", "mutate_genotype", "random_module_genome",
           "uniform_module_genome"]
