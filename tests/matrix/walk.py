"""The access matrix's requests and checks: each cell of tests/matrix/table.py is sent as its
column's person to its row's target, from an address of its own (``X-Forwarded-For``, through a
trusted proxy: the test server trusts loopback), so that the audit rows a cell left are told
apart from every other cell's by their ``ip``; then each answer and its audit rows are held
against the cell.

A row that sends a body names it in ``BODIES`` (the same valid body for every column, so that
a refusal is the access rule's, not the payload's), and a query string in ``QUERIES``; an
event its payload in ``PAYLOADS``. A GET route needs neither.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import aiohttp
import socketio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from consult.demo import DEMO_PASSWORD
from consult.outcome.pesel import make_pesel
from consult.storage import tables as t
from tests.matrix.cells import COLUMN_KEYS, Cell, Kind, Row
from tests.matrix.world import (
    DERMATOLOGY,
    INTERNAL,
    PAEDIATRICS,
    Person,
    Target,
    World,
)
from tests.support import SocketClient, png
from tests.unit.results_sample import LOINC, blood_count

# Requests in flight at once: the server shares the test's event loop.
CONCURRENCY = 24

Body = Callable[[World, Target, Person | None], Any]


def _target_id(name: str) -> Body:
    return lambda world, target, person: {name: target.params[name]}


def _client_id(**fields: Any) -> Body:
    return lambda world, target, person: {**fields, "client_id": str(uuid.uuid4())}


def _pesel(world: World, target: Target, person: Person | None) -> Any:
    """The caller's own PESEL again (nothing changes), or a valid one for who has none."""
    own = person.pesel if person is not None else None
    return {"pesel": own or make_pesel(date(1990, 5, 5), 123, "female")}


def _login(world: World, target: Target, person: Person | None) -> Any:
    email = (person or world.people["verified"]).email
    return {"email": email, "password": DEMO_PASSWORD}


def _open_slots(world: World, target: Target, person: Person | None) -> Any:
    start = world.values["now"].replace(second=0, microsecond=0) + timedelta(days=9)
    return {
        "doctor_id": world.values["colleague"],
        "specialty": INTERNAL,
        "kind": "online",
        "starts_at": start.isoformat(),
    }


_EMPTY: Body = lambda world, target, person: {}  # noqa: E731


def _rating(param: str) -> Body:
    """A rating: a change keeps the owner's comment (the walk looks for it in what the
    doctors read), so that only the score changes."""

    def body(world: World, target: Target, person: Person | None) -> Any:
        comment = world.values["comments"].get(target.params[param], "Fine.")
        return {"score": 4, "comment": comment}

    return body


_CANCEL: Body = lambda world, target, person: {"reason": "Issued in error."}  # noqa: E731


def _bundle(world: World, target: Target, person: Person | None) -> Any:
    """A blood count of the target's owner, as a laboratory sends it (each its own report):
    what a session's refusal is not about."""
    when = (world.values["now"] - timedelta(days=2)).isoformat()
    pesel = str((target.owner or world.people["owner"]).pesel)
    return blood_count(pesel=pesel, report_id=f"MATRIX-{uuid.uuid4()}", when=when)


_BOGUS_TOKEN = "matrix-" + "x" * 36  # no such single-use token

