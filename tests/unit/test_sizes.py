"""Small modules and short functions: no module in consult/ over MAX_MODULE_LINES lines and no
function over MAX_FUNCTION_LINES, except today's offenders listed below with their sizes.

The list can only shrink: an offender that grows fails, a new one fails, and one that has come
down to the bound must be taken off the list (so its room cannot be reused).
"""

from __future__ import annotations

import ast
from pathlib import Path

import consult

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
ROOT = Path(consult.__file__).parent

# path (under consult/) -> lines, today's. Lower a figure when a module shrinks.
MODULES_ALLOWED: dict[str, int] = {}

# "path::qualified name" -> lines (def line to last line, decorators aside), today's.
FUNCTIONS_ALLOWED: dict[str, int] = {
    # Migrations are history: never edited once released, so these stay as they are.
    "storage/migrations/versions/0001_initial_schema.py::upgrade": 194,
    "storage/migrations/versions/0002_booking.py::upgrade": 82,
    "storage/migrations/versions/0004_documents_and_follow_ups.py::upgrade": 63,
    "storage/migrations/versions/0006_calls.py::upgrade": 63,
}


def _modules() -> dict[str, int]:
    return {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for path in sorted(ROOT.rglob("*.py"))
    }


def _functions() -> dict[str, int]:
    found: dict[str, int] = {}
    for path in sorted(ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text())
        name = str(path.relative_to(ROOT))

        def visit(node: ast.AST, prefix: str, name: str = name) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    qualified = f"{prefix}{child.name}"
                    if not isinstance(child, ast.ClassDef):
                        assert child.end_lineno is not None
                        found[f"{name}::{qualified}"] = child.end_lineno - child.lineno + 1
                    visit(child, qualified + ".")
                else:
                    visit(child, prefix)

        visit(tree, "")
    return found


def _check(sizes: dict[str, int], allowed: dict[str, int], bound: int) -> list[str]:
    problems = []
    for key, size in sizes.items():
        if size > bound and key not in allowed:
            problems.append(f"{key}: {size} lines, over {bound} (split it)")
        elif key in allowed and size > allowed[key]:
            problems.append(f"{key}: {size} lines, grew past its allowed {allowed[key]}")
    for key, limit in allowed.items():
        size = sizes.get(key)
        if size is None:
            problems.append(f"{key}: gone; take it off the allow-list")
        elif size <= bound:
            problems.append(f"{key}: {size} lines, within {bound}; take it off the allow-list")
        elif size < limit:
            problems.append(f"{key}: {size} lines; lower its allowed figure from {limit}")
    return problems


def test_no_module_over_the_bound_beyond_the_allow_list() -> None:
    assert _check(_modules(), MODULES_ALLOWED, MAX_MODULE_LINES) == []


def test_no_function_over_the_bound_beyond_the_allow_list() -> None:
    assert _check(_functions(), FUNCTIONS_ALLOWED, MAX_FUNCTION_LINES) == []


def test_the_check_catches_growth_newcomers_and_stale_entries() -> None:
    sizes = {"a.py": 410, "b.py": 500, "c.py": 300, "d.py": 450}
    allowed = {"b.py": 450, "c.py": 420, "d.py": 460, "e.py": 401}
    assert _check(sizes, allowed, 400) == [
        "a.py: 410 lines, over 400 (split it)",
        "b.py: 500 lines, grew past its allowed 450",
        "c.py: 300 lines, within 400; take it off the allow-list",
        "d.py: 450 lines; lower its allowed figure from 460",
        "e.py: gone; take it off the allow-list",
    ]
