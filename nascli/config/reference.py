"""Generates docs/config-reference.md from the config model, so the reference cannot drift.

Regenerate with `python -m nascli.config.reference > docs/config-reference.md`;
tests/unit/test_config_reference.py fails when the checked-in file differs from this output.
Pure: reads the pydantic model only (types, defaults, bounds, descriptions).
"""

from __future__ import annotations

import types
import typing
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from nascli.config.example import _choices, toml_value
from nascli.config.model import RunConfig

HEADER = """\
# Configuration reference

Every key of the run configuration: its type, default, allowed values and meaning. The same keys
are used by presets, `nascli.toml`, `nas run --config FILE` and `--set section.key=value`; how
those sources are merged, the rules between keys and examples are in
[configuration.md](configuration.md). The database URL's own precedence (`--db` > `NAS_DB_URL` >
`[store] url` > `sqlite:///nas.db`) is there too.

Generated from `nascli/config/model.py` by `python -m nascli.config.reference > docs/config-reference.md`;
do not edit by hand (`tests/unit/test_config_reference.py` fails when this file is stale).
"none" in the default column means the key is unset; TOML has no null, so `--set KEY=none` clears it.
"""

_BOUND_WORDS = ((annotated_types.Ge, "ge", ">="), (annotated_types.Gt, "gt", ">"),
                (annotated_types.Le, "le", "<="), (annotated_types.Lt, "lt", "<"))


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def type_name(annotation: Any) -> str:
    """A reader's name for a field type: int, float, list of int, one of ..., str or none."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:  # the choices go to the "allowed" column
        return type_name(type(args[0]))
    if origin in (typing.Union, types.UnionType):
        named = [type_name(a) for a in args if a is not type(None)]
        optional = " or none" if type(None) in args else ""
        return " or ".join(named) + optional
    if origin is list:
        return f"list of {type_name(args[0])}" if args else "list"
    if isinstance(annotation, type):
        return {"str": "string", "bool": "boolean", "int": "integer", "float": "number"}.get(
            annotation.__name__, annotation.__name__)
    return str(annotation)


def allowed(info: FieldInfo) -> str:
    """The choices of a Literal field (`a`, `b`) or its numeric bounds (>= 0, < 1); empty when free."""
    choices = _choices(info.annotation)
    if choices:
        return ", ".join(f"`{c}`" for c in choices)
    parts = []
    for item in info.metadata:
        for kind, attribute, word in _BOUND_WORDS:
            if isinstance(item, kind):
                parts.append(f"{word} {_number(getattr(item, attribute))}")
    return ", ".join(parts)


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def default_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else f"≈ {value:.6g}"  # e.g. 1/11, sqrt(1/3)
    return toml_value(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table_lines(model: type[BaseModel], defaults: BaseModel, table: str) -> list[str]:
    lines = ["", f"## `[{table}]`", "", "| key | type | default | allowed | description |", "|---|---|---|---|---|"]
    nested = []
    for name, info in model.model_fields.items():
        if _is_section(info.annotation):
            nested.append((name, typing.cast(type[BaseModel], info.annotation)))
            continue
        default = default_text(getattr(defaults, name))
        example = (info.json_schema_extra or {}).get("example") if isinstance(info.json_schema_extra, dict) else None
        description = info.description or ""
        if getattr(defaults, name) is None and example is not None:
            description += f" Example: `{toml_value(example)}`."
        cells = [f"`{table}.{name}`", type_name(info.annotation), f"`{default}`", allowed(info), description]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    for name, sub in nested:
        lines += _table_lines(sub, getattr(defaults, name), f"{table}.{name}")
    return lines


def reference_markdown() -> str:
    """docs/config-reference.md: one table per configuration section, in the model's order."""
    defaults = RunConfig()
    # Its default follows [fitness] (filled at validation); show it as unset, like nascli.toml.example.
    defaults.nsga2 = defaults.nsga2.model_copy(update={"objectives": None})
    lines = HEADER.rstrip("\n").splitlines()
    for name, info in RunConfig.model_fields.items():
        lines += _table_lines(typing.cast(type[BaseModel], info.annotation), getattr(defaults, name), name)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