BODIES: dict[str, Body] = {
    "POST /api/login": _login,
    "POST /api/login/totp": lambda w, t, p: {"challenge": _BOGUS_TOKEN, "code": "000000"},
    # An address with an account (the owner's): 202 to everyone, no account made.
    "POST /api/signup": lambda w, t, p: {
        "email": w.people["owner"].email,
        "name": "Someone",
        "password": "a long enough passphrase",
        "accept_terms": True,
    },
    "POST /api/signup/confirm": lambda w, t, p: {"token": _BOGUS_TOKEN},
    "POST /api/password/forgot": lambda w, t, p: {"email": "nobody@matrix.test"},
    "POST /api/password/reset": lambda w, t, p: {
        "token": _BOGUS_TOKEN,
        "password": "a long enough passphrase",
    },
    # A wrong current password: a right one would end the column's other sessions.
    "POST /api/me/password": lambda w, t, p: {
        "current_password": "not the password",
        "new_password": "a long enough passphrase",
    },
    "POST /api/me/sessions/logout-all": _EMPTY,
    "POST /api/me/totp/setup": _EMPTY,
    "POST /api/me/totp/enable": lambda w, t, p: {"code": "000000"},
    "POST /api/me/totp/disable": lambda w, t, p: {"password": "not the password"},
    "POST /api/me/identity": _pesel,
    "POST /api/identity/requests/{request_id}/confirm": lambda w, t, p: {
        "document": "ID card, number ending 0001"
    },
    "POST /api/identity/requests/{request_id}/reject": lambda w, t, p: {
        "reason": "the photo did not match"
    },
    "POST /api/consultations": lambda w, t, p: {"specialty": DERMATOLOGY, "form": "chat"},
    "POST /api/consultations/{consultation_id}/accept": _EMPTY,
    "POST /api/consultations/{consultation_id}/decline": _EMPTY,
    "POST /api/consultations/{consultation_id}/end": _EMPTY,
    "POST /api/consultations/{consultation_id}/recommendations": lambda w, t, p: {
        "text": "Drink water."
    },
    "POST /api/slots": _open_slots,
    "POST /api/bookings": _target_id("slot_id"),
    "POST /api/bookings/{booking_id}/cancel": _EMPTY,
    "POST /api/doctors/{doctor_id}/schedule": lambda w, t, p: {
        "specialty": "cardiology",
        "kind": "online",
        "weekday": 5,
        "start_minute": 19 * 60,
        "end_minute": 20 * 60,
    },
    "POST /api/scheduler/tickets/{consultation_id}/move": lambda w, t, p: {
        "specialty": PAEDIATRICS
    },
    "POST /api/scheduler/tickets/{consultation_id}/drop": _EMPTY,
    "POST /api/scheduler/doctors/{doctor_id}/away": _EMPTY,
    "POST /api/consultations/{consultation_id}/documents": lambda w, t, p: {
        "document_id": w.targets["document"].params["document_id"],
        "client_id": str(uuid.uuid4()),
    },
    "POST /api/consultations/{consultation_id}/follow-ups": _client_id(question="And now?"),
    "POST /api/follow-ups/{follow_up_id}/answer": _client_id(answer="All fine."),
    "PUT /api/consultations/{consultation_id}/outcome/draft": lambda w, t, p: {
        "recommendation": "Rest."
    },
    "POST /api/consultations/{consultation_id}/outcome": lambda w, t, p: {
        "recommendation": "Rest."
    },
    "PUT /api/patients/me/pesel": _pesel,
    "POST /api/prescriptions/{document_id}/cancel": _CANCEL,
    "POST /api/referrals/{document_id}/cancel": _CANCEL,
    "POST /api/sick-leaves/{document_id}/cancel": _CANCEL,
    "POST /api/prescriptions/{prescription_id}/renewal": lambda w, t, p: {"note": "Please."},
    "POST /api/renewals/{renewal_id}/approve": _EMPTY,
    "POST /api/renewals/{renewal_id}/decline": lambda w, t, p: {"reason": "See me first."},
    "POST /api/renewals/{renewal_id}/reassign": lambda w, t, p: {
        "doctor_id": w.values["colleague"]
    },
    "PUT /api/consultations/{consultation_id}/rating": _rating("consultation_id"),
    "PUT /api/consultations/{consultation_id}/service-rating": _rating("consultation_id"),
    "PUT /api/bookings/{booking_id}/rating": _rating("booking_id"),
    "PUT /api/bookings/{booking_id}/service-rating": _rating("booking_id"),
    "POST /api/integration/fhir": _bundle,
}
_LEUKOCYTES = f"system={LOINC}&code=6690-2"  # the world's blood count's first value
QUERIES: dict[str, str] = {
    "GET /api/slots": f"specialty={INTERNAL}",
    "GET /api/products": "q=aspi",
    "GET /api/icd10": "q=I10",
    "GET /api/patients/me/fhir/MedicationRequest": "status=active",
    "GET /api/patients/{patient_id}/fhir/MedicationRequest": "status=active",
    "GET /api/patients/me/results/history": _LEUKOCYTES,
    "GET /api/patients/{patient_id}/results/history": _LEUKOCYTES,
}
HEADERS: dict[str, Callable[[], dict[str, str]]] = {
    "POST /api/consultations/{consultation_id}/outcome": lambda: {
        "Idempotency-Key": str(uuid.uuid4())
    },
}


