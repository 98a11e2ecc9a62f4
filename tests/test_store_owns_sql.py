"""The store owns every table and statement: no module outside `harness/store/` imports
SQLAlchemy, holds SQL text or reaches for the store's engine. Read from the source with
`ast`, so a lazy import inside a function counts too."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "harness"
STORE = PACKAGE / "store"

# Statements, not words: "select the cases from …" or "update the set" in prose does not
# match, "SELECT x FROM" does; the phrases prose never uses match in any case.
SQL = re.compile(
    r"\bSELECT\b[\s\S]+?\bFROM\b|\bUPDATE\s+\S+\s+SET\b"
    r"|(?i:\binsert\s+into\b|\bdelete\s+from\b|\b(?:create|alter|drop)\s+(?:temp(?:orary)?\s+)?table\b"
    r"|\bcreate\s+(?:unique\s+)?index\b)"
)


def problems_in(source: str, name: str) -> list[str]:
    """What in one module's source belongs to the store."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            found += [f"{name}:{node.lineno}: imports {a.name}" for a in node.names
                      if a.name.split(".")[0] == "sqlalchemy"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "sqlalchemy":
            found.append(f"{name}:{node.lineno}: imports from {node.module}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            found.append(f"{name}:{node.lineno}: SQL text {SQL.search(node.value).group(0)[:40]!r}")
        elif isinstance(node, ast.Attribute) and node.attr == "engine":
            found.append(f"{name}:{node.lineno}: uses the store's engine")
    return found


def test_no_module_outside_the_store_holds_sql() -> None:
    modules = [p for p in PACKAGE.rglob("*.py") if STORE not in p.parents]
    assert len(modules) > 50  # the walk really covers the package
    found = []
    for path in modules:
        found += problems_in(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE.parent)))
    assert found == [], "SQL belongs in harness/store/:\n" + "\n".join(found)


def test_the_store_itself_is_where_sql_is() -> None:
    """The check finds what it looks for (so an empty answer above means something)."""
    inside = []
    for path in STORE.rglob("*.py"):
        inside += problems_in(path.read_text(encoding="utf-8"), path.name)
    assert any("imports from sqlalchemy" in p for p in inside)
    assert any("SQL text 'SELECT" in p for p in inside)


def test_each_kind_of_leak_is_caught() -> None:
    samples = {
        "import sqlalchemy": "imports sqlalchemy",
        "def f():\n    from sqlalchemy.exc import SQLAlchemyError": "imports from sqlalchemy.exc",
        "Q = 'SELECT id\\n FROM results WHERE run_id = :r'": "SQL text",
        "Q = 'insert into runs (run_id) values (1)'": "SQL text",
        "Q = 'select id from results'": None,  # could be prose: SELECT … FROM counts in capitals only
        "Q = 'INSERT INTO runs (run_id) VALUES (1)'": "SQL text",
        "Q = 'UPDATE runs SET status = 1'": "SQL text",
        "Q = 'DELETE FROM suite_locks'": "SQL text",
        "Q = 'CREATE TABLE x (a int)'": "SQL text",
        "def f(store):\n    return store.engine.connect()": "uses the store's engine",
        "'''Select the cases from a suite and update the set of tags.'''": None,
    }
    for source, expected in samples.items():
        got = problems_in(source, "m.py")
        if expected is None:
            assert got == [], source
        else:
            assert len(got) == 1 and expected in got[0], (source, got)
