"""Variation operators of the Klos GA: insert, switch, delete, adjust, single-point crossover, and the
1,000-mutation random initialisation (seed 000, Sec. 3.1 and Table 5).

Pure: standard library only, every random choice comes from the `random.Random` passed in.

Contract (pymoo's do/_do split): the public functions validate their parents (they must fit their
input and respect the space's caps, else `GenomeError`), the private `_insert` etc. propose a child
and `_walk` accepts it only if every layer fits its input and the parameter count stays within
`space.max_params`. So every result fits its input (`cost.analyse` passes), keeps dense layers after
all spatial layers, has at most `space.max_layers` hidden layers and at most `space.max_params`
parameters, and draws every new value from the space. Values a parent already carries are kept
(a hand-written seed may hold values outside the space; the operators never add such values).

No valid move (delete or switch on a genome without layers to delete or switch, insert into a full
genome, crossover of two empty genomes, or a child over the parameter cap): each operator makes at
most `ATTEMPTS` proposals and otherwise returns the (immutable) parent unchanged. This bound makes
every call finish, and the fallback is valid because the parent is.

Speed: the 1,000-mutation initialisation runs millions of shape checks, so `_walk` keeps each
genome's per-layer input shapes and running parameter counts (`_Profile`), re-walks only from the
first changed layer, and stops as soon as a shape equals the parent's at the corresponding layer
(the rest is then the parent's tail). Per-layer effects are memoised. The layer arithmetic mirrors
`nascli.ga.cost` (and uses its `branch_plan`); a property test checks they agree on every genome.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from nascli.errors import ConfigError, GenomeError
from nascli.ga.cost import ConvStep, ParallelStep, PoolSameStep, analyse, branch_plan, needs_projection
from nascli.ga.genome import (
    Branch,
    Genome,
    HiddenLayer,
    InceptionSpec,
    InputLayer,
    LayerSpec,
    OutputLayer,
    check_structure,
)
from nascli.ga.search_space import BRANCH_TYPES, POOL_BRANCH_TYPE, SPATIAL_TYPES, SearchSpace

MUTATIONS = ("insert", "switch", "delete", "adjust")
OPERATORS = MUTATIONS + ("crossover",)
# Klos et al. Table 5; crossover needs two parents, so the one-parent initialisation ignores it.
KLOS_PROBABILITIES: Mapping[str, float] = {"insert": 0.2, "switch": 0.1, "delete": 0.2, "adjust": 0.4,
                                           "crossover": 0.1}
ATTEMPTS = 16  # proposals per operator call before falling back to the parent

Shape = tuple[int, ...]
G = TypeVar("G")  # a genome of either family
S = TypeVar("S")  # its search space


# ------------------------------------------------------------------------------------- public API

def minimal_genome(width: int, height: int, channels: int, outputs: int) -> Genome:
    """Klos's starting architecture: only the input and the output layer."""
    genome = Genome(InputLayer(width, height, channels), (), OutputLayer(outputs))
    check_structure(genome)  # GenomeError for sizes < 1
    return genome


def mutate(genome: Genome, operator: str, space: SearchSpace, rng: random.Random) -> Genome:
    """One mutation (`insert|switch|delete|adjust`); the parent itself when no valid move exists."""
    if operator not in _MUTATION_FUNCTIONS:
        raise ConfigError(f"unknown mutation operator {operator!r}; allowed: {', '.join(MUTATIONS)}",
                          hint="crossover takes two parents: use crossover() or apply()")
    parent = _individual(genome, space)
    child = _MUTATION_FUNCTIONS[operator](parent, space, rng)
    return parent.genome if child is None else child.genome


