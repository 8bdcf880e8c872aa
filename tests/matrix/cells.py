"""The access matrix's vocabulary: the columns (who asks), the targets (what a row's request
names) and the cells (what the asker gets).

A row is written as one ``row(...)`` entry in tests/matrix/table.py; its cells are ten tokens,
one per column in ``COLUMNS`` order, separated by spaces:

- ``-``            the column makes no sense for this row (see ``NOT_APPLICABLE``);
- ``ok``           allowed (2xx, or an ack ``{"ok": true}``), no audit row;
- ``A``            allowed, with an allowed audit row of the row's action (``A:other.action``
                   names another action for this cell);
- ``x``, ``y``     the refusals the row names as ``x=`` and ``y=`` (its usual ones);
- ``403:code``     refused with this status and code (an event's token has no status:
                   ``code``); audited as a denied row, but for anonymous callers and any 401
                   (nobody to name);
- ``401``          refused for want of a session (``not_authenticated``; over Socket.IO the
                   connection itself is refused); ``401:code`` for another 401 (a session
                   where a route takes another credential: ``invalid_credential``);
- ``~409:code``    allowed past the access check, and answered this 4xx because the test
                   sends the request with nothing to act on (the row's note says why);
                   audited as a denied row, like every 4xx to a logged-in user.

A row marked ``public=True`` (a route that needs no session: sign-up, the single-use links,
the login's TOTP step) audits no refusal: the route knows nobody to name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    who: str


COLUMNS: tuple[Column, ...] = (
    Column("anon", "anonymous", "no session: no token and no cookie."),
    Column(
        "basic",
        "basic patient",
        "a patient whose identity is `basic`: not verified by staff (`users.identity`; issue "
        "16 adds the verification itself). No online consultations, no documents. No tie to "
        "the owner.",
    ),
    Column(
        "verified",
        "verified patient",
        "a patient whose identity is `verified` (set by staff, as for the demo's anna and "
        "piotr), with a PESEL, and with no data of their own and no tie to the owner.",
    ),
    Column(
        "owner",
        "the owner",
        "the patient whose data the target is (a verified patient with a PESEL, which "
        "e-prescriptions and sick leave need).",
    ),
    Column(
        "other",
        "another patient",
        "a verified patient with data of their own (an active consultation with the same "
        "consulting doctor), and no tie to the owner's data.",
    ),
    Column(
        "doctor",
        "consulting doctor",
        "the doctor who accepted the owner's active consultation, and the doctor of the "
        "owner's booked visits. Also the owner of the weekly hours in the `hours` target.",
    ),
    Column(
        "past",
        "doctor who consulted before",
        "the doctor of the owner's ended consultations: issued their outcome (e-prescriptions, "
        "referrals, sick leave); the owner's follow-up questions and renewal requests wait "
        "for them. No tie to the active consultation.",
    ),
    Column(
        "unrelated",
        "unrelated doctor",
        "a doctor who never met the owner (on a row about no one's data: any doctor).",
    ),
    Column(
        "offered",
        "doctor only offered",
        "a doctor who was offered the owner's active consultation and declined it (an offer "
        "gives nothing). In the `offer` target: the doctor the offer waits for.",
    ),
    Column("scheduler", "scheduler", "a scheduler (the clinic's staff)."),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)

# What "-" means, for the legend.
NOT_APPLICABLE = (
    "the column makes no sense for this row: the target has no owner (a route about no one's "
    'data, or about a doctor\'s), so there is no "owner" and no "another patient"; the basic '
    "and verified patient columns say what any patient gets."
)


@dataclass(frozen=True)
class Target:
    key: str
    what: str


# What a row's request names. The world (tests/matrix/world.py) builds each one; a row's
# path parameters are filled from its target.
TARGETS: tuple[Target, ...] = (
    Target("none", "no one's data (the caller's own session, public lists, the catalogue)."),
    Target(
        "own",
        "the caller's own data, or a list of what the caller may see: each column asks with "
        'its own session ("the owner" has a record, documents, bookings, prescriptions…; '
        "the others see their own, which must hold nothing of the owner's).",
    ),
    Target(
        "active",
        "the owner's active consultation (chat), with messages and a shared document.",
    ),
    Target(
        "ended",
        "the owner's ended consultation, with its transcript, outcome and a recording.",
    ),
    Target("patient", "the owner, by patient id (their record, documents, FHIR)."),
    Target("booking", "the owner's booked visit, to come."),
    Target("visit", "the owner's booked visit, over (what a rating rates)."),
    Target("document", "the owner's uploaded document, shared into the active consultation."),
    Target("recording", "the recording of the owner's ended consultation."),
    Target("package", "the owner's package of e-prescriptions."),
    Target("prescription", "one of the owner's e-prescriptions (long-term, renewable)."),
    Target("referral", "the owner's referral to rehabilitation."),
    Target("sick-leave", "the owner's sick leave."),
    Target("renewal", "the owner's open renewal request."),
    Target("follow-up", "the owner's follow-up question, not yet answered."),
    Target("identity", "the owner's pending identity verification request."),
    Target(
        "result",
        "the owner's laboratory result (a blood count, with its PDF), as a laboratory posted it.",
    ),
    Target(
        "ticket",
        "a waiting queue ticket; its patient is the owner here (nobody consults them yet).",
    ),
    Target(
        "offer",
        'a ticket offered to a doctor who has not answered yet (that doctor is the "doctor '
        'only offered" column); its patient is the owner here.',
    ),
    Target("hours", "the consulting doctor's weekly hours (a doctor's data, no owner)."),
    Target("doctor", "a doctor online now (a doctor's data, no owner)."),
    Target("slot", "a free slot (no one's data)."),
    Target("product", "a product of the catalogue (no one's data)."),
)
TARGET_KEYS = frozenset(t.key for t in TARGETS)


class Kind(Enum):
    NA = "n/a"
    ALLOWED = "allowed"
    REFUSED = "refused"
    PASSES = "passes"  # allowed past the access check, answered a 4xx: nothing to act on


@dataclass(frozen=True)
class Cell:
    kind: Kind
    audited: bool = False
    status: int | None = None
    code: str | None = None
    action: str | None = None  # the allowed audit row's action

    @property
    def token(self) -> str:
        """The cell as written in table.py (``x`` spelled out)."""
        if self.kind is Kind.NA:
            return "-"
        if self.kind is Kind.ALLOWED:
            return "A" if self.audited else "ok"
        if self.status == 401 and self.code == "not_authenticated":
            return "401"
        refusal = f"{self.status}:{self.code}" if self.status else str(self.code)
        return "~" + refusal if self.kind is Kind.PASSES else refusal


_REFUSAL = re.compile(r"(~?)(?:([1-5][0-9]{2}):)?([a-z][a-z0-9_]*)")


def parse_cell(
    token: str,
    column: str,
    action: str | None,
    named: dict[str, str | None],
    public: bool = False,
) -> Cell:
    """One token of a row (see the module's docstring); ``column`` says whether a refusal is
    audited (an anonymous caller is nobody to name)."""
    if token in named:
        if named[token] is None:
            raise ValueError(f"{token}: the row does not name it")
        token = str(named[token])
    if token == "-":
        return Cell(Kind.NA)
    if token == "ok":
        return Cell(Kind.ALLOWED)
    if token == "A" or token.startswith("A:"):
        named = token[2:] or action
        if not named:
            raise ValueError("A: the row names no audit action")
        return Cell(Kind.ALLOWED, audited=True, action=named)
    if token == "401":
        token = "401:not_authenticated"
    match = _REFUSAL.fullmatch(token)
    if match is None:
        raise ValueError(f"not a cell: {token!r}")
    passes, status, code = match.groups()
    kind = Kind.PASSES if passes else Kind.REFUSED
    if kind is Kind.PASSES and column == "anon":
        raise ValueError("an anonymous caller never passes an access check")
    # A 401 answers nobody the server knows (no session, or a session where the route takes
    # another credential): there is nobody to name in an audit row.
    # A public route (no session needed) knows nobody either: its refusals name no one.
    audited = column != "anon" and status != "401" and not public
    return Cell(kind, audited=audited, status=int(status) if status else None, code=code)


@dataclass(frozen=True)
class Row:
    """One HTTP route (``"GET /api/…"``) or Socket.IO event (``"chat:send"``)."""

    name: str
    target: str
    cells: tuple[Cell, ...]
    action: str | None
    note: str

    @property
    def is_event(self) -> bool:
        return " " not in self.name

    @property
    def method(self) -> str:
        return self.name.split(" ", 1)[0]

    @property
    def path(self) -> str:
        return self.name.split(" ", 1)[1]

    def cell(self, column: str) -> Cell:
        return self.cells[COLUMN_KEYS.index(column)]

    @property
    def tokens(self) -> str:
        return " ".join(c.token for c in self.cells)


def row(
    name: str,
    target: str,
    cells: str,
    *,
    x: str | None = None,
    y: str | None = None,
    action: str | None = None,
    note: str = "",
    public: bool = False,
) -> Row:
    """A row of the matrix: ``cells`` holds one token per column (the module's docstring)."""
    tokens = cells.split()
    if len(tokens) != len(COLUMNS):
        raise ValueError(f"{name}: {len(tokens)} cells for {len(COLUMNS)} columns")
    if target not in TARGET_KEYS:
        raise ValueError(f"{name}: unknown target {target!r}")
    parsed = tuple(
        parse_cell(token, column, action, {"x": x, "y": y}, public)
        for token, column in zip(tokens, COLUMN_KEYS, strict=True)
    )
    for cell in parsed:
        if " " not in name and cell.kind is not Kind.NA and cell.status and cell.status != 401:
            raise ValueError(f"{name}: an event's refusal has a code, not a status")
    return Row(name, target, parsed, action, note)
