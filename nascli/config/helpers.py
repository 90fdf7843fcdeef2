"""Where configuration sections meet the rest of the system: search space, tasks, cache keys, paths."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nascli.config.model import RunConfig, input_shape
from nascli.task import Task

# [task] and [train] keys that do not change what training a genome yields (so they stay out of the
# genotype-cache key): how long the synthetic evaluator sleeps, where files live, thread counts.
_COSMETIC_TASK_KEYS = frozenset({"synthetic_seconds", "data_dir"})
# max_seconds: a limit decides whether an evaluation ends, never what a finished one measured
_COSMETIC_TRAIN_KEYS = frozenset({"keep_checkpoints", "artifact_dir", "threads", "max_seconds"})
_HASH_VERSION = "1"

SEARCH_SPACE_KEYS = ("layers", "inception_variants", "kernels", "strides", "filters", "dense_units",
                     "max_layers", "max_params")


def search_space_dict(cfg: RunConfig) -> dict[str, Any]:
    """What `nascli.ga.search_space.SearchSpace.from_dict` takes (plain JSON-able values)."""
    data = cfg.search_space.model_dump(mode="json")
    return {key: data[key] for key in SEARCH_SPACE_KEYS}


def search_space_of(cfg: RunConfig):
    """The pure `SearchSpace` for this configuration."""
    from nascli.ga.search_space import SearchSpace  # pure module; imported here to keep config standalone

    return SearchSpace.from_dict(search_space_dict(cfg))


def task_for(cfg: RunConfig, genome: str, seed: int) -> Task:
    """A self-contained Task: the [task], [train] and [search_space] sections as plain dicts."""
    return Task(
        genome=genome,
        task=cfg.task.model_dump(mode="json"),
        train=cfg.train.model_dump(mode="json"),
        search_space=search_space_dict(cfg),
        seed=seed,
    )


def training_config_hash(cfg: RunConfig) -> str:
    """Stable sha256 (hex, 16 chars) of everything that decides a genome's result; the genotype-cache key
    together with the canonical genome string."""
    task = {k: v for k, v in cfg.task.model_dump(mode="json").items() if k not in _COSMETIC_TASK_KEYS}
    train = {k: v for k, v in cfg.train.model_dump(mode="json").items() if k not in _COSMETIC_TRAIN_KEYS}
    payload = json.dumps({"v": _HASH_VERSION, "task": task, "train": train}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def default_data_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Per-user dataset cache: $XDG_CACHE_HOME/nascli/data, else ~/.cache/nascli/data."""
    cache = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(cache).expanduser() / "nascli" / "data"


def data_dir_of(task: Mapping[str, Any], env: Mapping[str, str] = os.environ) -> Path:
    """The data directory a worker should use for this task dict (its own default when none is set)."""
    configured = task.get("data_dir")
    return Path(configured).expanduser() if configured else default_data_dir(env)


__all__ = ["search_space_dict", "search_space_of", "task_for", "training_config_hash", "default_data_dir",
           "data_dir_of", "input_shape", "SEARCH_SPACE_KEYS"]
