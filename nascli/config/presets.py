"""Presets: TOML files in the top-level presets/ directory, shipped as the `nascli.presets` package."""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from typing import Any

from nascli.errors import ConfigError

PRESET_PACKAGE = "nascli.presets"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def _preset_files() -> dict[str, Any]:
    root = resources.files(PRESET_PACKAGE)
    return {entry.name.removesuffix(".toml"): entry for entry in root.iterdir() if entry.name.endswith(".toml")}


def preset_names() -> list[str]:
    return sorted(_preset_files())


def load_preset(name: str) -> dict[str, Any]:
    """The preset's raw TOML tables (validate with `nascli.config.resolve(preset=name)`)."""
    files = _preset_files()
    if not _NAME.match(name or "") or name not in files:
        raise ConfigError(f"unknown preset {name!r}", hint="available: " + ", ".join(sorted(files)))
    try:
        return tomllib.loads(files[name].read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:  # a broken shipped preset is a bug; still say where
        raise ConfigError(f"preset '{name}': not valid TOML: {error}") from None


def list_presets() -> list[tuple[str, str]]:
    """(name, one-line description) for every shipped preset, sorted by name."""
    result = []
    for name in preset_names():
        run = load_preset(name).get("run", {})
        result.append((name, str(run.get("description", "")).strip()))
    return result
