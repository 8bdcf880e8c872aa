"""The access matrix's world: the people of every column, the owner's data each target names,
and fresh objects for the calls that use theirs up (ending, cancelling, answering…), built once
per backend on a running server.

Accounts and their sessions go straight into the database (no password hashing: fast; they
share a demo account's hash, so ``demo1234`` logs them in), and so does a laboratory's
integration credential (as ``consult add-integration`` makes it). Everything else is made
through the API and Socket.IO, as clients make it (the laboratory posts the owner's result to
POST /api/integration/fhir), but for two states no route leads to: a booked visit that is
over, and a finished recording (a call's media are not worth their seconds here).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pikepdf
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from consult.accounts.service import token_hash
from consult.clock import Clock
from consult.outcome.licence import make_licence
from consult.outcome.pesel import make_pesel
from consult.outcome.validity import clinic_day
from consult.storage import tables as t
from tests.matrix.cells import COLUMN_KEYS
from tests.support import ApiClient, SocketClient, png
from tests.unit.results_sample import blood_count, changed

CARDIOLOGY = "cardiology"  # the active consultation's, and the offers'
INTERNAL = "internal-medicine"  # the ended consultations'
DERMATOLOGY = "dermatology"  # waiting tickets: no dermatologist is ever online here
PAEDIATRICS = "paediatrics"  # where a scheduler moves a ticket: nobody online either
PHYSIO = "physiotherapy"  # the doctors a scheduler marks away
PSYCHIATRY = "psychiatry"  # the unrelated doctor's, and the helper's consultations
REHAB = "rehabilitation"

ASPIRIN = 241  # long-term eligible, packs of 30 or 60
INSULIN = 358  # long-term eligible, packs of 5
ANTIBIOTIC = 24  # packs of 10 or 14


@dataclass(frozen=True)
class Person:
    key: str
    id: int
    email: str
    name: str
    token: str
    pesel: str | None = None
    # Strings of this person's data that nobody without a right to it may ever receive.
    secrets: tuple[str, ...] = ()

    def with_token(self, token: str) -> Person:
        return replace(self, token=token)


@dataclass(frozen=True)
class Target:
    """What a row's request names: path parameters by name, and whose data it is."""

    params: dict[str, int]
    owner: Person | None = None
    # Who asks instead of the column's usual person (a fresh owner, a fresh session).
    actors: dict[str, Person] = field(default_factory=dict)


@dataclass
class World:
    base_url: str
    people: dict[str, Person]
    targets: dict[str, Target]
    # (row name, column) -> the fresh target of a call that uses its target up.
    fresh: dict[tuple[str, str], Target]
    values: dict[str, Any]

    def person(self, column: str) -> Person | None:
        """Who asks in ``column`` (None: anonymous)."""
        return None if column == "anon" else self.people[column]


@dataclass(frozen=True)
class _Account:
    key: str
    name: str
    role: str
    identity: str = "verified"
    plan: str | None = "premium"
    specialties: tuple[str, ...] = ()
    pesel: bool = True


