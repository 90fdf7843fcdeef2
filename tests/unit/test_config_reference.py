"""docs/config-reference.md is generated from the config model and must not go stale."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from nascli.config import RunConfig, known_keys
from nascli.config.model import RunSection
from nascli.config.reference import reference_markdown

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "config-reference.md"
ROW = re.compile(r"^\| `(?P<key>[a-z_.0-9]+)` \| (?P<type>[^|]*) \| `(?P<default>[^`]*)` \|", re.MULTILINE)


def documented_rows() -> dict[str, re.Match]:
    return {match["key"]: match for match in ROW.finditer(REFERENCE.read_text())}


def test_checked_in_reference_is_current() -> None:
    assert REFERENCE.read_text() == reference_markdown(), (
        "docs/config-reference.md is stale: run `python -m nascli.config.reference > docs/config-reference.md`")


def test_every_key_has_exactly_one_row() -> None:
    rows = [match["key"] for match in ROW.finditer(REFERENCE.read_text())]
    assert sorted(rows) == sorted(known_keys())


def test_documented_defaults_are_the_model_defaults() -> None:
    defaults = RunConfig().model_dump(mode="json")
    checked = 0
    for key, row in documented_rows().items():
        text = row["default"]
        if text.startswith("≈") or key == "nsga2.objectives":  # rounded, or filled from [fitness]
            continue
        value = defaults
        for part in key.split("."):
            value = value[part]
        if text == "none":
            assert value is None, key
        else:
            assert tomllib.loads(f"v = {text}")["v"] == value, key
        checked += 1
    assert checked >= len(known_keys()) - 4


def test_a_changed_description_changes_the_reference(monkeypatch) -> None:
    """The staleness check can fail: editing the model changes the generated text."""
    before = reference_markdown()
    field = RunSection.model_fields["seed"]
    monkeypatch.setattr(field, "description", "A different description.")
    after = reference_markdown()
    assert after != before
    assert "| `run.seed` | integer | `0` | >= 0 | A different description. |" in after


def test_choices_and_bounds_are_listed() -> None:
    text = REFERENCE.read_text()
    assert "| `train.optimizer` | string | `\"adam\"` | `adam`, `sgd` |" in text
    assert "| `task.val_fraction` | number | `≈ 0.0909091` | > 0, < 1 |" in text
    assert "| `worker.heartbeat_seconds` | number | `15` | > 0 |" in text