def _in_consultation(**fields: Any) -> Body:
    return lambda world, target, person: {
        "consultation_id": target.params["consultation_id"],
        **fields,
    }


def _presence(world: World, target: Target, person: Person | None) -> Any:
    # Each doctor goes online for what they practise (world.ACCOUNTS); nobody else's
    # specialties matter: the answer is the role's.
    specialties = world.values["specialties"].get(person.key if person else "", [INTERNAL])
    return {"specialties": specialties, "forms": ["chat"]}


PAYLOADS: dict[str, Body] = {
    "presence:online": _presence,
    "presence:offline": lambda w, t, p: None,
    "presence:away": lambda w, t, p: None,
    "queue:ticket": lambda w, t, p: None,
    "queue:accept": _in_consultation(),
    "queue:decline": _in_consultation(),
    "chat:send": lambda w, t, p: {
        "consultation_id": t.params["consultation_id"],
        "client_id": str(uuid.uuid4()),
        "body": "Hello.",
    },
    "chat:resume": _in_consultation(after_seq=0),
    "chat:read": _in_consultation(seq=1),
    "chat:typing": _in_consultation(typing=True),
    "call:config": _in_consultation(),
    "call:offer": _in_consultation(sdp="v=0 junk", type="offer"),
    "call:hangup": _in_consultation(),
    "call:form": _in_consultation(form="voice"),
    "call:form-answer": _in_consultation(accept=True),
    "call:record-consent": _in_consultation(consent=True),
}


@dataclass
class Sent:
    """One cell's request and what came back."""

    row: Row
    column: str
    address: str
    person: Person | None
    target: Target
    # Whose strings the answer must not hold (unless the person may read them): the target's
    # owner, or the world's owner on rows about no one's data.
    watched: Person
    status: int | None  # HTTP status; None for an event
    code: str | None  # the error code; None when allowed
    body: bytes

    @property
    def cell(self) -> Cell:
        return self.row.cell(self.column)

    @property
    def allowed(self) -> bool:
        return self.code is None


def address(index: int) -> str:
    """The cell's own client address (10.0.0.0/8 is never the test's own)."""
    return f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}"


def target_of(world: World, row: Row, column: str) -> Target:
    return world.fresh.get((row.name, column)) or world.targets[row.target]


# Rows walked after all others: a doctor going offline or away hands their offers back to the
# queue, and the offer cells answer offers.
LAST = frozenset({"presence:online", "presence:offline", "presence:away"})


async def walk(world: World, rows: list[Row]) -> list[Sent]:
    """Every cell that applies, at most ``CONCURRENCY`` at once (``LAST`` rows after)."""
    cells = [(r, c) for r in rows for c in COLUMN_KEYS if r.cell(c).kind is not Kind.NA]
    numbered = list(enumerate(cells, start=1))
    gate = asyncio.Semaphore(CONCURRENCY)
    sent: list[Sent] = []
    async with aiohttp.ClientSession() as http:

        async def one(i: int, row: Row, column: str) -> Sent:
            async with gate:
                if row.is_event:
                    return await _emit(world, row, column, address(i))
                return await _request(http, world, row, column, address(i))

        for last in (False, True):
            batch = [one(i, r, c) for i, (r, c) in numbered if (r.name in LAST) is last]
            sent += await asyncio.gather(*batch)
    return sent


# The integration credential's requests come from addresses past the walk's.
_LABORATORY_ADDRESSES = 1 << 20


