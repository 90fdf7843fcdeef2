"""Values from the database never escape their place: in the generated model.py they are text or
Python literals (a run id with quotes cannot end the docstring), and on the terminal a run name's
escape sequences are shown, not executed."""

from __future__ import annotations

import sqlalchemy as sa
from test_export_cli import nas, synthetic, synthetic_template, wide_terminal  # noqa: F401  (fixtures)

from nascli.export.codegen import generate_model_source
from nascli.text import printable

HOSTILE = '"""\nimport os; os.system("touch MARKER")  # \\" \x1b[2J\x1b]0;pwned\x07 \u202e'


def test_hostile_text_in_model_py_stays_text(tmp_path):
    source = generate_model_source("In_8_8_1:D_10", title=HOSTILE, origin=f" from run {HOSTILE}")
    code = compile(source, "model.py", "exec")
    namespace: dict = {"__name__": "exported", "__file__": str(tmp_path / "model.py")}
    exec(code, namespace)  # defines the module; runs no os.system
    assert "touch MARKER" in namespace["__doc__"]  # kept as text, visibly
    assert "\x1b" not in source and "\u202e" not in source
    assert not (tmp_path / "MARKER").exists()


def test_printable_shows_control_characters():
    assert printable("plain name") == "plain name"
    assert printable("a\x1b[31mred\r\n") == "a\\x1b[31mred\\x0d\\x0a"
    assert printable("\u202eevil") == "\\u202eevil"


def test_a_run_name_with_escape_sequences_is_printed_escaped(synthetic, tmp_path):  # noqa: F811
    url, built = synthetic
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE run SET name = ? WHERE id = ?", (f"evil{HOSTILE}", built.run_id))
    engine.dispose()
    for output_format in ("table", "markdown", "csv"):
        for args in (("report",), ("report", built.run_id, "--section", "summary")):
            result = nas(*args, "--db", url, "--format", output_format)
            assert result.exit_code == 0, result.output
            assert "\x1b" not in result.output and "\x07" not in result.output and "\u202e" not in result.output
    result = nas("export", built.run_id, "--db", url, "--out", tmp_path / "out", "--format", "code,json")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    compile((tmp_path / "out" / "model.py").read_text(), "model.py", "exec")