# The columns' people (by column key), and the others the world needs.
ACCOUNTS = (
    _Account("basic", "Bogna Bazowa", "patient", identity="basic", plan="basic", pesel=False),
    _Account("verified", "Wiktor Weryfikowany", "patient"),
    _Account("owner", "Olga Tajemnicza", "patient"),
    _Account("other", "Piotr Innyski", "patient"),
    _Account("doctor", "Dr Konrad Konsultant", "doctor", plan=None, specialties=(CARDIOLOGY,)),
    _Account("past", "Dr Pola Przeszla", "doctor", plan=None, specialties=(INTERNAL,)),
    _Account("unrelated", "Dr Ula Obca", "doctor", plan=None, specialties=(PSYCHIATRY,)),
    _Account("offered", "Dr Oskar Oferowany", "doctor", plan=None, specialties=(CARDIOLOGY,)),
    _Account("scheduler", "Sara Planistka", "scheduler", plan=None),
    # Consults the fresh owners (whose doctor plays no part in a cell), in a specialty of
    # their own, while the consulting doctor consults theirs.
    _Account("helper", "Dr Henryk Pomocny", "doctor", plan=None, specialties=(PSYCHIATRY,)),
    # Another internist: a renewal is handed over to them; their slots are booked by cells.
    _Account("colleague", "Dr Kamil Kolega", "doctor", plan=None, specialties=(INTERNAL,)),
    _Account("online", "Dr Nina Obecna", "doctor", plan=None, specialties=(PHYSIO,)),
    _Account("away", "Dr Adam Odchodzacy", "doctor", plan=None, specialties=(PHYSIO,)),
    _Account("queued", "Kuba Kolejkowy", "patient"),
    _Account("offer", "Ola Oczekujaca", "patient"),
    # Fresh patients, each for one cell that uses its object up (named for the cell).
    *(
        _Account(key, f"Fryderyk Swiezy {i}", "patient")
        for i, key in enumerate(
            (
                "end-owner",
                "end-doctor",
                "outcome-doctor",
                "form-owner",
                "form-doctor",
                "answer-owner",
                "answer-doctor",
                "hangup-owner",
                "hangup-doctor",
                "accept",
                "decline",
                "queue-accept",
                "queue-decline",
                "move",
                "drop",
                "start",
                "book-verified",
            )
        )
    ),
    _Account("book-basic", "Fryda Swieza", "patient", identity="basic", plan="basic", pesel=False),
    # Each logs out everywhere in one column (their every session ends: not a column's own).
    _Account("logout-all-basic", "Lena Wszedzie", "patient", identity="basic", plan="basic"),
    *(_Account(f"logout-all-{key}", f"Leon Wszedzie {key}", "patient") for key in ("verified",)),
    *(
        _Account(f"logout-all-{key}", f"Dr Lech Wszedzie {key}", "doctor", plan=None)
        for key in ("doctor", "past", "unrelated", "offered")
    ),
    _Account("logout-all-scheduler", "Lucja Wszedzie", "scheduler", plan=None),
)


async def build_world(base_url: str, engine: AsyncEngine, clock: Clock, recordings: Path) -> World:
    """The world, on the server at ``base_url`` (its database behind ``engine``, its clock,
    the folder of its recordings)."""
    people = await _accounts(engine, clock)
    build = _Build(base_url, engine, clock, people)
    try:
        return await build.run(recordings)
    finally:
        await build.close()


async def _accounts(engine: AsyncEngine, clock: Clock) -> dict[str, Person]:
    now = clock.now()
    tag = secrets.token_hex(3)
    async with engine.begin() as conn:
        demo_hash = (
            await conn.execute(
                sa.select(t.users.c.password_hash).where(t.users.c.email == "anna@demo.test")
            )
        ).scalar_one()
        made: dict[str, Person] = {}
        for i, account in enumerate(ACCOUNTS):
            email = f"{account.key}-{tag}@matrix.test"
            doctor = account.role == "doctor"
            pesel = make_pesel(date(1980, 1, 1) + timedelta(days=37 * i), i, "female")
            uid = (
                await conn.execute(
                    t.users.insert()
                    .values(
                        email=email,
                        password_hash=demo_hash,
                        role=account.role,
                        identity=account.identity,
                        name=account.name,
                        plan_code=account.plan,
                        created_at=now,
                        email_confirmed_at=now,
                        # A secret set up, not in force: POST /api/me/totp/enable checks a
                        # code against it whatever order the cells run in.
                        totp_secret="MATRIXTOTPSECRETNOTINFORCE",
                        pesel=pesel if account.role == "patient" and account.pesel else None,
                        licence_number=make_licence(700_000 + i * 37) if doctor else None,
                    )
                    .returning(t.users.c.id)
                )
            ).scalar_one()
            if account.specialties:
                await conn.execute(
                    t.doctor_specialties.insert(),
                    [{"doctor_id": uid, "specialty_code": s} for s in account.specialties],
                )
            token = secrets.token_urlsafe(24)
            await _session(conn, uid, token, now)
            patient = account.role == "patient"
            made[account.key] = Person(
                account.key,
                uid,
                email,
                account.name,
                token,
                pesel if patient and account.pesel else None,
                (account.name, email) + ((pesel,) if patient else ()),
            )
    return made


