"""Resolution: preset TOML < nascli.toml < --config file < environment < --set, then validation.

Every value remembers which layer it came from, so a validation error names the file (preset,
nascli.toml path, config file, NAS_DB_URL, `--set ...`), the dotted key and what is allowed, on
one line.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from nascli.config.model import RunConfig
from nascli.config.presets import load_preset
from nascli.config.seed_genome import check_seed_genome
from nascli.errors import ConfigError

DEFAULT_DB_URL = "sqlite:///nas.db"
DB_URL_ENV = "NAS_DB_URL"
PROJECT_FILE = Path("nascli.toml")
DEFAULTS_SOURCE = "the defaults"
_KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$")


@dataclass
class Layers:
    """Flat dotted keys -> value, plus where each value came from (last writer wins)."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def add(self, data: Mapping[str, Any], source: str) -> None:
        for key, value in flatten(data):
            self.set(key, value, source)

    def set(self, key: str, value: Any, source: str) -> None:
        # A key replaces everything beneath it and any scalar above it ("ga=3" then "ga.islands=2").
        for existing in [k for k in self.values if _related(k, key)]:
            del self.values[existing]
            del self.sources[existing]
        self.values[key] = value
        self.sources[key] = source

    def nested(self) -> dict[str, Any]:
        root: dict[str, Any] = {}
        for key, value in self.values.items():
            *parents, leaf = key.split(".")
            node = root
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        return root

    def source_of(self, key: str) -> str:
        """The layer that set `key` (or its nearest set parent/child), else the defaults."""
        parts = key.split(".") if key else []
        for end in range(len(parts), 0, -1):
            prefix = ".".join(parts[:end])
            if prefix in self.sources:
                return self.sources[prefix]
        children = [k for k in self.sources if key and k.startswith(key + ".")]
        return self.sources[children[-1]] if children else DEFAULTS_SOURCE


