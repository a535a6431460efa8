"""docs/operations.md lists every setting: one row per variable, naming the
``Settings`` field it sets, and nothing that does not exist."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path

from telemed import cli, settings
from telemed.settings import Settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "operations.md"
NONE = "—"


def documented() -> list[tuple[str, str]]:
    """(variable, field) of each row of the settings table, ``—`` for none."""
    text = DOC.read_text()
    section = text[text.index("## Settings\n") :]
    section = section[: section.index("\n## ", 1)]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or cells[0] in {"variable", "---"}:
            continue
        variable, field = (c.strip("`") for c in cells[:2])
        rows.append((variable, field))
    assert rows, "no settings table found"
    return rows


def _names_read(node: ast.AST, local: dict[str, set[str]]) -> set[str]:
    """Variables read by ``get("NAME", ...)`` in ``node``, following local names."""
    found: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id == "get":
            if sub.args and isinstance(sub.args[0], ast.Constant) and isinstance(sub.args[0].value, str):
                found.add(sub.args[0].value)
        elif isinstance(sub, ast.Name) and sub.id in local:
            found |= local[sub.id]
    return found


def read_by_from_env() -> dict[str, set[str]]:
    """Field → the variables ``Settings.from_env`` reads for it (from its source)."""
    tree = ast.parse(inspect.getsource(settings))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    from_env = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "from_env")
    local: dict[str, set[str]] = {}
    for sub in ast.walk(from_env):
        if isinstance(sub, ast.Assign) and len(sub.targets) == 1 and isinstance(sub.targets[0], ast.Name):
            local[sub.targets[0].id] = _names_read(sub.value, {})
    calls = [s for s in ast.walk(from_env) if isinstance(s, ast.Call) and isinstance(s.func, ast.Name) and s.func.id == "cls"]
    build = max(calls, key=lambda c: len(c.keywords))
    return {k.arg: _names_read(k.value, local) for k in build.keywords if k.arg}


def test_every_field_is_documented_with_the_variable_that_sets_it() -> None:
    rows = documented()
    fields = {f.name for f in dataclasses.fields(Settings)}
    reads = read_by_from_env()
    assert set(reads) <= fields, "from_env sets a field that does not exist"
    doc_fields = {field for _, field in rows if field != NONE}
    assert doc_fields == fields, f"undocumented: {sorted(fields - doc_fields)}; not fields: {sorted(doc_fields - fields)}"
    for field in fields:
        doc_vars = {variable for variable, f in rows if f == field and variable != NONE}
        assert doc_vars == reads.get(field, set()), f"{field}: documented {sorted(doc_vars)}, read {sorted(reads.get(field, set()))}"


def test_nothing_is_documented_that_is_not_read() -> None:
    rows = documented()
    variables = [variable for variable, _ in rows if variable != NONE]
    assert len(variables) == len(set(variables)), "a variable is listed twice"
    cli_source = inspect.getsource(cli)
    for variable, field in rows:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]+|—", variable), variable
        if field == NONE:
            # Read by the command line itself (e.g. where `telemed dev` keeps its files).
            assert f'"{variable}"' in cli_source, f"{variable} is documented but nothing reads it"