async def _session(conn: Any, user_id: int, token: str, now: datetime) -> None:
    await conn.execute(
        t.sessions.insert().values(
            token_hash=token_hash(token),
            user_id=user_id,
            created_at=now,
            expires_at=now + timedelta(hours=12),
        )
    )


def _outcome(**changes: Any) -> dict[str, Any]:
    """An outcome with the given parts (left out: none)."""
    body: dict[str, Any] = {"prescriptions": [], "referrals": [], "sick_leave": None}
    body.update(changes)
    return body


def _long_term(product_id: int, pack_size: int) -> dict[str, Any]:
    return {
        "product_id": product_id,
        "pack_size": pack_size,
        "dosage_instruction": "1 daily",
        "validity_days": 180,
        "therapy_days": 120,
    }


_ANTIBIOTIC = {"product_id": ANTIBIOTIC, "pack_size": 10, "dosage_instruction": "1 every 12 h"}


def _referral(kind: str, target: str) -> dict[str, Any]:
    return {"kind": kind, "target": target, "diagnosis": "M54.5", "reason": "Low back pain."}


def _sick_leave(today: date) -> dict[str, Any]:
    return {
        "start": today.isoformat(),
        "end": (today + timedelta(days=3)).isoformat(),
        "recommendation": 1,
        "diagnosis": "J06.9",
        "letter_codes": [],
    }


