"""docs/architecture.md describes the code as it is: its folder tree lists every module under
consult/ (and only modules that exist), its composition root lists every service of the bundle
and every part create_app builds; docs/decisions/README.md indexes every decision record.

Each failure names what is missing or left behind, so a module added, moved or removed without
its line in the tree is found at once.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import typing
from pathlib import Path

import consult
from consult.bundle import Services

ROOT = Path(consult.__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
DECISIONS = ROOT / "docs" / "decisions"

# A tree entry: a name ending in .py or /, at an even indentation; description lines that
# continue an entry are indented further (to the description column) and name no module.
_ENTRY = re.compile(r"^(?P<indent>(?:  )*)(?P<name>[A-Za-z_][\w.]*(?:\.py|/))(?:\s|$)")
# Deeper than this is a description's continuation, never an entry.
_DEEPEST_ENTRY = 6


def _section(heading: str) -> str:
    text = ARCHITECTURE.read_text()
    assert f"\n## {heading}\n" in text, f"architecture.md has no '## {heading}' section"
    body = text.split(f"\n## {heading}\n", 1)[1]
    return body.split("\n## ", 1)[0]


def tree_entries() -> set[str]:
    """The paths the folder tree lists, relative to the repository ('consult/queue/policy.py')."""
    block = _section("The folder tree").split("```", 2)[1]
    parents: list[str] = []
    found: set[str] = set()
    for line in block.splitlines():
        match = _ENTRY.match(line)
        if not match or len(match["indent"]) > _DEEPEST_ENTRY:
            continue
        depth = len(match["indent"]) // 2
        if depth > len(parents):
            continue  # a continuation that happens to start like a name
        parents = parents[:depth]
        path = "".join(parents) + match["name"]
        found.add(path)
        if match["name"].endswith("/"):
            parents.append(match["name"])
    return found


def source_modules() -> set[str]:
    """Every module under consult/, except package markers and what lies inside a folder the
    tree lists as a whole (the migrations)."""
    return {
        str(path.relative_to(ROOT))
        for path in (ROOT / "consult").rglob("*.py")
        if path.name != "__init__.py"
    }


def _covered(module: str, listed: set[str]) -> bool:
    """A module is covered by its own line, or by a folder line whose description stands for
    everything in it (a folder listed without any of its modules, such as migrations/)."""
    if module in listed:
        return True
    folders = [entry for entry in listed if entry.endswith("/") and module.startswith(entry)]
    return any(not any(e != f and e.startswith(f) for e in listed) for f in folders)


def test_the_tree_lists_every_module_under_consult() -> None:
    listed = tree_entries()
    missing = sorted(m for m in source_modules() if not _covered(m, listed))
    assert not missing, (
        "architecture.md's folder tree lacks these modules (add a line each, with what the "
        "module is for):\n  " + "\n  ".join(missing)
    )


def test_every_module_the_tree_lists_exists() -> None:
    gone = sorted(
        entry
        for entry in tree_entries()
        if entry.startswith("consult/") and not (ROOT / entry).exists()
    )
    assert not gone, (
        "architecture.md's folder tree lists modules or folders that do not exist (moved or "
        "removed? update the tree):\n  " + "\n  ".join(gone)
    )


def test_the_tree_reader_sees_the_tree() -> None:
    """The reader itself: it must find nested modules, so the two tests above can fail."""
    listed = tree_entries()
    assert {"consult/app.py", "consult/queue/", "consult/queue/policy.py"} <= listed
    assert "consult/storage/migrations/" in listed
    assert not _covered("consult/queue/nowhere.py", listed)


def _table_rows(section: str) -> dict[str, str]:
    """The composition root's bundle table: attribute -> type, both in backquotes."""
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and re.fullmatch(r"`\w+`", cells[0]) and cells[1].startswith("`"):
            rows[cells[0].strip("`")] = cells[1].strip("`")
    return rows


def bundle_fields() -> dict[str, str]:
    hints = typing.get_type_hints(Services)
    return {field.name: hints[field.name].__name__ for field in dataclasses.fields(Services)}


