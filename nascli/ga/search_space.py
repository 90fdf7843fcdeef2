"""What the variation operators may choose from: layer types, parameter values and size caps.

Pure (standard library only). Field names equal the `[search_space]` config keys so
`SearchSpace.from_dict(search_space_dict(cfg))` is the whole mapping. Value lists are stored as sorted
tuples without duplicates, so equal spaces compare (and hash) equal whatever order the user wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from nascli.errors import ConfigError

LAYER_TYPES = ("C", "P", "R", "D", "I")  # conv, max-pool, residual, dense, inception (canonical order)
SPATIAL_TYPES = frozenset({"C", "P", "R", "I"})
INCEPTION_VARIANTS = (0, 1, 2, 3)  # 0 none, 1 smaller kernels, 2 asymmetric, 3 expanded (Klos Sec. 3.1)
BRANCH_TYPES = (1, 2, 3, 4)
POOL_BRANCH_TYPE = 4  # max-pool -> 1x1 conv: factorisation does not apply to it

_HINT = "fix [search_space] in your config or --set search_space.KEY=[...]"


@dataclass(frozen=True)
class SearchSpace:
    """Allowed hidden layer types and parameter values. Kernels and strides are square (kw == kh)."""

    layers: tuple[str, ...] = LAYER_TYPES
    inception_variants: tuple[int, ...] = (1, 2, 3)
    kernels: tuple[int, ...] = (1, 3, 5, 7)
    strides: tuple[int, ...] = (1, 2)
    filters: tuple[int, ...] = (16, 32, 64, 128, 256)
    dense_units: tuple[int, ...] = (64, 128, 256, 512)
    max_layers: int = 20
    max_params: int = 10_000_000
    # Not in the config (yet): max-pool windows and strides. 2x2/2 and 3x3/2 are the classic choices.
    pool_kernels: tuple[int, ...] = (2, 3)
    pool_strides: tuple[int, ...] = (2,)

    def __post_init__(self) -> None:
        layers = _as_tuple(self.layers, "layers")
        unknown = [t for t in layers if t not in LAYER_TYPES]
        if unknown:
            raise ConfigError(f"search_space.layers: unknown layer type(s) {unknown!r}; allowed: "
                              f"{', '.join(LAYER_TYPES)}", hint=_HINT)
        if not layers:
            raise ConfigError("search_space.layers must name at least one layer type", hint=_HINT)
        object.__setattr__(self, "layers", tuple(t for t in LAYER_TYPES if t in layers))

        variants = _int_tuple(self.inception_variants, "inception_variants", minimum=0, allow_empty=True)
        bad = [v for v in variants if v not in INCEPTION_VARIANTS]
        if bad:
            raise ConfigError(f"search_space.inception_variants: {bad!r} not allowed; allowed: 0, 1, 2, 3",
                              hint=_HINT)
        if "I" in layers and not variants:
            raise ConfigError("search_space.inception_variants must name at least one variant (0-3) "
                              "when layers include I", hint=_HINT)
        object.__setattr__(self, "inception_variants", variants)

        for name in ("kernels", "strides", "filters", "dense_units", "pool_kernels", "pool_strides"):
            object.__setattr__(self, name, _int_tuple(getattr(self, name), name, minimum=1))
        for name in ("max_layers", "max_params"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ConfigError(f"search_space.{name} must be a positive integer, got {value!r}", hint=_HINT)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        """Build from the `[search_space]` table (missing keys take the defaults; unknown keys are errors)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"search_space: unknown key(s) {', '.join(unknown)}; allowed: "
                              f"{', '.join(sorted(known))}", hint=_HINT)
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values; `SearchSpace.from_dict(s.to_dict()) == s`."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}

    @property
    def spatial_layers(self) -> tuple[str, ...]:
        return tuple(t for t in self.layers if t in SPATIAL_TYPES)

    def violations(self, genome: Any) -> list[str]:
        """Why `genome`'s hidden layers fall outside this space (empty list: they do not).

        Checks the layer count, types and every parameter value; the parameter cap needs the cost model
        and is checked by `nascli.ga.operators.respects`.
        """
        problems: list[str] = []
        hidden = genome.hidden
        if len(hidden) > self.max_layers:
            problems.append(f"{len(hidden)} hidden layers > max_layers {self.max_layers}")
        for index, layer in enumerate(hidden, start=1):
            where = f"layer {index} ({layer.type})"
            if layer.type not in self.layers:
                problems.append(f"{where}: type not in layers {self.layers}")
            if layer.type == "I":
                problems.extend(self._inception_violations(layer, where))
                continue
            if layer.type == "D":
                if layer.filters not in self.dense_units:
                    problems.append(f"{where}: {layer.filters} units not in dense_units {self.dense_units}")
                continue
            kernels, strides = ((self.pool_kernels, self.pool_strides) if layer.type == "P"
                                else (self.kernels, self.strides))
            if layer.kernel_w != layer.kernel_h or layer.kernel_w not in kernels:
                problems.append(f"{where}: kernel {layer.kernel_w}x{layer.kernel_h} not in {kernels}")
            if layer.stride_w != layer.stride_h or layer.stride_w not in strides:
                problems.append(f"{where}: stride {layer.stride_w}x{layer.stride_h} not in {strides}")
            if layer.type != "P" and layer.filters not in self.filters:
                problems.append(f"{where}: {layer.filters} filters not in filters {self.filters}")
        return problems

    def _inception_violations(self, layer: Any, where: str) -> list[str]:
        problems = []
        for number, branch in enumerate(layer.branches, start=1):
            if not branch.enabled:
                continue
            at = f"{where} branch {number}"
            if branch.branch_type != POOL_BRANCH_TYPE and branch.factorisation not in self.inception_variants:
                problems.append(f"{at}: factorisation {branch.factorisation} not in {self.inception_variants}")
            if branch.kernel_w != branch.kernel_h or branch.kernel_w not in self.kernels:
                problems.append(f"{at}: kernel {branch.kernel_w}x{branch.kernel_h} not in {self.kernels}")
            if branch.stride_w != branch.stride_h or branch.stride_w not in self.strides:
                problems.append(f"{at}: stride {branch.stride_w}x{branch.stride_h} not in {self.strides}")
            if branch.filters not in self.filters:
                problems.append(f"{at}: {branch.filters} filters not in {self.filters}")
        return problems


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_tuple(value: Any, name: str) -> tuple[Any, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigError(f"search_space.{name} must be a list, got {value!r}", hint=_HINT)
    return tuple(value)


def _int_tuple(value: Any, name: str, *, minimum: int, allow_empty: bool = False) -> tuple[int, ...]:
    items = _as_tuple(value, name)
    if not items and not allow_empty:
        raise ConfigError(f"search_space.{name} must not be empty", hint=_HINT)
    bad = [v for v in items if not _is_int(v) or v < minimum]
    if bad:
        raise ConfigError(f"search_space.{name}: {bad!r} are not integers >= {minimum}", hint=_HINT)
    return tuple(sorted(set(items)))


__all__ = ["SearchSpace", "LAYER_TYPES", "SPATIAL_TYPES", "INCEPTION_VARIANTS", "BRANCH_TYPES",
           "POOL_BRANCH_TYPE"]
