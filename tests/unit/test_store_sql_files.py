"""The SQL files under nascli/store/sql/<dialect>/ are what the store's named statements compile to.

A reviewer reads the claim query in nascli/store/sql/postgresql/claim_any_run.sql; these tests fail
when a builder changes and its file does not (rewrite them with `python -m nascli.store.sql`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nascli.store import open_store
from nascli.store.sql import DIALECTS, HERE, path_of, render, sql_text, statements


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_statement_file_matches_its_builder(dialect: str) -> None:
    for statement in statements(dialect):
        path = path_of(statement, dialect)
        assert path.is_file(), f"{path} is missing: run python -m nascli.store.sql"
        assert path.read_text() == render(statement, dialect), f"{path} differs from its builder"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_no_file_without_a_statement_and_no_name_twice(dialect: str) -> None:
    names = [statement.name for statement in statements(dialect)]
    assert len(names) == len(set(names))
    assert {path.stem for path in (HERE / dialect).glob("*.sql")} == set(names)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_layout_changes_only_whitespace(dialect: str) -> None:
    for statement in statements(dialect):
        body = "".join(line + "\n" for line in path_of(statement, dialect).read_text().splitlines()[1:])
        assert " ".join(body.split()) == sql_text(statement, dialect) + ";"


def test_the_statements_a_store_runs_are_the_files(tmp_path: Path) -> None:
    """The statements built by an open Store (not only by the catalogue) compile to the files."""
    with open_store(f"sqlite:///{tmp_path / 'nas.db'}", create=True) as store:
        built = [*store.queue.sql.every_statement(), *store.cache.sql.every_statement(),
                 *store.runs.sql.every_statement(), *store.population.sql.every_statement(),
                 *store.event_log.sql.every_statement(), *store.weight_repository.sql.every_statement()]
    assert {statement.name for statement in built} == {statement.name for statement in statements("sqlite")}
    for statement in built:
        assert path_of(statement, "sqlite").read_text() == render(statement, "sqlite")


def test_the_claim_query_reads_as_sql() -> None:
    claim = (HERE / "postgresql" / "claim_one_run.sql").read_text()
    assert claim.startswith("-- claim_one_run: ")
    assert "FOR UPDATE SKIP LOCKED" in claim and "WHERE evaluation.id = :b_evaluation_id" not in claim
    assert "evaluation.run_id = :b_run_id" in claim and "status='running'" in claim