async def as_laboratory(world: World, rows: list[Row]) -> tuple[list[Sent], str | None]:
    """Every HTTP GET row once with the laboratory's integration credential in place of a
    session (in the anonymous column: on the row's target), each from an address of its own;
    and why Socket.IO refused a connection with it (None: it did not)."""
    token = world.values["integration"]
    laboratory = Person("laboratory", 0, "", "", token)
    gets = [r for r in rows if not r.is_event and r.method == "GET"]
    async with aiohttp.ClientSession() as http:
        sent = await asyncio.gather(
            *(
                _request(http, world, r, "anon", address(_LABORATORY_ADDRESSES + i), laboratory)
                for i, r in enumerate(gets)
            )
        )
    client = SocketClient()
    try:
        await client.connect(world.base_url, token)
    except socketio.exceptions.ConnectionError as exc:
        return list(sent), str(exc)
    await client.close()
    return list(sent), None


def _person(world: World, target: Target, column: str) -> Person | None:
    if column in target.actors:
        return target.actors[column]
    if column == "owner" and target.owner is not None:
        return target.owner  # a ticket's or an offer's own patient
    return world.person(column)


async def _request(
    http: aiohttp.ClientSession,
    world: World,
    row: Row,
    column: str,
    ip: str,
    person: Person | None = None,
) -> Sent:
    """The cell's request, as its column's person (or ``person``, asking in its place)."""
    target = target_of(world, row, column)
    person = person or _person(world, target, column)
    path = row.path.format(**target.params)
    if row.name in QUERIES:
        path += "?" + QUERIES[row.name]
    headers = {"X-Forwarded-For": ip}
    if person is not None:
        headers["Authorization"] = f"Bearer {person.token}"
    if row.name in HEADERS:
        headers.update(HEADERS[row.name]())
    kwargs: dict[str, Any] = {}
    if row.name == "POST /api/documents":
        form = aiohttp.FormData()
        form.add_field("description", "A scan.")
        form.add_field("file", png(), filename="scan.png", content_type="image/png")
        kwargs["data"] = form
    elif row.name in BODIES:
        kwargs["json"] = BODIES[row.name](world, target, person)
    elif row.method in ("POST", "PUT", "PATCH", "DELETE"):
        kwargs["json"] = {}
    url = world.base_url + path
    async with http.request(row.method, url, headers=headers, **kwargs) as response:
        body = await response.read()
        code = None
        if response.status >= 300:
            code = _error_code(body)
        watched = target.owner or world.people["owner"]
        return Sent(row, column, ip, person, target, watched, response.status, code, body)


def _error_code(body: bytes) -> str:
    """consult's error code: an error body's, or an OperationOutcome's first issue's (the
    answer of POST /api/integration/fhir)."""
    try:
        answer = json.loads(body)
        if answer.get("resourceType") == "OperationOutcome":
            return str(answer["issue"][0]["details"]["coding"][0]["code"])
        return str(answer["error"]["code"])
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return "(no error body)"


async def _emit(world: World, row: Row, column: str, ip: str) -> Sent:
    target = target_of(world, row, column)
    person = _person(world, target, column)
    watched = target.owner or world.people["owner"]
    client = SocketClient()
    headers = {"X-Forwarded-For": ip}
    try:
        await client.connect(world.base_url, person.token if person else None, headers)
    except socketio.exceptions.ConnectionError as exc:
        refused = str(exc).encode()
        return Sent(row, column, ip, person, target, watched, None, "not_authenticated", refused)
    try:
        payload = PAYLOADS[row.name](world, target, person)
        ack = await client.emit(row.name, payload)
    finally:
        await client.close()
    code = None if ack.get("ok") else str(ack.get("error", {}).get("code"))
    body = json.dumps(ack, ensure_ascii=False).encode()
    return Sent(row, column, ip, person, target, watched, None, code, body)


# --- checks ---------------------------------------------------------------------------------


def text_of(body: bytes) -> str:
    """An answer as text; a ZIP (the archive) as the text of every file in it."""
    if body.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            return "\n".join(text_of(archive.read(name)) for name in archive.namelist())
    return body.decode("utf-8", errors="replace")


