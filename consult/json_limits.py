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

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class JsonRefused(ValueError):
    """Well-formed or not, this text is not parsed: too deep, or a number too long."""


def loads(text: str | bytes) -> Any:
    """``json.loads``, refusing (:class:`JsonRefused`) nesting deeper than ``MAX_DEPTH`` and
    integers of more than ``MAX_INT_DIGITS`` digits."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode(json.detect_encoding(text), "surrogatepass")
    _check_depth(text)
    return json.loads(text, parse_int=_bounded_int)


def _check_depth(text: str) -> None:
    if text.count("[") + text.count("{") <= MAX_DEPTH:  # cannot be deeper: the common case
        return
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub("", text)):
        if bracket.group() in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise JsonRefused(f"JSON nested deeper than {MAX_DEPTH} levels")
        else:
            depth -= 1


def _bounded_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INT_DIGITS:
        raise JsonRefused(f"a JSON number has more than {MAX_INT_DIGITS} digits")
    return int(literal)


class SocketJson:
    """The JSON module python-socketio and engine.io decode packets with (``json=``).

    A refused event payload still reaches the namespace, as the event name and
    :data:`REFUSED`, so that the client gets an ack (``malformed_json``) instead of silence:
    engine.io's own parser dropped packets with a 101-digit number without a word."""

    dumps = staticmethod(json.dumps)

    @staticmethod
    def loads(text: str | bytes, **_: Any) -> Any:
        try:
            return loads(text)
        except JsonRefused:
            event = _EVENT.match(text if isinstance(text, str) else "")
            if event is None:  # not an event packet (engine.io tries every message): dropped
                raise
            return [json.loads(event.group(1)), REFUSED]


_EVENT = re.compile(r'\s*\[\s*("(?:[^"\\]|\\.){1,200}")\s*,')


class _Refused:
    def __repr__(self) -> str:
        return "REFUSED"


REFUSED: Final = _Refused()
"""Stands for an event payload that was not parsed (too deep, or a number too long)."""