def crossover(a: Genome, b: Genome, space: SearchSpace, rng: random.Random) -> Genome:
    """Single-point crossover: a prefix of `a`'s hidden layers followed by a suffix of `b`'s.

    The cut points are drawn independently in each parent (the genomes have different lengths), so
    the child may be shorter or longer than either. Cuts that just copy a parent are not proposed.
    Returns `a` when no valid child is found.
    """
    first, second = _individual(a, space), _individual(b, space)
    if (a.input, a.output) != (b.input, b.output):
        raise GenomeError(f"crossover parents solve different tasks: {a.input}/{a.output} vs "
                          f"{b.input}/{b.output}", hint="cross only genomes of the same run")
    child = _crossover(first, second, space, rng)
    return a if child is None else child.genome


def apply(operator: str, parents: Sequence[Genome], space: SearchSpace, rng: random.Random) -> Genome:
    """Run one operator by name: mutations use `parents[0]`, crossover `parents[0]` and `parents[1]`."""
    return apply_with(crossover, mutate, operator, parents, space, rng)


def apply_with(cross: Callable[[G, G, S, random.Random], G], mutate_one: Callable[[G, str, S, random.Random], G],
               operator: str, parents: Sequence[G], space: S, rng: random.Random) -> G:
    """`apply` for either genome family, given its crossover and mutation."""
    if operator == "crossover":
        if len(parents) < 2:
            raise ValueError("crossover needs two parents")
        return cross(parents[0], parents[1], space, rng)
    if not parents:
        raise ValueError(f"{operator} needs a parent")
    return mutate_one(parents[0], operator, space, rng)


def random_genome(seed: Genome, space: SearchSpace, n_mutations: int, rng: random.Random,
                  probabilities: Mapping[str, float] | None = None) -> Genome:
    """Klos's initialisation: `n_mutations` random mutations of `seed`, each operator drawn with
    `probabilities` (default Table 5; a `crossover` entry is ignored: there is one parent)."""
    if n_mutations < 0:
        raise ConfigError(f"the number of initial mutations must be >= 0, got {n_mutations}",
                          hint="set ga.init_mutations to 0 or more")
    names, cumulative = cumulative_weights(KLOS_PROBABILITIES if probabilities is None else probabilities,
                                            MUTATIONS)
    functions = [_MUTATION_FUNCTIONS[name] for name in names]
    total = cumulative[-1]
    current = _individual(seed, space)
    for _ in range(n_mutations):
        operator = functions[bisect.bisect_right(cumulative, rng.random() * total)]
        current = operator(current, space, rng) or current
    return current.genome


def violations(genome: Genome, space: SearchSpace) -> list[str]:
    """Why `genome` is not a valid member of `space` (empty: it is). Uses the authoritative cost model."""
    try:
        params = analyse(genome).params
    except GenomeError as error:
        return [error.message]
    problems = space.violations(genome)
    if params > space.max_params:
        problems.append(f"{params} parameters > max_params {space.max_params}")
    return problems


# ---------------------------------------------------------------------- shapes and parameter counts

class _Profile:
    """What every hidden layer receives: `shapes[i]` is hidden layer i's input shape (`shapes[n]` feeds
    the output layer); `layer_params[i]` is hidden layer i's parameter count; `params` the total."""

    __slots__ = ("shapes", "layer_params", "output_params", "params")

    def __init__(self, shapes: tuple[Shape, ...], layer_params: tuple[int, ...], output_params: int) -> None:
        self.shapes, self.layer_params, self.output_params = shapes, layer_params, output_params
        self.params = sum(layer_params) + output_params


class _Individual:
    """A genome under construction: its hidden layers and profile; the frozen `Genome` is only built
    when asked for (a 1,000-step initialisation needs just the last one)."""

    __slots__ = ("hidden", "profile", "template", "_genome")

    def __init__(self, hidden: tuple[HiddenLayer, ...], profile: _Profile, template: Genome,
                 genome: Genome | None = None) -> None:
        self.hidden, self.profile, self.template, self._genome = hidden, profile, template, genome

    @property
    def genome(self) -> Genome:
        if self._genome is None:
            self._genome = Genome(self.template.input, self.hidden, self.template.output)
        return self._genome