def test_the_composition_root_lists_every_service_of_the_bundle() -> None:
    documented = _table_rows(_section("Composition root"))
    fields = bundle_fields()
    missing = sorted(f"{name} ({kind})" for name, kind in fields.items() if name not in documented)
    extra = sorted(name for name in documented if name not in fields)
    wrong = sorted(
        f"{name}: documented {documented[name]}, built {kind}"
        for name, kind in fields.items()
        if name in documented and documented[name] != kind
    )
    assert not (missing or extra or wrong), (
        "architecture.md's composition root table and consult/bundle.py's Services differ:\n"
        f"  missing from the table: {', '.join(missing) or '-'}\n"
        f"  in the table, not in Services: {', '.join(extra) or '-'}\n"
        f"  of another type: {'; '.join(wrong) or '-'}"
    )


def create_app_parts() -> set[str]:
    """What create_app builds and installs: every class it instantiates (or builds with a
    class method), every function whose result it installs, and every lifetime it appends."""
    tree = ast.parse((ROOT / "consult" / "app.py").read_text())
    create_app = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == "create_app"
    )
    parts: set[str] = set()
    for node in ast.walk(create_app):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                func = func.value  # Services.build, TrustedProxies.parse
            if isinstance(func, ast.Name) and (
                func.id[0].isupper()
                or func.id.startswith(("create_", "build_", "install_", "parse_"))
            ):
                parts.add(func.id)
            if (
                isinstance(node.func, ast.Attribute)
                and node.func.attr == "append"
                and node.args
                and isinstance(node.args[0], ast.Name)
            ):
                parts.add(node.args[0].id)  # cleanup_ctx lifetimes, middlewares
        elif isinstance(node, ast.keyword) and isinstance(node.value, ast.List):
            parts.update(e.id for e in node.value.elts if isinstance(e, ast.Name))
    return parts


def test_the_composition_root_names_every_part_create_app_builds() -> None:
    section = _section("Composition root")
    parts = create_app_parts()
    assert {"Services", "QueueFanout", "watchdog_lifetime"} <= parts  # the reader reads
    missing = sorted(part for part in parts if f"`{part}" not in section)
    assert not missing, (
        "architecture.md's composition root does not name these parts of create_app "
        "(consult/app.py):\n  " + "\n  ".join(missing)
    )


def test_the_decisions_index_lists_every_record() -> None:
    index = (DECISIONS / "README.md").read_text()
    linked = set(re.findall(r"\]\(([\w.-]+\.md)\)", index))
    records = {path.name for path in DECISIONS.glob("*.md") if path.name != "README.md"}
    assert records, "docs/decisions/ holds no records"
    unnamed = sorted(name for name in records if not re.match(r"\d{4}-\d\d-\d\d-[\w-]+\.md$", name))
    assert not unnamed, f"records not named YYYY-MM-DD-subject.md: {unnamed}"
    assert not records - linked, f"records missing from the index: {sorted(records - linked)}"
    assert not linked - records, (
        f"the index links records that do not exist: {sorted(linked - records)}"
    )


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings (lower case, punctuation dropped)."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    headings = re.findall(r"^#+ (.+)$", text, flags=re.M)
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings
    }


def test_links_between_docs_point_at_files_and_headings_that_exist() -> None:
    """Relative links in docs/ and the README reach a file of the repository, and a heading of
    it when they name one: a section moved or renamed leaves no link behind."""
    broken: list[str] = []
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for page in pages:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:
            linked = (page.parent / target).resolve() if target else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{page.relative_to(ROOT)} -> {target}#{anchor} (no such heading)")
    assert not broken, "links to files or headings that do not exist:\n  " + "\n  ".join(broken)


def test_docs_named_in_code_exist() -> None:
    """A comment that sends the reader to docs/… (a decision record, a section's page) names a
    file that exists."""
    named = re.compile(r"docs/[\w./-]+\.md")
    missing = sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for folder in ("consult", "bench", "tests", "web", "scripts")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in {".py", ".js", ".sh", ""}
        and path.is_file()
        and "node_modules" not in path.parts
        for name in named.findall(path.read_text(errors="replace"))
        if not (ROOT / name).exists()
    )
    assert not missing, "code names docs that do not exist:\n  " + "\n  ".join(missing)