class _Build:
    def __init__(
        self, base_url: str, engine: AsyncEngine, clock: Clock, people: dict[str, Person]
    ) -> None:
        self.base_url = base_url
        self.engine = engine
        self.clock = clock
        self.people = people
        self.clients: dict[str, ApiClient] = {}
        self.sockets: list[SocketClient] = []
        self.today = clinic_day(clock.now())
        self.ids: dict[str, int] = {}
        self.secrets: list[str] = []
        self.comments: dict[int, str] = {}  # the owner's ratings' (by consultation, booking)
        self.integration = ""  # the laboratory's credential (result())

    def client(self, key: str) -> ApiClient:
        if key not in self.clients:
            person = self.people[key]
            client = ApiClient(self.base_url)
            client.token, client.user = person.token, {"id": person.id, "email": person.email}
            self.clients[key] = client
        return self.clients[key]

    async def socket(self, key: str) -> SocketClient:
        ws = SocketClient()
        self.sockets.append(ws)
        return await ws.connect(self.base_url, self.people[key].token)

    async def close(self) -> None:
        # The doctors' consoles stay connected while the walk runs (a console that goes away
        # would, after its grace, hand its consultations back to the queue): closed by the
        # caller through ``World.values["sockets"]``.
        for client in self.clients.values():
            await client.close()

    async def run(self, recordings: Path) -> World:
        p = self.people
        self.owner_ws = await self.socket("owner")
        # What does not depend on the consultations is made meanwhile.
        await asyncio.gather(
            self.consultations(recordings),
            self.tickets(),
            self.bookings(),
            self.hours(),
            self.result(),
            self.identity_requests(),
            *(self.online(key, PHYSIO) for key in ("online", "away")),  # to be marked away
        )
        sessions = await self.fresh_sessions()
        self.people["owner"] = replace(p["owner"], secrets=(*p["owner"].secrets, *self.secrets))
        values = {
            "now": self.clock.now(),
            "specialties": {a.key: list(a.specialties) for a in ACCOUNTS if a.specialties},
            "sockets": self.sockets,
            "colleague": p["colleague"].id,
            "comments": self.comments,
            "integration": self.integration,
        }
        world = World(self.base_url, dict(self.people), {}, {}, values)
        world.targets = _targets(world, self.ids)
        world.fresh = _fresh(world, self.ids, sessions)
        return world

    async def consultations(self, recordings: Path) -> None:
        """The owner's ended consultations, then (with what waits on the ended one) the
        active one, then the offers: each doctor's tickets go to them alone."""
        ended = await self.ended()
        await asyncio.gather(self.after(ended, recordings), self.active())
        await self.offers()

    async def ended(self) -> int:
        """The owner's two ended consultations with the past doctor, and their outcomes."""
        past_ws = await self.socket("past")
        await _online(past_ws, INTERNAL)
        # The first one's outcome is what the past doctor's cancellations use up.
        first = await self.consult("owner", past_ws, INTERNAL)
        first_out = await self.issue(
            "past",
            first,
            _outcome(
                prescriptions=[_long_term(ASPIRIN, 60), _long_term(INSULIN, 5), _ANTIBIOTIC],
                referrals=[_referral("specialist_consultation", CARDIOLOGY)],
                sick_leave=_sick_leave(self.today),
            ),
        )
        ended = await self.consult("owner", past_ws, INTERNAL)
        self.chat = self.secret("chat")
        await _say(self.owner_ws, ended, self.chat)
        ended_out = await self.issue(
            "past",
            ended,
            _outcome(
                recommendation=self.secret("recommendation"),
                prescriptions=[_long_term(ASPIRIN, 60), _long_term(INSULIN, 5)],
                referrals=[_referral("rehabilitation", REHAB)],
                sick_leave=_sick_leave(self.today),
            ),
        )
        await past_ws.emit("presence:offline")
        aspirin, insulin = ended_out["packages"][0]["prescriptions"]
        first_rx = first_out["packages"][0]["prescriptions"]
        self.ids.update(
            {
                "ended": ended,
                "package": ended_out["packages"][0]["id"],
                "prescription": aspirin["id"],
                "referral": ended_out["referrals"][0]["id"],
                "sick-leave": ended_out["sick_leave"]["id"],
                "prescription:cancel": first_rx[2]["id"],
                "referral:cancel": first_out["referrals"][0]["id"],
                "sick-leave:cancel": first_out["sick_leave"]["id"],
                # Long-term prescriptions, each for a renewal request (after()).
                "rx:renewal": aspirin["id"],
                "rx:renewal:approve": insulin["id"],
                "rx:renewal:decline": first_rx[0]["id"],
                "rx:renewal:reassign": first_rx[1]["id"],
            }
        )
        return ended

    async def after(self, ended: int, recordings: Path) -> None:
        """What waits for the past doctor (two questions, four renewal requests), a rating of
        the ended consultation, its recording."""
        owner = self.client("owner")
        question = self.secret("question")
        for name in ("follow-up", "follow-up:answer"):
            body = {"question": question, "client_id": str(uuid.uuid4())}
            path = f"/api/consultations/{ended}/follow-ups"
            self.ids[name] = (await owner.call("POST", path, body, expect=201))["id"]
        note = self.secret("renewal note")
        for name in ("renewal", "renewal:approve", "renewal:decline", "renewal:reassign"):
            path = f"/api/prescriptions/{self.ids['rx:' + name]}/renewal"
            self.ids[name] = (await owner.call("POST", path, {"note": note}, expect=201))["id"]
        self.comments[ended] = self.secret("rating comment")
        comment = {"score": 2, "comment": self.comments[ended]}
        await owner.call("PUT", f"/api/consultations/{ended}/rating", comment, expect=201)
        self.ids["recording"] = await self.recording(ended, recordings)

    async def active(self) -> None:
        """The owner's active consultation, offered first to a doctor who declines it; the
        consulting doctor's other consultations (another patient's, and fresh ones for cells
        that end or change theirs); the helper's, for cells of fresh owners."""
        owner = self.client("owner")
        self.offered_ws = await self.online("offered", CARDIOLOGY)
        active = await self.join("owner", CARDIOLOGY)
        assert (await self.offered_ws.next("queue:offer"))["consultation"]["id"] == active
        await self.client("offered").call("POST", f"/api/consultations/{active}/decline", {})
        await self.offered_ws.emit("presence:offline")
        doctor_ws = await self.online("doctor", CARDIOLOGY)
        assert (await doctor_ws.next("queue:offer"))["consultation"]["id"] == active
        assert (await doctor_ws.emit("queue:accept", {"consultation_id": active}))["ok"]
        self.ids["active"] = active
        await _say(self.owner_ws, active, self.chat + " (again)")

        async def consulting() -> None:
            for key in (
                "other",
                "end-doctor",
                "outcome-doctor",
                "form-doctor",
                "answer-doctor",
                "hangup-doctor",
            ):
                self.ids[key] = await self.consult(key, doctor_ws, CARDIOLOGY)
            await doctor_ws.emit("presence:offline")
            # A call to hang up (voice, at once), and a switch to video to answer.
            await _form(doctor_ws, self.ids["hangup-doctor"], "voice")
            await _form(await self.socket("answer-doctor"), self.ids["answer-doctor"], "video")

        async def helping() -> None:
            helper_ws = await self.online("helper", PSYCHIATRY)
            for key in ("end-owner", "form-owner", "answer-owner", "hangup-owner"):
                self.ids[key] = await self.consult(key, helper_ws, PSYCHIATRY)
            await helper_ws.emit("presence:offline")
            await _form(helper_ws, self.ids["hangup-owner"], "voice")
            await _form(helper_ws, self.ids["answer-owner"], "video")

        async def documents() -> None:
            name = "olga-secret-scan.png"
            self.secrets.append(name.removesuffix(".png"))
            self.ids["document"] = await self.upload("owner", self.secret("document"), name)
            self.ids["document:delete"] = await self.upload("owner", "To delete.", "old.png")
            body = {"document_id": self.ids["document"], "client_id": "share-1"}
            await owner.call("POST", f"/api/consultations/{active}/documents", body, expect=201)

        await asyncio.gather(consulting(), helping(), documents())

    async def offers(self) -> None:
        """Tickets offered to the doctor only offered, not answered: one shared, four that a
        cell answers."""
        await _online(self.offered_ws, CARDIOLOGY)
        for key in ("offer", "accept", "decline", "queue-accept", "queue-decline"):
            self.ids[f"offer:{key}"] = cid = await self.join(key, CARDIOLOGY)
            assert (await self.offered_ws.next("queue:offer"))["consultation"]["id"] == cid

    async def tickets(self) -> None:
        """Waiting tickets (nobody serves dermatology): one shared, two a scheduler moves or
        drops."""
        for key in ("queued", "move", "drop"):
            self.ids[f"ticket:{key}"] = await self.join(key, DERMATOLOGY)

    async def hours(self) -> None:
        """The consulting doctor's weekly hours (Sunday evenings): one kept, one a cell
        removes."""
        path = f"/api/doctors/{self.people['doctor'].id}/schedule"
        for i, name in enumerate(("hours", "hours:remove")):
            added = await self.client("scheduler").call("POST", path, _hours(6, 19 + i), expect=201)
            self.ids[name] = added["hours"]["id"]

    async def online(self, key: str, specialty: str) -> SocketClient:
        """A doctor's console, online for one specialty (chats, up to ten at once)."""
        ws = await self.socket(key)
        await _online(ws, specialty)
        return ws

    async def bookings(self) -> None:
        """The owner's visits with the consulting doctor (one to come, one a cell cancels, one
        over and rated), and free slots of the colleague's for the booking cells."""
        p, owner = self.people, self.client("owner")
        # Seven seconds past the minute: never the start of a slot of weekly hours.
        soon = self.clock.now().replace(second=7, microsecond=0) + timedelta(days=3)
        for i, name in enumerate(("booking", "booking:cancel")):
            slot = await self.slot(p["doctor"].id, CARDIOLOGY, soon + timedelta(hours=i))
            booked = await owner.call("POST", "/api/bookings", {"slot_id": slot}, expect=201)
            self.ids[name] = booked["id"]
        self.ids["visit"] = visit = await self.visit_over(p["owner"].id, p["doctor"].id)
        self.comments[visit] = self.secret("visit rating comment")
        comment = {"score": 3, "comment": self.comments[visit]}
        await owner.call("PUT", f"/api/bookings/{visit}/rating", comment, expect=201)
        for i, name in enumerate(("slot", "slot:basic", "slot:verified")):
            start = soon + timedelta(days=1, hours=i)
            self.ids[name] = await self.slot(p["colleague"].id, INTERNAL, start)

    async def identity_requests(self) -> None:
        """The owner's pending verification requests: one the schedulers' queue lists, one a
        cell confirms and one a cell rejects."""
        owner = self.people["owner"]
        for name in ("identity", "identity:confirm", "identity:reject"):
            self.ids[name] = await self.insert(
                t.identity_requests,
                user_id=owner.id,
                pesel=owner.pesel,
                status="pending",
                requested_at=self.clock.now(),
            )

    async def result(self) -> None:
        """The owner's blood count with its PDF, delivered as a laboratory does: posted with
        its integration credential (the credential stays for the walk's own check)."""
        self.integration = await self.insert_credential("matrix-lab")
        when = (self.clock.now() - timedelta(days=1)).isoformat()
        bundle = blood_count(pesel=self.people["owner"].pesel, report_id="MATRIX-1", when=when)
        report = {"contentType": "application/pdf", "data": _pdf(self.secret("report PDF"))}
        conclusion = self.secret("conclusion")
        bundle = changed(bundle, 1, conclusion=conclusion, presentedForm=[report])
        headers = {
            "Authorization": f"Bearer {self.integration}",
            "Content-Type": "application/fhir+json",
        }
        url = self.base_url + "/api/integration/fhir"
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=json.dumps(bundle), headers=headers) as response:
                answer = await response.json(content_type=None)
                assert response.status == 201, answer
        pushed = await self.owner_ws.next("result:received")
        self.ids["result"] = pushed["result"]["id"]
        assert pushed["result"]["conclusion"] == conclusion, pushed

    async def insert_credential(self, name: str) -> str:
        """A sending system's credential, as ``consult add-integration`` makes it: its token."""
        token = secrets.token_urlsafe(32)
        await self.insert(
            t.integrations, name=name, token_hash=token_hash(token), created_at=self.clock.now()
        )
        return token

    # --- steps ------------------------------------------------------------------------------

    def secret(self, what: str) -> str:
        """A string of the owner's data that only those with a right to it may see."""
        text = f"Olga's {what} {secrets.token_hex(4)}"
        self.secrets.append(text)
        return text

    async def join(self, patient: str, specialty: str) -> int:
        """The patient joins the specialty's queue (a chat): the consultation's id."""
        body = {"specialty": specialty, "form": "chat"}
        ticket = await self.client(patient).call("POST", "/api/consultations", body, expect=201)
        return int(ticket["consultation"]["id"])

    async def consult(self, patient: str, doctor_ws: SocketClient, specialty: str) -> int:
        """The patient joins; the doctor, online and free, accepts the offer."""
        cid = await self.join(patient, specialty)
        offer = await doctor_ws.next("queue:offer")
        assert offer["consultation"]["id"] == cid, offer
        ack = await doctor_ws.emit("queue:accept", {"consultation_id": cid})
        assert ack["ok"], ack
        return cid

    async def issue(self, doctor: str, cid: int, body: dict[str, Any]) -> Any:
        """Issue and end."""
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        path = f"/api/consultations/{cid}/outcome"
        return await self.client(doctor).call("POST", path, body, expect=201, headers=headers)

    async def upload(self, key: str, description: str, filename: str) -> int:
        form = aiohttp.FormData()
        form.add_field("description", description)
        form.add_field("file", png(), filename=filename, content_type="image/png")
        out = await self.client(key).call("POST", "/api/documents", data=form, expect=201)
        return int(out["id"])

    async def recording(self, cid: int, folder: Path) -> int:
        """A finished recording of the consultation: its row, and a file in its place."""
        name = f"{cid}-{secrets.token_hex(12)}.webm"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"\x1a\x45\xdf\xa3 a recording")
        now = self.clock.now()
        return await self.insert(
            t.recordings,
            consultation_id=cid,
            stored_name=name,
            status="ready",
            started_at=now - timedelta(minutes=5),
            ended_at=now,
            size=21,
            sha256="0" * 64,
        )

    async def slot(self, doctor_id: int, specialty: str, starts_at: datetime) -> int:
        return await self.insert(
            t.slots,
            doctor_id=doctor_id,
            specialty_code=specialty,
            kind="online",
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=20),
            created_at=self.clock.now(),
        )

    async def visit_over(self, patient_id: int, doctor_id: int) -> int:
        """A booked visit that took place yesterday (slots in the past are not bookable)."""
        start = self.clock.now().replace(microsecond=0) - timedelta(days=1)
        slot = await self.slot(doctor_id, CARDIOLOGY, start)
        return await self.insert(
            t.bookings,
            slot_id=slot,
            patient_id=patient_id,
            status="active",
            created_at=start - timedelta(days=2),
        )

    async def insert(self, table: sa.Table, **values: Any) -> int:
        """One row straight into the database: its id."""
        async with self.engine.begin() as conn:
            added = await conn.execute(table.insert().values(**values).returning(table.c.id))
            return int(added.scalar_one())

    async def fresh_sessions(self) -> dict[str, Person]:
        """A second session of each column's person, for a logout to end."""
        now = self.clock.now()
        made = {}
        async with self.engine.begin() as conn:
            for column in COLUMN_KEYS[1:]:
                made[column] = self.people[column].with_token(secrets.token_urlsafe(24))
            for person in made.values():
                await _session(conn, person.id, person.token, now)
        return made


