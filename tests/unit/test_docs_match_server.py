"""docs/protocol.md agrees with the server: its error-code index and its routes table.

The codes are read from the source, not from a list kept by hand: every ``code="..."`` given
to an error, every error class made without one (its ``default_code``), every literal
``{"code": ...}`` body and ``error_response(status, "code", ...)`` the edges build themselves,
and the HTTP edge's map from aiohttp's refusals (status -> code, with its fallback). A code
added without its line in the index, or a line left behind after its code went away, fails.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import consult
from consult import errors

ROOT = Path(consult.__file__).parent
PROTOCOL = ROOT.parent / "docs" / "protocol.md"


def _error_classes() -> dict[str, type[errors.ConsultError]]:
    for module in pkgutil.walk_packages(consult.__path__, "consult."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)
    found: dict[str, type[errors.ConsultError]] = {}
    pending: list[type[errors.ConsultError]] = [errors.ConsultError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def codes_in_source() -> dict[str, set[str]]:
    classes = _error_classes()
    codes: dict[str, set[str]] = {}

    def add(code: str, where: Path) -> None:
        codes.setdefault(code, set()).add(str(where.relative_to(ROOT.parent)))

    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                given = [k for k in node.keywords if k.arg == "code"]
                for keyword in given:
                    if isinstance(keyword.value, ast.Constant) and isinstance(
                        keyword.value.value, str
                    ):
                        add(keyword.value.value, path)
                name = node.func.id if isinstance(node.func, ast.Name) else None
                # A class with an __init__ of its own passes its code there (seen above).
                cls = classes.get(name or "")
                if cls and not given and cls is not errors.ConsultError:
                    if "__init__" not in cls.__dict__:
                        add(cls.default_code, path)
                if name == "error_response" and len(node.args) > 1:
                    add(_string(node.args[1]), path)
                is_get = isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                if is_get and path.name == "errors.py" and len(node.args) == 2:
                    add(_string(node.args[1]), path)  # the status -> code map's fallback
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and isinstance(key.value, int):
                        add(_string(value), path)  # an HTTP status -> code map
                    if (
                        isinstance(key, ast.Constant)
                        and key.value == "code"
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                    ):
                        add(value.value, path)
    codes.pop("", None)
    return codes


def _string(node: ast.expr) -> str:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""


def codes_in_index() -> set[str]:
    text = PROTOCOL.read_text()
    section = text.split("\n## Error code index\n", 1)[1].split("\n## ", 1)[0]
    found: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            found.update(re.findall(r"`([a-z0-9_]+)`", first_cell))
    return found


def test_the_index_lists_every_code_the_server_can_send() -> None:
    source = codes_in_source()
    missing = {
        code: sorted(where) for code, where in source.items() if code not in codes_in_index()
    }
    assert missing == {}, "codes raised but not in protocol.md's error-code index"


def test_the_index_lists_no_code_the_server_cannot_send() -> None:
    # "internal" is what an unexpected exception becomes (ConsultError's default) at the edges.
    stale = codes_in_index() - set(codes_in_source()) - {"internal"}
    assert stale == set(), "codes in protocol.md's index that nothing raises"


def test_the_routes_table_lists_every_api_route() -> None:
    """protocol.md's table of HTTP routes holds exactly the routes the app registers."""
    from consult.app import APIS

    registered = {(spec.method, spec.path) for api in APIS for spec in api.routes}
    text = PROTOCOL.read_text()
    table = text.split("\n## HTTP routes\n", 1)[1].split("\n### ", 1)[0]
    documented = set(re.findall(r"^\| (GET|POST|PUT|PATCH|DELETE) \| \[`([^`]+)`\]", table, re.M))
    assert registered - documented == set(), "routes missing from protocol.md's routes table"
    assert documented - registered == set(), "rows of protocol.md's routes table with no route"


EVENT_NAME = re.compile(r"[a-z]+:[a-z][a-z-]*")


def _event_tables(heading: str) -> set[str]:
    """Event names in the first column of the tables under ``heading`` (protocol.md)."""
    section = PROTOCOL.read_text().split(f"\n### {heading}\n", 1)[1].split("\n## ", 1)[0]
    section = section.split("\n### ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("| Event"):
            names.update(n for n in re.findall(r"`([^`]+)`", line.split("|")[1]))
    return {n for n in names if EVENT_NAME.fullmatch(n)}


def test_the_client_events_table_lists_exactly_the_declared_events() -> None:
    from types import SimpleNamespace

    from consult.edges.client_address import TrustedProxies
    from consult.settings import Settings
    from consult.shared_counters import SharedCounters
    from consult.signaling.namespace import ConsultNamespace

    # The event table is built at construction; no service is called while building it.
    services = SimpleNamespace(calls=None, settings=Settings(), counters=SharedCounters("", ""))
    namespace = ConsultNamespace(services, TrustedProxies.parse(""))  # type: ignore[arg-type]
    assert set(namespace.events) == _event_tables("Client → server events")


def test_every_event_name_the_server_uses_is_documented() -> None:
    used: set[str] = set()
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if EVENT_NAME.fullmatch(node.value):
                    used.add(node.value)
    section = PROTOCOL.read_text().split("\n## Socket.IO\n", 1)[1].split("\n## Rate limits\n")[0]
    documented = {
        name
        for line in section.splitlines()
        if line.startswith("| ")
        for name in re.findall(r"`([^`]+)`", line.split("|")[1])
        if EVENT_NAME.fullmatch(name)
    }
    assert used - documented == set(), "event names used by the server but not in protocol.md"


def test_every_route_the_app_serves_is_in_protocol_md(tmp_path: Path) -> None:
    """The routes outside the API registries (checked against the routes table above): pages,
    static files, the socket.io-client bundle, Socket.IO's own path. Each is named in
    protocol.md as `METHOD /path` (a prefix of a documented `METHOD /path/*` counts) or, for
    Socket.IO's transport, by its path."""
    from consult.app import APIS, create_app
    from consult.settings import Settings

    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'routes.db'}"))
    text = PROTOCOL.read_text()
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method not in {"HEAD", "OPTIONS"}
    }
    assert ("GET", "/static") in served and ("GET", "/socket.io/") in served  # the reader reads
    served -= {(spec.method, spec.path) for api in APIS for spec in api.routes}
    missing = sorted(
        f"{method} {path}"
        for method, path in served
        if f"`{method} {path}" not in text
        and not (path.startswith("/socket.io/") and f"`{path}`" in text)
    )
    assert not missing, "routes the app serves but protocol.md does not name:\n  " + "\n  ".join(
        missing
    )
