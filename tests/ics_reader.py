"""A small, strict iCalendar reader for tests: it checks the framing RFC 5545 asks for (CRLF,
folded lines of at most 75 octets) and returns the components' properties."""

from __future__ import annotations

from typing import Any


def unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append("\n" if nxt in "nN" else nxt)
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def parse(text: str) -> list[dict[str, Any]]:
    """The components of ``text`` in order, each a dict: ``{"name": "VEVENT", PROP: value}``
    (TEXT values unescaped; parameters dropped). Raises AssertionError on bad framing."""
    raw = text.encode()
    assert raw.endswith(b"\r\n"), "an iCalendar stream ends with CRLF"
    assert b"\n" not in raw.replace(b"\r\n", b""), "bare LF line ending"
    for physical in raw.split(b"\r\n"):
        assert len(physical) <= 75, f"line longer than 75 octets: {physical!r}"
        physical.decode()  # folding never splits a UTF-8 character
    lines = text.replace("\r\n ", "").replace("\r\n\t", "").split("\r\n")[:-1]
    stack: list[dict[str, Any]] = []
    done: list[dict[str, Any]] = []
    for line in lines:
        name, _, value = line.partition(":")
        name = name.split(";", 1)[0].upper()
        if name == "BEGIN":
            stack.append({"name": value})
        elif name == "END":
            component = stack.pop()
            assert component["name"] == value, f"END:{value} closes {component['name']}"
            done.append(component)
        else:
            assert stack, f"property outside a component: {line!r}"
            stack[-1][name] = unescape(value)
    assert not stack, "unclosed component"
    return done