def _targets(world: World, ids: dict[str, int]) -> dict[str, Target]:
    """Each target of cells.TARGETS: its path parameters, and whose data it is."""
    p = world.people
    owner = p["owner"]

    def owned(**params: int) -> Target:
        return Target(params, owner)

    return {
        "none": Target({}),
        "own": owned(),
        "active": owned(consultation_id=ids["active"], patient_id=owner.id),
        "ended": owned(consultation_id=ids["ended"], patient_id=owner.id),
        "patient": owned(consultation_id=ids["ended"], patient_id=owner.id),
        "booking": owned(booking_id=ids["booking"]),
        "visit": owned(booking_id=ids["visit"]),
        "document": owned(document_id=ids["document"]),
        "recording": owned(consultation_id=ids["ended"], recording_id=ids["recording"]),
        "package": owned(package_id=ids["package"]),
        "prescription": owned(prescription_id=ids["prescription"], document_id=ids["prescription"]),
        "referral": owned(referral_id=ids["referral"], document_id=ids["referral"]),
        "sick-leave": owned(sick_leave_id=ids["sick-leave"], document_id=ids["sick-leave"]),
        "renewal": owned(renewal_id=ids["renewal"]),
        "identity": owned(request_id=ids["identity"]),
        "follow-up": owned(follow_up_id=ids["follow-up"]),
        "result": owned(result_id=ids["result"]),
        "ticket": Target({"consultation_id": ids["ticket:queued"]}, p["queued"]),
        "offer": Target({"consultation_id": ids["offer:offer"]}, p["offer"]),
        "hours": Target({"doctor_id": p["doctor"].id, "schedule_id": ids["hours"]}),
        "doctor": Target({"doctor_id": p["online"].id}),
        "slot": Target({"slot_id": ids["slot"]}),
        "product": Target({"product_id": ASPIRIN}),
    }