def unseen(world: World, sent: list[Sent]) -> list[str]:
    """The owner's strings that no allowed answer showed: the leak checks prove nothing of a
    string the server never gives anyone."""
    shown = "\n".join(text_of(s.body) for s in sent if s.allowed)
    return [secret for secret in world.people["owner"].secrets if secret not in shown]


async def audit_by_address(engine: AsyncEngine) -> dict[str, list[Any]]:
    """The audit rows the walk left, by client address."""
    a = t.audit_log.c
    async with engine.connect() as conn:
        found = await conn.execute(sa.select(t.audit_log).where(a.ip.like("10.%")).order_by(a.id))
        by_address: dict[str, list[Any]] = {}
        for entry in found:
            by_address.setdefault(entry.ip, []).append(entry)
    return by_address


def observed_token(sent: Sent, audit: list[Any]) -> str:
    """What the server did, written as a cell of table.py."""
    if sent.allowed:
        actions = [e.action for e in audit if e.allowed]
        if not actions:
            return "ok"
        expected = sent.cell.action
        action = expected if expected in actions else actions[0]
        return "A" if action == sent.row.action else f"A:{action}"
    if sent.status is None:  # an event
        if sent.column == "anon" and sent.code == "not_authenticated":
            return "401"
        refusal = str(sent.code)
    elif sent.status == 401 and sent.code == "not_authenticated":
        return "401"
    else:
        refusal = f"{sent.status}:{sent.code}"
    return "~" + refusal if sent.cell.kind is Kind.PASSES else refusal


def problems(sent: Sent, audit: list[Any]) -> list[str]:
    """What in this cell's answer or audit rows the table does not say."""
    cell = sent.cell
    found: list[str] = []
    expected = cell.token
    got = observed_token(sent, audit)
    if cell.kind is Kind.ALLOWED:
        ok = sent.allowed and (sent.status is None or 200 <= sent.status < 300)
    else:  # an event's answer has no status (a refused connection's cell says 401)
        ok = not sent.allowed and sent.code == cell.code
        ok = ok and (sent.row.is_event or sent.status == cell.status)
    if not ok or got != expected:
        found.append(f"expected {expected}, got {got}")
    allowed_rows = [e for e in audit if e.allowed]
    denied_rows = [e for e in audit if not e.allowed]
    actor = sent.person.id if sent.person else None
    if cell.kind is Kind.ALLOWED and cell.audited:
        # An anonymous caller's allowed row (a login) names the user it became.
        mine = [
            e
            for e in allowed_rows
            if e.action == cell.action and (actor is None or e.actor_id == actor)
        ]
        if not mine:
            found.append(f"no allowed {cell.action} row")
        owner = sent.target.owner
        if mine and owner is not None and sent.row.target != "own":
            if not any(e.patient_id == owner.id for e in mine):
                found.append(f"the {cell.action} row names another patient than the owner")
        if denied_rows:
            found.append("an allowed call left a denied audit row")
    elif cell.kind is Kind.ALLOWED and audit:
        found.append(f"not audited in the table, but left {[e.action for e in audit]}")
    elif cell.audited:
        if not any(e.actor_id == actor for e in denied_rows):
            found.append("refused without a denied audit row")
        if allowed_rows:
            found.append(f"refused, yet left allowed rows {[e.action for e in allowed_rows]}")
    elif audit:
        found.append("refused to nobody, yet audited")
    found += leaks(sent)
    return found


# Columns whose person has no right to the owner's data whatever they are allowed to call.
_NEVER_ENTITLED = frozenset({"anon", "basic", "verified", "other", "unrelated", "offered"})


def leaks(sent: Sent) -> list[str]:
    """The owner's strings in an answer to someone without a right to them."""
    owner = sent.watched
    if sent.person is not None and sent.person.id == owner.id:
        return []
    entitled = sent.column not in _NEVER_ENTITLED or (
        sent.column == "offered" and sent.row.target == "offer"
    )
    if sent.allowed and entitled:
        return []
    text = text_of(sent.body)
    return [f"leaks {secret!r}" for secret in owner.secrets if secret in text]
