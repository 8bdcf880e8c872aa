"""A timeline request's filters, read from its query string, and the page cursor (pure).

``kind`` (names separated by commas, or given again), ``from`` and ``to`` (a date, or a date
and time with its offset), ``cursor`` (as a page gave it) and ``limit``. Each bad one is
refused with a code that names it; nothing is read then.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Final

from pydantic import Field, WithJsonSchema

from consult.errors import Invalid
from consult.schemas import MAX_ID, In
from consult.timeline.registry import NAMES
from consult.timeline.schemas import TIMELINE_MAX_PAGE, TIMELINE_PAGE

KIND_PATTERN: Final = "^({0})(,({0}))*$".format("|".join(NAMES))
# A day, or a day and time (minutes, seconds and up to 6 decimals of a second) with its offset.
MOMENT_PATTERN: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2}))?$"
)
CURSOR_PATTERN: Final = "^[A-Za-z0-9_-]{1,200}$"

_KIND = re.compile(KIND_PATTERN, re.ASCII)
_MOMENT = re.compile(MOMENT_PATTERN, re.ASCII)
_CURSOR = re.compile(CURSOR_PATTERN, re.ASCII)


def _pattern(pattern: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": pattern})


class TimelineQuery(In):
    """The query of the timeline routes (for the OpenAPI document; filters.parse reads it)."""

    kind: Annotated[str, _pattern(KIND_PATTERN)] | None = Field(
        default=None,
        description="Only these kinds (" + ", ".join(NAMES) + "), separated by commas; "
        "every kind when left out.",
    )
    from_: Annotated[str, _pattern(MOMENT_PATTERN)] | None = Field(
        default=None,
        alias="from",
        description="Only what happened at or after this: 2026-12-01 (that day's start, UTC) "
        "or 2026-12-01T08:00:00+01:00 (an offset or Z is required).",
    )
    to: Annotated[str, _pattern(MOMENT_PATTERN)] | None = Field(
        default=None,
        description="Only what happened before this: 2026-12-31 (up to that day's end, UTC) "
        "or a moment with its offset (that moment left out).",
    )
    cursor: Annotated[str, _pattern(CURSOR_PATTERN)] | None = Field(
        default=None, description="The next page: the previous page's `next`, as given."
    )
    limit: int = Field(
        default=TIMELINE_PAGE,
        ge=1,
        le=TIMELINE_MAX_PAGE,
        description="At most this many items.",
    )


@dataclass(frozen=True)
class Position:
    """An item's place in the timeline: when, what kind, which one. A cursor is the last
    item's of a page; the next page holds what comes after it."""

    at: datetime
    kind: str
    id: int


@dataclass(frozen=True)
class Filters:
    kinds: tuple[str, ...]  # in the registry's order
    since: datetime | None = None  # at or after (UTC)
    until: datetime | None = None  # before (UTC)
    after: Position | None = None
    limit: int = TIMELINE_PAGE

    def described(self) -> str | None:
        """The filters, for the audit row's detail (None when there are none)."""
        parts = []
        if self.kinds != NAMES:
            parts.append("kind=" + ",".join(self.kinds))
        if self.since is not None:
            parts.append("from=" + _iso(self.since))
        if self.until is not None:
            parts.append("to=" + _iso(self.until))
        return " ".join(parts) or None


_PARAMETERS: Final = ("kind", "from", "to", "cursor", "limit")


def parse(query: Iterable[tuple[str, str]]) -> Filters:
    """The filters of a query string's (name, value) pairs; ``Invalid`` naming the first bad
    one (invalid_query, invalid_kind, invalid_from, invalid_to, invalid_range,
    invalid_cursor, invalid_limit)."""
    given: dict[str, list[str]] = {}
    for name, value in query:
        if name not in _PARAMETERS:
            raise Invalid(
                f"the timeline takes no parameter {name!r}: " + ", ".join(_PARAMETERS),
                code="invalid_query",
                details={"parameter": name, "allowed": list(_PARAMETERS)},
            )
        given.setdefault(name, []).append(value)
    since = _moment(
        _once(given, "from", code="invalid_from"), "from", code="invalid_from", end=False
    )
    until = _moment(_once(given, "to", code="invalid_to"), "to", code="invalid_to", end=True)
    if since is not None and until is not None and since >= until:
        raise Invalid("from must be before to", code="invalid_range")
    cursor = _once(given, "cursor", code="invalid_cursor")
    return Filters(
        kinds=_kinds(given.get("kind")),
        since=since,
        until=until,
        after=None if cursor is None else decode(cursor),
        limit=_limit(_once(given, "limit", code="invalid_limit")),
    )


def _once(given: dict[str, list[str]], name: str, *, code: str) -> str | None:
    values = given.get(name)
    if values is None:
        return None
    if len(values) > 1:
        raise Invalid(f"give {name} once", code=code)
    return values[0]


def _kinds(values: list[str] | None) -> tuple[str, ...]:
    if values is None:
        return NAMES
    wanted = set()
    for value in values:
        if _KIND.fullmatch(value) is None:
            unknown = [k for k in value.split(",") if k not in NAMES]
            raise Invalid(
                f"kind {', '.join(repr(k) for k in unknown)} is not a kind of the timeline: "
                f"give one or more of {', '.join(NAMES)}, separated by commas",
                code="invalid_kind",
                details={"allowed": list(NAMES)},
            )
        wanted.update(value.split(","))
    return tuple(k for k in NAMES if k in wanted)


def _moment(raw: str | None, name: str, *, code: str, end: bool) -> datetime | None:
    """A day (its start, or for ``to`` the next day's start: the day is in) or a moment, UTC."""
    if raw is None:
        return None
    refused = Invalid(
        f"{name} must be a day (2026-12-01) or a moment with its offset "
        f"(2026-12-01T08:00:00+01:00, or Z for UTC)",
        code=code,
    )
    if _MOMENT.fullmatch(raw) is None:
        raise refused
    try:
        if "T" not in raw:
            day = date.fromisoformat(raw)
            return datetime.combine(day + timedelta(days=1 if end else 0), time(), UTC)
        return datetime.fromisoformat(raw).astimezone(UTC)
    except (ValueError, OverflowError):
        raise refused from None


def _limit(raw: str | None) -> int:
    if raw is None:
        return TIMELINE_PAGE
    # ASCII digits only (str.isdigit() took "²"), within the range.
    digits = raw.isascii() and raw.isdigit() and len(raw) <= 3
    if not (digits and 1 <= int(raw) <= TIMELINE_MAX_PAGE):
        raise Invalid(f"limit must be a count, 1 to {TIMELINE_MAX_PAGE}", code="invalid_limit")
    return int(raw)


# --- the cursor: opaque to clients (base64url of the last item's moment, kind and id) ------


def encode(position: Position) -> str:
    text = f"{_iso(position.at)}|{position.kind}|{position.id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(cursor: str) -> Position:
    refused = Invalid(
        "cursor is not one a timeline page gave: pass its next as it is", code="invalid_cursor"
    )
    if _CURSOR.fullmatch(cursor) is None:
        raise refused
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at_text, kind, id_text = text.split("|")
        at = datetime.fromisoformat(at_text)
        number = int(id_text)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise refused from None
    if at.tzinfo is None or kind not in NAMES or not 1 <= number <= MAX_ID:
        raise refused
    return Position(at.astimezone(UTC), kind, number)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
