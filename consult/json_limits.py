"""JSON as clients may send it: bounded nesting and bounded integers, for HTTP bodies and
Socket.IO packets alike (docs/protocol.md, "Input limits").

Python's parser recurses once per level: 100,000 ``[`` ran it out of stack (a 500 before any
session check). Integer literals are parsed in time quadratic in their length, and none of
ours needs more than 19 digits."""

from __future__ import annotations

import json
import re
from typing import Any, Final

MAX_DEPTH: Final = 32
MAX_INT_DIGITS: Final = 100
_TOO_LONG = 10**MAX_INT_DIGITS


class JsonRefused(ValueError):
    """Well-formed or not, this text is not accepted: too deep, or a number too long."""


def loads(text: str | bytes) -> Any:
    """``json.loads``, refusing (:class:`JsonRefused`) nesting deeper than ``MAX_DEPTH`` and
    integers of more than ``MAX_INT_DIGITS`` digits. The parser's own recursion limit (about
    1,000 levels) bounds the work before the check; Python refuses integers of more than
    4,300 digits itself (ValueError), which bounds their conversion."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise JsonRefused(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    _check(value)
    return value


def _check(value: Any) -> None:
    # Iterative: the point is not to recurse on what a client sent.
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                raise JsonRefused(f"JSON nested deeper than {MAX_DEPTH} levels")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
        elif type(node) is int and abs(node) >= _TOO_LONG:
            raise JsonRefused(f"a JSON number has more than {MAX_INT_DIGITS} digits")


class SocketJson:
    """The JSON module python-socketio and engine.io decode packets with (``json=``).

    An event whose payload is refused or not JSON still reaches the namespace, as the event
    name and :data:`REFUSED`, so that the client gets an ack (``malformed_json``) instead of
    silence: engine.io's own parser dropped packets with a 101-digit number without a word."""

    dumps = staticmethod(json.dumps)

    @staticmethod
    def loads(text: str | bytes, **_: Any) -> Any:
        try:
            return loads(text)
        except ValueError:
            event = _EVENT.match(text if isinstance(text, str) else "")
            if event is None:  # not an event packet (engine.io tries every message): dropped
                raise
            return [json.loads(event.group(1)), REFUSED]


_EVENT = re.compile(r'\s*\[\s*("(?:[^"\\]|\\.){1,200}")\s*,')


class _Refused:
    def __repr__(self) -> str:
        return "REFUSED"


REFUSED: Final = _Refused()
"""Stands for an event payload that was not accepted (too deep, a number too long, not JSON)."""