def _fresh(
    world: World, ids: dict[str, int], sessions: dict[str, Person]
) -> dict[tuple[str, str], Target]:
    """The targets of the cells that use theirs up (row name, column): each its own object
    of the same kind, with the same ties (a fresh owner asks in the owner's column)."""
    p, owner = world.people, world.people["owner"]

    def theirs(key: str, column: str | None, **params: int) -> Target:
        """A fresh patient's object (asking in ``column`` when given)."""
        return Target(params, p[key], {column: p[key]} if column else {})

    fresh: dict[tuple[str, str], Target] = {
        ("POST /api/consultations", "verified"): theirs("start", "verified"),
        ("POST /api/bookings", "basic"): theirs("book-basic", "basic", slot_id=ids["slot:basic"]),
        ("POST /api/bookings", "verified"): theirs(
            "book-verified", "verified", slot_id=ids["slot:verified"]
        ),
        ("POST /api/scheduler/doctors/{doctor_id}/away", "scheduler"): Target(
            {"doctor_id": p["away"].id}
        ),
        ("DELETE /api/doctors/{doctor_id}/schedule/{schedule_id}", "scheduler"): Target(
            {"doctor_id": p["doctor"].id, "schedule_id": ids["hours:remove"]}
        ),
    }
    # A second one of the owner's (world.ids names it).
    for row, column, param, key in (
        ("POST /api/bookings/{booking_id}/cancel", "owner", "booking_id", "booking:cancel"),
        ("DELETE /api/documents/{document_id}", "owner", "document_id", "document:delete"),
        ("POST /api/follow-ups/{follow_up_id}/answer", "past", "follow_up_id", "follow-up:answer"),
        (
            "POST /api/prescriptions/{document_id}/cancel",
            "past",
            "document_id",
            "prescription:cancel",
        ),
        ("POST /api/referrals/{document_id}/cancel", "past", "document_id", "referral:cancel"),
        ("POST /api/sick-leaves/{document_id}/cancel", "past", "document_id", "sick-leave:cancel"),
        ("POST /api/renewals/{renewal_id}/approve", "past", "renewal_id", "renewal:approve"),
        ("POST /api/renewals/{renewal_id}/decline", "past", "renewal_id", "renewal:decline"),
        ("POST /api/renewals/{renewal_id}/reassign", "scheduler", "renewal_id", "renewal:reassign"),
        (
            "POST /api/identity/requests/{request_id}/confirm",
            "scheduler",
            "request_id",
            "identity:confirm",
        ),
        (
            "POST /api/identity/requests/{request_id}/reject",
            "scheduler",
            "request_id",
            "identity:reject",
        ),
    ):
        fresh[(row, column)] = Target({param: ids[key]}, owner)
    # A fresh patient's consultation, ticket or offer, by the key of world.ACCOUNTS.
    for row, column, key in (
        ("POST /api/consultations/{consultation_id}/end", "owner", "end-owner"),
        ("POST /api/consultations/{consultation_id}/end", "doctor", "end-doctor"),
        ("POST /api/consultations/{consultation_id}/outcome", "doctor", "outcome-doctor"),
        ("call:form", "owner", "form-owner"),
        ("call:form", "doctor", "form-doctor"),
        ("call:form-answer", "owner", "answer-owner"),
        ("call:form-answer", "doctor", "answer-doctor"),
        ("call:hangup", "owner", "hangup-owner"),
        ("call:hangup", "doctor", "hangup-doctor"),
        ("POST /api/scheduler/tickets/{consultation_id}/move", "scheduler", "ticket:move"),
        ("POST /api/scheduler/tickets/{consultation_id}/drop", "scheduler", "ticket:drop"),
        ("POST /api/consultations/{consultation_id}/accept", "offered", "offer:accept"),
        ("POST /api/consultations/{consultation_id}/decline", "offered", "offer:decline"),
        ("queue:accept", "offered", "offer:queue-accept"),
        ("queue:decline", "offered", "offer:queue-decline"),
    ):
        patient = key.rpartition(":")[2]
        asks = "owner" if column == "owner" else None
        fresh[(row, column)] = theirs(patient, asks, consultation_id=ids[key])
    for column, person in sessions.items():
        fresh[("POST /api/logout", column)] = Target({}, actors={column: person})
    # Logging out everywhere ends every session of whoever asks: a person of its own.
    for column in ("basic", "verified", "doctor", "past", "unrelated", "offered", "scheduler"):
        fresh[("POST /api/me/sessions/logout-all", column)] = Target(
            {}, None, {column: p[f"logout-all-{column}"]}
        )
    return fresh