def _related(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def flatten(data: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Tables become dotted keys; lists and scalars are leaves. An empty table stays a (table) leaf."""
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, dotted + ".")
        else:
            yield dotted, value


def read_toml(path: Path, label: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{label}: file not found", hint="check the path") from None
    except OSError as error:
        raise ConfigError(f"{label}: cannot read it ({error.strerror})",
                          hint="check the path and permissions") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{label}: not UTF-8 text (byte {error.start} is {error.object[error.start]:#04x})",
                          hint="save it as UTF-8 (TOML files are UTF-8)") from None
    return parse_toml(text, label)


def parse_toml(text: str, label: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{label}: not valid TOML: {error}",
                          hint="see nascli.toml.example for the format") from None


def parse_override(text: str) -> tuple[str, Any]:
    """`a.b=value` -> ("a.b", value). The value is a TOML literal (3, 0.5, true, [1, 3], "x"); anything
    that does not parse as one (relu, /data, postgresql://...) is taken as a bare string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not _KEY_PATTERN.match(key):
        raise ConfigError(f"--set {text!r}: expected section.key=value",
                          hint="e.g. --set ga.islands=3 --set task.kind=synthetic")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw
    if isinstance(value, (str, int, float, bool)) and _expects_text(key) and not isinstance(value, str):
        value = raw  # run.name=2024 is a name, not a number
    return key, value


def field_annotation(dotted: str) -> Any | None:
    """The type annotation of the model field at a dotted key, or None if there is no such field."""
    model: type[BaseModel] = RunConfig
    parts = dotted.split(".")
    for index, part in enumerate(parts):
        info = model.model_fields.get(part)
        if info is None:
            return None
        if index == len(parts) - 1:
            return info.annotation
        if not (isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)):
            return None
        model = info.annotation
    return None


def _expects_text(dotted: str) -> bool:
    """True when the model field at `dotted` takes a string (and not a number or bool)."""
    allowed = _allowed_types(field_annotation(dotted))
    return str in allowed and allowed <= {str, type(None)}


def _allowed_types(annotation: Any) -> set[type]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        result: set[type] = set()
        for arg in typing.get_args(annotation):
            result |= _allowed_types(arg)
        return result
    if origin is typing.Literal:
        return {type(arg) for arg in typing.get_args(annotation)}
    return {origin or annotation}


def resolve(
    preset: str | None = None,
    config_file: Path | None = None,
    overrides: Iterable[str] = (),
    project_file: Path | None = PROJECT_FILE,
    env: Mapping[str, str] = os.environ,
) -> RunConfig:
    """Merge preset < nascli.toml < config file < NAS_DB_URL < --set, validate (the seed genome
    included: it must fit the task and the search space), return the config."""
    layers = Layers()
    if preset:
        layers.add(load_preset(preset), f"preset '{preset}'")
    if project_file is not None and Path(project_file).is_file():
        layers.add(read_toml(Path(project_file), str(project_file)), str(project_file))
    if config_file is not None:
        layers.add(read_toml(Path(config_file), f"config file {config_file}"), f"config file {config_file}")
    if env.get(DB_URL_ENV):
        layers.set("store.url", env[DB_URL_ENV], f"environment {DB_URL_ENV}")
    for text in overrides:
        key, value = parse_override(text)
        layers.set(key, value, f"--set {text}")
    cfg = validate_layers(layers)
    check_seed_genome(cfg)
    return cfg


def validate_layers(layers: Layers) -> RunConfig:
    try:
        return RunConfig.model_validate(layers.nested())
    except ValidationError as error:
        raise config_error_from(error, layers) from None


def config_error_from(error: ValidationError, layers: Layers) -> ConfigError:
    """The first problem, as one line: source, dotted key, value, what is allowed."""
    problems = error.errors(include_url=False)
    first = problems[0]
    key = _dotted_key(first)
    value = layers.values.get(key, first.get("input"))
    if first["type"] == "extra_forbidden":  # name what the user wrote (gaa.islands), not just "gaa"
        key = next((k for k in layers.values if _related(k, key)), key)
    source = _blame(first, key, layers)
    message, hint = _describe(first, key)
    shown = "" if first["type"] in ("extra_forbidden", "config_rule") else f" = {_short(value)}"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return ConfigError(f"{source}: {key}{shown}: {message}{more}", hint=hint)


def _blame(problem: Mapping[str, Any], key: str, layers: Layers) -> str:
    """The layer to name. A rule over several keys blames the most recent layer that set one of them."""
    if problem["type"] != "config_rule":
        return layers.source_of(key)
    mentioned = [key] + re.findall(r"\b[a-z_0-9]+(?:\.[a-z_0-9]+)+\b", problem["ctx"]["message"])
    order = list(layers.sources)
    latest = max((order.index(k) for k in order if any(_related(k, m) for m in mentioned)), default=None)
    return layers.sources[order[latest]] if latest is not None else DEFAULTS_SOURCE


def _dotted_key(problem: Mapping[str, Any]) -> str:
    parts = [str(p) for p in problem["loc"] if isinstance(p, str)]
    ctx = problem.get("ctx") or {}
    if problem["type"] == "config_rule" and ctx.get("key"):
        parts.append(ctx["key"])
    return ".".join(parts)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(problem: Mapping[str, Any], key: str) -> tuple[str, str | None]:
    kind, ctx = problem["type"], problem.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key", _suggest(key)
    if kind == "config_rule":
        return ctx["message"], "see docs/configuration.md"
    if kind == "literal_error":
        return "not an allowed value", f"allowed: {_choices(ctx.get('expected', ''))}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind == "finite_number":
        return "must be a finite number (not inf or nan)", f"e.g. --set {key}=<a number>"
    if kind in bounds:
        limit = next(iter(ctx.values()))
        noun = "an integer" if int in _allowed_types(field_annotation(key)) else "a number"
        if kind == "less_than_equal" and noun == "an integer":  # an upper bound
            return f"must be <= {limit}", f"allowed: an integer <= {limit}; larger sizes would not finish"
        return f"must be {bounds[kind]} {limit}", f"allowed: {noun} {bounds[kind]} {limit}"
    types_ = {"int_type": "an integer", "int_parsing": "an integer", "float_type": "a number",
              "float_parsing": "a number", "bool_type": "true or false", "bool_parsing": "true or false",
              "string_type": "a string", "list_type": "a list, e.g. [1, 3]", "model_type": "a table",
              "dict_type": "a table", "int_from_float": "an integer"}
    if kind in types_:
        return f"wrong type, expected {types_[kind]}", f"e.g. --set {key}=<{types_[kind]}>"
    message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
    return message, "see nascli.toml.example for every key and its default"


def _choices(expected: str) -> str:
    return ", ".join(part.strip().strip("'") for part in re.split(r",| or ", expected) if part.strip())


def known_keys() -> list[str]:
    """Every dotted key of the configuration, tables first-level included (ga.operators.insert...)."""
    keys: list[str] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{prefix}{name}.")
            else:
                keys.append(prefix + name)

    walk(RunConfig, "")
    return keys


def _suggest(key: str) -> str:
    keys = known_keys()
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]}?"
    section = key.split(".")[0]
    in_section = [k for k in keys if k.startswith(section + ".")]
    if in_section:
        return "keys of [" + section + "]: " + ", ".join(k.split(".", 1)[1] for k in in_section)
    sections = dict.fromkeys(k.split(".")[0] for k in keys)  # in model order
    return "sections: " + ", ".join(sections)


def validate_stored(run_id: str, config: Any) -> RunConfig:
    """A run row's configuration as a RunConfig; a row edited into something invalid is one line
    naming the run (the database is the truth, but not a trusted one)."""
    try:
        return RunConfig.model_validate(config)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        key = _dotted_key(first)
        message, _ = _describe(first, key)
        raise ConfigError(f"run {run_id}: its stored configuration is invalid: {key or 'the whole'}: {message}",
                          hint="the run row was edited or written by another nascli version; "
                          "start a new run with `nas run`") from None


def read_project_store_url(project_file: Path | None) -> str | None:
    """`[store] url` of nascli.toml, if the file exists and sets it."""
    if project_file is None or not Path(project_file).is_file():
        return None
    data = read_toml(Path(project_file), str(project_file))
    store = data.get("store", {})
    url = store.get("url") if isinstance(store, Mapping) else None
    if url is not None and not isinstance(url, str):
        raise ConfigError(f"{project_file}: store.url = {_short(url)}: wrong type, expected a string",
                          hint='e.g. url = "sqlite:///nas.db"')
    return url or None


def resolve_db_url(
    cli_value: str | None = None,
    project_file: Path | None = PROJECT_FILE,
    env: Mapping[str, str] = os.environ,
    configured: str | None = None,
) -> str:
    """--db > NAS_DB_URL > nascli.toml [store] url > sqlite:///nas.db. `configured`: a resolved run
    configuration's [store] url (nascli.toml < NAS_DB_URL < --set store.url), which then stands
    after --db in place of the last three."""
    if cli_value:
        return cli_value
    if configured:
        return configured
    if env.get(DB_URL_ENV):
        return env[DB_URL_ENV]
    return read_project_store_url(project_file) or DEFAULT_DB_URL