def _individual(genome: Genome, space: SearchSpace) -> _Individual:
    """Validate a parent with the authoritative cost model and profile it."""
    if not isinstance(genome, Genome):
        raise GenomeError(f"expected a Genome, got {type(genome).__name__}",
                          hint="parse strings with nascli.ga.genome.parse_genome first")
    params = analyse(genome).params  # GenomeError if it does not fit its input
    if len(genome.hidden) > space.max_layers:
        raise GenomeError(f"parent genome has {len(genome.hidden)} hidden layers, more than "
                          f"search_space.max_layers = {space.max_layers}",
                          hint="raise search_space.max_layers or start from a smaller genome")
    if params > space.max_params:
        raise GenomeError(f"parent genome has {params} parameters, more than search_space.max_params = "
                          f"{space.max_params}", hint="raise search_space.max_params or start from a "
                          "smaller genome (a large input flattened into the output layer costs many)")
    profile = _walk(genome.input, genome.hidden, genome.output.units, None, 0, None, 0, 0)
    assert profile is not None and profile.params == params, "operators' cost mirror disagrees with cost.py"
    return _Individual(genome.hidden, profile, genome, genome)


def _size(shape: Shape) -> int:
    return math.prod(shape)


# Memo of `_layer_effect`, keyed by the layer object's id (hashing a frozen dataclass runs Python code
# and dominated the walk). Each entry holds its layer, so the id cannot be reused while it is cached;
# equal layers that are different objects just get separate entries. Cleared when it grows too big.
_EFFECTS: dict[int, tuple[HiddenLayer, dict[Shape, tuple[Shape, int] | None]]] = {}
_EFFECTS_LIMIT = 1 << 15


def _effect(layer: HiddenLayer, shape: Shape) -> tuple[Shape, int] | None:
    entry = _EFFECTS.get(id(layer))
    if entry is None or entry[0] is not layer:
        if len(_EFFECTS) >= _EFFECTS_LIMIT:
            _EFFECTS.clear()
        entry = _EFFECTS[id(layer)] = (layer, {})
    by_shape = entry[1]
    if shape in by_shape:
        return by_shape[shape]
    effect = by_shape[shape] = _layer_effect(layer, shape)
    return effect


