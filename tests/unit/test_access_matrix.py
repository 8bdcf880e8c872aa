"""The access matrix (tests/matrix/table.py) has exactly one row per HTTP route and Socket.IO
event, names only audit actions the server writes, and docs/security.md shows it as
``scripts/access-matrix`` renders it. tests/integration/test_access_matrix.py walks it."""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import consult
from consult.app import APIS
from consult.edges.client_address import TrustedProxies
from consult.settings import Settings
from consult.shared_counters import SharedCounters
from consult.signaling.namespace import ConsultNamespace
from tests.matrix.cells import Kind
from tests.matrix.render import SECURITY_MD, spliced
from tests.matrix.table import ROWS
from tests.matrix.walk import BODIES, PAYLOADS


def routes_and_events() -> set[str]:
    """Every registered route (``"GET /api/…"``) and every client event's name."""
    routes = {f"{spec.method} {spec.path}" for api in APIS for spec in api.routes}
    # The event table is built at construction; no service is called while building it.
    services = SimpleNamespace(calls=None, settings=Settings(), counters=SharedCounters("", ""))
    namespace = ConsultNamespace(services, TrustedProxies.parse(""))  # type: ignore[arg-type]
    return routes | set(namespace.events)


def test_every_route_and_event_has_one_row() -> None:
    named = Counter(row.name for row in ROWS)
    assert [name for name, n in named.items() if n > 1] == [], "rows given twice"
    served = routes_and_events()
    assert sorted(served - set(named)) == [], "routes or events without a row in table.py"
    assert sorted(set(named) - served) == [], "rows of table.py for no route or event"


def test_security_md_shows_the_table() -> None:
    text = SECURITY_MD.read_text()
    assert text == spliced(text, ROWS), "docs/security.md is stale: run scripts/access-matrix"


def _action_patterns() -> list[re.Pattern[str]]:
    """The dotted strings of the server's source (``"record.read"``), f-strings as patterns
    (``f"outcome.{kind}.cancel"``)."""
    found: list[re.Pattern[str]] = []
    for path in Path(consult.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append(re.compile(re.escape(node.value)))
            elif isinstance(node, ast.JoinedStr):
                parts = [
                    re.escape(v.value) if isinstance(v, ast.Constant) else "[a-z_]+"
                    for v in node.values
                ]
                found.append(re.compile("".join(parts)))
    return found


def test_every_audit_action_named_is_one_the_server_writes() -> None:
    """A typo in an action would only show when the walk runs; the source says it first."""
    patterns = _action_patterns()
    named = {
        cell.action
        for row in ROWS
        for cell in row.cells
        if cell.kind is Kind.ALLOWED and cell.action
    }
    unknown = {a for a in named if not any(p.fullmatch(a) for p in patterns)}
    assert sorted(unknown) == []


def test_every_row_that_sends_a_body_has_one() -> None:
    """A route whose payload has required fields, and every event, names what to send
    (tests/matrix/walk.py); without one each cell would be refused for its payload."""
    specs = {f"{spec.method} {spec.path}": spec for api in APIS for spec in api.routes}
    needs = {
        name
        for name, spec in specs.items()
        if spec.body is not None and spec.body.model_json_schema().get("required")
    }
    events = {row.name for row in ROWS if row.is_event}
    assert sorted(needs - set(BODIES)) == []
    assert sorted(events - set(PAYLOADS)) == []