def _pdf(title: str) -> str:
    """A one-page PDF whose title is ``title`` (uncompressed: the walk finds it in the bytes of
    an answer), in base64 as a bundle carries it."""
    document = pikepdf.new()
    document.add_blank_page()
    document.docinfo["/Title"] = title
    out = io.BytesIO()
    document.save(out, compress_streams=False, static_id=True)
    return base64.b64encode(out.getvalue()).decode()


def _hours(weekday: int, hour: int) -> dict[str, Any]:
    return {
        "specialty": CARDIOLOGY,
        "kind": "online",
        "weekday": weekday,
        "start_minute": hour * 60,
        "end_minute": hour * 60 + 60,
        "timezone": "UTC",
    }


async def _online(ws: SocketClient, specialty: str) -> None:
    ack = await ws.emit(
        "presence:online", {"specialties": [specialty], "forms": ["chat"], "capacity": 10}
    )
    assert ack["ok"], ack


async def _form(ws: SocketClient, cid: int, form: str) -> None:
    ack = await ws.emit("call:form", {"consultation_id": cid, "form": form})
    assert ack["ok"], ack


async def _say(ws: SocketClient, cid: int, text: str) -> None:
    ack = await ws.emit(
        "chat:send", {"consultation_id": cid, "client_id": str(uuid.uuid4()), "body": text}
    )
    assert ack["ok"], ack