def _layer_effect(layer: HiddenLayer, shape: Shape) -> tuple[Shape, int] | None:
    """(output shape, parameters) of one hidden layer on `shape`, or None if it does not fit.
    Mirrors `nascli.ga.cost`."""
    if isinstance(layer, InceptionSpec):
        return _inception_effect(layer, shape) if len(shape) == 3 else None
    if layer.type == "D":
        return (layer.filters,), _size(shape) * layer.filters + layer.filters
    if len(shape) != 3:
        return None  # a spatial layer after flattening
    c, h, w = shape
    kh, kw, sh, sw, f = layer.kernel_h, layer.kernel_w, layer.stride_h, layer.stride_w, layer.filters
    if kh > h or kw > w:
        return None
    if layer.type == "P":
        return (c, (h - kh) // sh + 1, (w - kw) // sw + 1), 0
    oh, ow = -(-h // sh), -(-w // sw)
    params = c * f * kh * kw + 2 * f
    if layer.type == "R":
        if kh > oh or kw > ow:
            return None  # the block's second conv runs on the strided output
        params += f * f * kh * kw + 2 * f
        if needs_projection(c, layer):
            params += c * f + 2 * f
    return (f, oh, ow), params


def _inception_effect(layer: InceptionSpec, shape: Shape) -> tuple[Shape, int] | None:
    channels = params = 0
    spatial = shape[1:]
    for branch in layer.enabled_branches:
        effect = _branch_effect(branch, shape)
        if effect is None:
            return None
        channels, params, spatial = channels + effect[0][0], params + effect[1], effect[0][1:]
    return (channels, *spatial), params


@lru_cache(maxsize=1 << 16)
def _branch_effect(branch: Branch, shape: Shape) -> tuple[Shape, int] | None:
    """One enabled inception branch (adjust changes one branch at a time, so cache per branch)."""
    c, h, w = shape
    params = 0
    for step in branch_plan(branch, c):
        if isinstance(step, PoolSameStep):
            if step.kernel_h > h or step.kernel_w > w:
                return None
            continue
        convs: tuple[ConvStep, ...] = step.convs if isinstance(step, ParallelStep) else (step,)
        for conv in convs:
            if conv.kernel_h > h or conv.kernel_w > w:
                return None
            params += conv.in_channels * conv.out_channels * conv.kernel_h * conv.kernel_w + 2 * conv.out_channels
        c = sum(conv.out_channels for conv in convs)
        h, w = -(-h // convs[0].stride_h), -(-w // convs[0].stride_w)
    return (c, h, w), params


def _walk(inp: InputLayer, hidden: tuple[HiddenLayer, ...], units: int, head: _Profile | None,
          start: int, tail: _Profile | None, offset: int, changed_end: int) -> _Profile | None:
    """Profile of `hidden`, or None if a layer does not fit.

    Layers before `start` are those of `head` (reused as they are); from `changed_end` on, layer q is
    `tail`'s layer q - offset, so once the shape there equals `tail`'s the rest is copied.
    """
    head_shapes: tuple[Shape, ...]
    head_params: tuple[int, ...]
    if head is None:
        start, head_shapes, head_params = 0, ((inp.channels, inp.height, inp.width),), ()
    else:
        head_shapes, head_params = head.shapes[:start + 1], head.layer_params[:start]
    shape = head_shapes[-1]
    shapes: list[Shape] = []
    params: list[int] = []
    for q in range(start, len(hidden)):
        if tail is not None and q >= changed_end and shape == tail.shapes[q - offset]:
            t = q - offset
            return _Profile(head_shapes + tuple(shapes) + tail.shapes[t + 1:],
                            head_params + tuple(params) + tail.layer_params[t:], tail.output_params)
        effect = _effect(hidden[q], shape)
        if effect is None:
            return None
        shape = effect[0]
        shapes.append(shape)
        params.append(effect[1])
    return _Profile(head_shapes + tuple(shapes), head_params + tuple(params), _size(shape) * units + units)


def _accept(parent: _Individual, hidden: tuple[HiddenLayer, ...], space: SearchSpace, start: int,
            changed_end: int, offset: int, tail: _Profile | None = None) -> _Individual | None:
    """The child with these hidden layers if it fits and respects the parameter cap."""
    g = parent.template
    profile = _walk(g.input, hidden, g.output.units, parent.profile, start,
                    parent.profile if tail is None else tail, offset, changed_end)
    if profile is None or profile.params > space.max_params:
        return None
    return _Individual(hidden, profile, g)


# -------------------------------------------------------------------------------- the operators

def _first_dense(hidden: tuple[HiddenLayer, ...]) -> int:
    """Index of the first dense layer (len(hidden) if none): spatial layers are all before it."""
    for index, layer in enumerate(hidden):
        if layer.type == "D":
            return index
    return len(hidden)


def _fitting(kernels: tuple[int, ...], size: int) -> tuple[int, ...]:
    """The (sorted) kernels no larger than `size`."""
    return kernels[:bisect.bisect_right(kernels, size)]


def _insert(parent: _Individual, space: SearchSpace, rng: random.Random) -> _Individual | None:
    hidden = parent.hidden
    n = len(hidden)
    if n >= space.max_layers:
        return None
    boundary = _first_dense(hidden)
    for _ in range(ATTEMPTS):
        kind = rng.choice(space.layers)
        position = rng.randint(0, boundary) if kind in SPATIAL_TYPES else rng.randint(boundary, n)
        layer = _random_layer(kind, parent.profile.shapes[position], space, rng)
        if layer is None:
            continue
        child = _accept(parent, hidden[:position] + (layer,) + hidden[position:], space,
                        start=position, changed_end=position + 1, offset=1)
        if child is not None:
            return child
    return None


def _switch(parent: _Individual, space: SearchSpace, rng: random.Random) -> _Individual | None:
    """Swap two different hidden layers of the same block (spatial or dense), so order stays legal."""
    hidden = parent.hidden
    boundary = _first_dense(hidden)
    spatial_pairs = boundary * (boundary - 1) // 2
    dense_count = len(hidden) - boundary
    total_pairs = spatial_pairs + dense_count * (dense_count - 1) // 2
    if total_pairs == 0:
        return None
    for _ in range(ATTEMPTS):
        if rng.randrange(total_pairs) < spatial_pairs:
            i, j = sorted(rng.sample(range(boundary), 2))
        else:
            i, j = sorted(rng.sample(range(boundary, len(hidden)), 2))
        if hidden[i] == hidden[j]:
            continue
        swapped = hidden[:i] + (hidden[j],) + hidden[i + 1:j] + (hidden[i],) + hidden[j + 1:]
        child = _accept(parent, swapped, space, start=i, changed_end=j + 1, offset=0)
        if child is not None:
            return child
    return None


def _delete(parent: _Individual, space: SearchSpace, rng: random.Random) -> _Individual | None:
    # Sizes never grow through a layer, so removing one keeps every later kernel fitting; only the
    # parameter cap can refuse a deletion (e.g. dropping the pool before a dense layer).
    hidden = parent.hidden
    if not hidden:
        return None
    for _ in range(ATTEMPTS):
        position = rng.randrange(len(hidden))
        child = _accept(parent, hidden[:position] + hidden[position + 1:], space,
                        start=position, changed_end=position, offset=-1)
        if child is not None:
            return child
    return None


def _adjust(parent: _Individual, space: SearchSpace, rng: random.Random) -> _Individual | None:
    hidden = parent.hidden
    if not hidden:
        return None
    for _ in range(ATTEMPTS):
        position = rng.randrange(len(hidden))
        layer = _adjusted_layer(hidden[position], parent.profile.shapes[position], space, rng)
        if layer is None:
            continue
        child = _accept(parent, hidden[:position] + (layer,) + hidden[position + 1:], space,
                        start=position, changed_end=position + 1, offset=0)
        if child is not None:
            return child
    return None


def _crossover(a: _Individual, b: _Individual, space: SearchSpace,
               rng: random.Random) -> _Individual | None:
    ha, hb = a.hidden, b.hidden
    dense_a, dense_b = _first_dense(ha), _first_dense(hb)
    for _ in range(ATTEMPTS):
        i, j = rng.randint(0, len(ha)), rng.randint(0, len(hb))
        if (i, j) in ((len(ha), len(hb)), (0, 0)):
            continue  # a copy of a parent, not a crossover
        if i + len(hb) - j > space.max_layers:
            continue
        if i > dense_a and j < dense_b:
            continue  # a's prefix ends in dense layers, b's suffix starts with spatial ones
        child = _accept(a, ha[:i] + hb[j:], space, start=i, changed_end=i, offset=i - j, tail=b.profile)
        if child is not None:
            return child
    return None


_MUTATION_FUNCTIONS = {"insert": _insert, "switch": _switch, "delete": _delete, "adjust": _adjust}


# ------------------------------------------------------------------------------- random layers

# Interned constructors: the same values give the same (immutable) object, which is cheaper to build
# and makes the memoised `_effect` lookups compare by identity.
_layer_spec = lru_cache(maxsize=1 << 12)(LayerSpec)
_branch = lru_cache(maxsize=1 << 14)(Branch)
_inception = lru_cache(maxsize=1 << 14)(InceptionSpec)


def _random_layer(kind: str, shape: Shape, space: SearchSpace, rng: random.Random) -> HiddenLayer | None:
    """A new layer of `kind` with values from `space` that fits `shape` on its own (None if none can)."""
    if kind == "D":
        return _layer_spec("D", 1, 1, 1, 1, rng.choice(space.dense_units))
    _, h, w = shape
    if kind == "P":
        kernels = _fitting(space.pool_kernels, min(h, w))
        if not kernels:
            return None
        k, s = rng.choice(kernels), rng.choice(space.pool_strides)
        return _layer_spec("P", k, k, s, s, 0)
    stride = rng.choice(space.strides)
    if kind == "I":
        kernels = _fitting(space.kernels, min(h, w))
        if not kernels:
            return None
        enabled = [rng.random() < 0.5 for _ in BRANCH_TYPES]
        if not any(enabled):
            enabled[rng.randrange(len(enabled))] = True
        return _inception(tuple(
            _random_branch(bt, kernels, (stride, stride), space, rng) if on else _disabled(bt)
            for bt, on in zip(BRANCH_TYPES, enabled)))
    # C or R; a residual block's second conv sees the strided size
    limit = min(h, w) if kind == "C" else min(-(-h // stride), -(-w // stride))
    kernels = _fitting(space.kernels, limit)
    if not kernels:
        return None
    k = rng.choice(kernels)
    return _layer_spec(kind, k, k, stride, stride, rng.choice(space.filters))


def _random_branch(branch_type: int, kernels: tuple[int, ...], stride: tuple[int, int],
                   space: SearchSpace, rng: random.Random) -> Branch:
    k = rng.choice(kernels)
    return _branch(branch_type, True, rng.choice(space.inception_variants), k, k, stride[0], stride[1],
                  rng.choice(space.filters))


def _disabled(branch_type: int) -> Branch:
    return _branch(branch_type, False, 0, 1, 1, 1, 1, 0)


def _adjusted_layer(layer: HiddenLayer, shape: Shape, space: SearchSpace,
                    rng: random.Random) -> HiddenLayer | None:
    """`layer` with exactly one parameter changed to another value of the space (None if none can)."""
    if isinstance(layer, InceptionSpec):
        return _adjusted_inception(layer, shape, space, rng)
    if layer.type == "D":
        units = [u for u in space.dense_units if u != layer.filters]
        return _layer_spec("D", 1, 1, 1, 1, rng.choice(units)) if units else None
    _, h, w = shape
    kernels, strides = ((space.pool_kernels, space.pool_strides) if layer.type == "P"
                        else (space.kernels, space.strides))
    choices = {
        "kernel": [k for k in _fitting(kernels, min(h, w)) if (k, k) != (layer.kernel_w, layer.kernel_h)],
        "stride": [s for s in strides if (s, s) != (layer.stride_w, layer.stride_h)],
        "filters": [f for f in space.filters if f != layer.filters] if layer.type != "P" else [],
    }
    field = _pick_field(choices, rng)
    if field is None:
        return None
    value = rng.choice(choices[field])
    k, s = (layer.kernel_w, layer.kernel_h), (layer.stride_w, layer.stride_h)
    f = layer.filters
    if field == "kernel":
        k = (value, value)
    elif field == "stride":
        s = (value, value)
    else:
        f = value
    return _layer_spec(layer.type, k[0], k[1], s[0], s[1], f)


def _pick_field(choices: Mapping[str, list[Any]], rng: random.Random) -> str | None:
    fields = [name for name, values in choices.items() if values]
    return rng.choice(fields) if fields else None


def _adjusted_inception(layer: InceptionSpec, shape: Shape, space: SearchSpace,
                        rng: random.Random) -> InceptionSpec | None:
    """Change one thing: the shared stride, or one branch's enabled flag, type, factorisation, kernel
    or filters. At least one branch stays enabled; a newly enabled branch takes the shared stride."""
    _, h, w = shape
    kernels = _fitting(space.kernels, min(h, w))
    stride = layer.stride  # a newly enabled branch must agree with the others
    enabled_count = len(layer.enabled_branches)
    moves: list[tuple[str, int, list[Any]]] = []
    strides = [s for s in space.strides if (s, s) != layer.stride]
    if strides:
        moves.append(("stride", -1, strides))
    for index, b in enumerate(layer.branches):
        if not b.enabled:
            if kernels:
                moves.append(("enable", index, [True]))
            continue
        if enabled_count > 1:
            moves.append(("disable", index, [False]))
        candidates = {
            "branch_type": [t for t in BRANCH_TYPES if t != b.branch_type],
            "factorisation": ([v for v in space.inception_variants if v != b.factorisation]
                              if b.branch_type != POOL_BRANCH_TYPE else []),
            "kernel": [k for k in kernels if (k, k) != (b.kernel_w, b.kernel_h)],
            "filters": [f for f in space.filters if f != b.filters],
        }
        moves.extend((name, index, values) for name, values in candidates.items() if values)
    if not moves:
        return None
    move, index, values = rng.choice(moves)
    value = rng.choice(values)
    branches = list(layer.branches)
    if move == "stride":
        branches = [_with(b, stride_w=value, stride_h=value) if b.enabled else b for b in branches]
    elif move == "enable":
        branches[index] = _random_branch(branches[index].branch_type, kernels, stride, space, rng)
    elif move == "disable":
        branches[index] = _disabled(branches[index].branch_type)
    elif move == "kernel":
        branches[index] = _with(branches[index], kernel_w=value, kernel_h=value)
    elif move == "branch_type":
        b = branches[index]
        factorisation = b.factorisation
        if value != POOL_BRANCH_TYPE and factorisation not in space.inception_variants:
            factorisation = rng.choice(space.inception_variants)  # was a pool branch's unused value
        branches[index] = _with(b, branch_type=value, factorisation=factorisation)
    else:
        branches[index] = _with(branches[index], **{move: value})
    return _inception(tuple(branches))


_BRANCH_FIELDS = ("branch_type", "enabled", "factorisation", "kernel_w", "kernel_h", "stride_w", "stride_h",
                  "filters")


def _with(branch: Branch, **changes: Any) -> Branch:
    return _branch(*(changes.get(name, getattr(branch, name)) for name in _BRANCH_FIELDS))


# -------------------------------------------------------------------------------------- helpers

def cumulative_weights(probabilities: Mapping[str, float],
                       allowed: Sequence[str]) -> tuple[list[str], list[float]]:
    """The operators of `allowed` with a weight > 0 and their running totals (for one uniform draw);
    ConfigError for unknown names or bad weights. Shared by both genome families."""
    unknown = sorted(set(probabilities) - set(OPERATORS))
    if unknown:
        raise ConfigError(f"unknown operator(s) {', '.join(unknown)}; allowed: {', '.join(OPERATORS)}",
                          hint="set ga.operators.insert/switch/delete/adjust/crossover")
    names, cumulative, total = [], [], 0.0
    for name in allowed:
        weight = probabilities.get(name, 0.0)
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not weight >= 0:
            raise ConfigError(f"operator probability {name} = {weight!r} is not a number >= 0",
                              hint="set ga.operators.<name> to a number between 0 and 1")
        if weight > 0:
            total += weight
            names.append(name)
            cumulative.append(total)
    if not names:
        raise ConfigError(f"every operator probability among {', '.join(allowed)} is 0",
                          hint="give at least one of ga.operators." + "/".join(allowed) + " a weight > 0")
    return names, cumulative


__all__ = ["MUTATIONS", "OPERATORS", "KLOS_PROBABILITIES", "ATTEMPTS", "minimal_genome", "mutate",
           "crossover", "apply", "random_genome", "violations"]
