"""The baseline for ``bench/queue_bench.py``: a bare python-socketio + aiohttp queue server.

It speaks the same protocol subset as consult's walk-in queue and makes the same Socket.IO
emits, with everything held in memory: no database, no authentication (a token is
``"<role>:<user id>"``), no estimate model, no audit. What it keeps from consult on purpose:

- the same interpreter tuning as ``consult serve`` (GIL switch interval, GC thresholds and
  ``gc.freeze()``; ``--default-runtime`` for CPython's defaults);
- the same ``socketio.AsyncServer`` settings (``consult/signaling/server.py``) and a room
  ``user:<id>`` per user, entered on connect; every emit goes to those rooms;
- ``POST /api/consultations`` answers a ticket of the same shape and size (a consultation,
  place, waiting, a range, the doctors' state, the next step, up to five slots), and offers
  the ticket at once when a doctor is free (``queue:offer`` to the doctor's room);
- ``queue:accept`` (acked ``{"ok": true, "data": consultation}``) emits
  ``consultation:matched`` to two rooms, the patient's and the doctor's;
- ``POST /api/consultations/{id}/end``: an active consultation ends
  (``consultation:ended`` to both rooms) and the doctor is offered the next waiting ticket; a
  waiting ticket is cancelled (the patient leaves);
- every queue change is coalesced and paced as consult's ``QueueFanout`` does (the first change
  schedules one push ``--delay`` seconds later; changes meanwhile ride along; while a push is
  in flight, one more follows it) and the push emits a ticket-sized ``queue:ticket`` to each
  queued patient's room, one emit per patient. A push counts as in flight until its packets
  have left the server's per-socket queues (``--unpaced``: until they are queued): without
  that, python-socketio queues every ticket for every socket, stale or not, and at 2,000
  patients and 50 moves a second the backlog grows by tens of seconds.

``GET /bench/state`` shows the queue as the server holds it (the bench logs it when the patients'
tickets disagree with its own count).

Run: ``python bench/bare_queue_server.py --port 8765 [--delay 0.05]``. Only for benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import bare_loop_lag  # bench/bare_loop_lag.py (a script's folder is on sys.path)
import socketio
from aiohttp import web

from consult import runtime

SPECIALTY = {"code": "internal-medicine", "name": "Internal medicine", "covered": None}
NEXT_WAIT = "You will be connected when a doctor is free; keep this page open."
NEXT_NONE = "No doctor of this specialty is online now; you stay in line until one comes."
NEXT_OFFER = "A doctor is being asked to take you now; the consultation opens when they accept."
LONG_WAIT_MINUTES = 30
OFFER_SECONDS = 20


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _slots() -> list[dict[str, Any]]:
    """Five bookable slots, shaped like consult's ``SlotOut`` (the join answer's alternatives)."""
    start = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    out = []
    for i in range(5):
        begins = start + timedelta(minutes=20 * i)
        out.append(
            {
                "id": i + 1,
                "specialty": {**SPECIALTY, "covered": True},
                "doctor": {"id": 4, "name": "Dr Gregory House"},
                "kind": "stationary",
                "starts_at": begins.isoformat().replace("+00:00", "Z"),
                "ends_at": (begins + timedelta(minutes=20)).isoformat().replace("+00:00", "Z"),
                "covered": True,
            }
        )
    return out


SLOTS = _slots()


class BareQueue:
    """One specialty-and-form queue in memory, with consult's emits."""

    def __init__(self, sio: socketio.AsyncServer, delay: float, paced: bool = True) -> None:
        self.sio = sio
        self.delay = delay
        self.ids = itertools.count(1)
        self.consultations: dict[int, dict[str, Any]] = {}
        self.waiting: list[int] = []  # consultation ids in queue order
        self.offered: list[int] = []
        self.doctors: dict[int, int] = {}  # online doctor id -> free capacity
        self.paced = paced
        self._scheduled = False
        self._running = False
        self._dirty = False
        self._tasks: set[asyncio.Task[None]] = set()

    # --- views -----------------------------------------------------------------------------

    def doctors_state(self) -> dict[str, int]:
        busy = sum(1 for free in self.doctors.values() if free <= 0)
        return {"online": len(self.doctors), "busy": busy, "away": 0}

    def eta(self, place: int) -> dict[str, Any]:
        if place == 0:
            return {"low_minutes": 0, "high_minutes": 0, "basis": "a doctor is being asked"}
        if not self.doctors:
            return {"low_minutes": None, "high_minutes": None, "basis": "no doctor online now"}
        low = (place - 1) * 12 // len(self.doctors)
        high = low + 15 + place * 20 // len(self.doctors)
        return {"low_minutes": low, "high_minutes": high, "basis": f"{low}-{high} min"}

    def place_of(self, cid: int) -> int:
        if self.consultations[cid]["status"] == "offered":
            return 0
        return self.waiting.index(cid) + 1

    def update(self, cid: int, place: int) -> dict[str, Any]:
        c = self.consultations[cid]
        return {
            "consultation_id": cid,
            "status": c["status"],
            "place": place,
            "waiting": len(self.waiting),
            "eta": self.eta(place),
            "doctors": self.doctors_state(),
        }

    def ticket(self, cid: int) -> dict[str, Any]:
        place = self.place_of(cid)
        update = self.update(cid, place)
        high = update["eta"]["high_minutes"]
        long_wait = place > 0 and (high is None or high > LONG_WAIT_MINUTES)
        return {
            "consultation": self.consultations[cid],
            "place": place,
            "waiting": update["waiting"],
            "eta": update["eta"],
            "doctors": update["doctors"],
            "next": NEXT_OFFER if place == 0 else (NEXT_WAIT if self.doctors else NEXT_NONE),
            "alternatives": SLOTS if long_wait else [],
        }

    # --- changes ---------------------------------------------------------------------------

    def join(self, patient_id: int) -> int:
        cid = next(self.ids)
        self.consultations[cid] = {
            "id": cid,
            "status": "waiting",
            "specialty": SPECIALTY,
            "form": "chat",
            "patient": {"id": patient_id, "name": f"patient {patient_id}"},
            "doctor": None,
            "created_at": _now(),
            "started_at": None,
            "ended_at": None,
            "language": None,
            "offer_expires_at": None,
        }
        self.waiting.append(cid)
        self.changed()
        return cid

    async def match(self) -> None:
        """Offer waiting tickets to free doctors (the most free capacity, then the lowest id)."""
        while self.waiting:
            free = [(-n, d) for d, n in self.doctors.items() if n > 0]
            if not free:
                return
            _, doctor_id = min(free)
            await self.offer(self.waiting[0], doctor_id)

    async def offer(self, cid: int, doctor_id: int) -> None:
        self.waiting.remove(cid)
        self.offered.append(cid)
        self.doctors[doctor_id] -= 1
        expires = datetime.now(UTC) + timedelta(seconds=OFFER_SECONDS)
        c = self.consultations[cid]
        c.update(
            status="offered",
            doctor={"id": doctor_id, "name": f"doctor {doctor_id}"},
            offer_expires_at=expires.isoformat().replace("+00:00", "Z"),
        )
        await self.sio.emit(
            "queue:offer",
            {"consultation": c, "expires_at": expires.isoformat()},
            to=f"user:{doctor_id}",
        )
        self.changed()

    async def accept(self, doctor_id: int, cid: int) -> dict[str, Any]:
        c = self.consultations.get(cid)
        if c is None or c["status"] != "offered" or c["doctor"]["id"] != doctor_id:
            return {"ok": False, "error": {"code": "no_such_offer", "message": "not offered"}}
        self.offered.remove(cid)
        c.update(status="active", started_at=_now(), offer_expires_at=None)
        rooms = [f"user:{c['patient']['id']}", f"user:{doctor_id}"]
        await self.sio.emit("consultation:matched", {"consultation": c}, to=rooms)
        self.changed()
        return {"ok": True, "data": c}

    async def end(self, user_id: int, cid: int) -> dict[str, Any] | None:
        c = self.consultations.get(cid)
        if c is None or c["status"] not in ("waiting", "offered", "active"):
            return None
        doctor = c["doctor"]["id"] if c["doctor"] else None
        if c["status"] == "active":
            c.update(status="ended", ended_at=_now())
        else:  # the patient leaves the queue
            (self.waiting if c["status"] == "waiting" else self.offered).remove(cid)
            c.update(status="cancelled", ended_at=_now(), offer_expires_at=None)
            self.changed()
        rooms = [f"user:{c['patient']['id']}"] + ([f"user:{doctor}"] if doctor else [])
        await self.sio.emit("consultation:ended", {"consultation": c}, to=rooms)
        if doctor is not None and doctor in self.doctors:
            self.doctors[doctor] += 1
            await self.match()
        return c

    # --- live places -----------------------------------------------------------------------

    def changed(self) -> None:
        """Coalesced and paced as consult's ``QueueFanout``: the first change schedules a push
        ``delay`` later; changes meanwhile ride along; while a push is in flight, changes mark
        the queue dirty and one more push follows it."""
        if self._scheduled:
            return
        if self._running:
            self._dirty = True
            return
        self._schedule()

    def _schedule(self) -> None:
        self._scheduled = True
        task = asyncio.create_task(self._push())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _push(self) -> None:
        await asyncio.sleep(self.delay)
        self._scheduled = False
        self._running = True
        try:
            queued = [(cid, 0) for cid in self.offered]
            queued += [(cid, i + 1) for i, cid in enumerate(self.waiting)]
            updates = [
                (self.consultations[cid]["patient"]["id"], self.update(cid, place))
                for cid, place in queued
            ]
            for patient_id, update in updates:
                await self.sio.emit("queue:ticket", update, to=f"user:{patient_id}")
            if self.paced:
                await self._delivered([patient_id for patient_id, _ in updates])
        finally:
            self._running = False
            if self._dirty:
                self._dirty = False
                self._schedule()

    async def _delivered(self, patient_ids: list[int], limit: float = 10.0) -> None:
        """In flight until the push has left the server: every socket's outgoing queue is empty
        (the writer task took it), or ``limit`` seconds."""
        sockets = []
        for patient_id in patient_ids:
            for _, eio_sid in self.sio.manager.get_participants("/", f"user:{patient_id}"):
                socket = self.sio.eio.sockets.get(eio_sid)
                if socket is not None:
                    sockets.append(socket)
        deadline = asyncio.get_running_loop().time() + limit
        while asyncio.get_running_loop().time() < deadline:
            sockets = [s for s in sockets if s.queue.qsize() > 0]
            if not sockets:
                return
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _identity(token: Any) -> tuple[str, int] | None:
    try:
        role, uid = str(token).split(":", 1)
        return role, int(uid)
    except ValueError:
        return None


def create_app(delay: float, paced: bool = True) -> web.Application:
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins=None,
        max_http_buffer_size=1_000_000,
        ping_interval=25,
        ping_timeout=20,
        logger=False,
        engineio_logger=False,
    )
    queue = BareQueue(sio, delay, paced)
    app = web.Application(client_max_size=1_000_000)
    sio.attach(app)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        who = _identity(auth.get("token") if isinstance(auth, dict) else None)
        if who is None:
            raise socketio.exceptions.ConnectionRefusedError("no token")
        await sio.save_session(sid, {"role": who[0], "user_id": who[1]})
        await sio.enter_room(sid, f"user:{who[1]}")

    @sio.on("presence:online")
    async def presence_online(sid: str, payload: Any) -> dict[str, Any]:
        session = await sio.get_session(sid)
        capacity = int((payload or {}).get("capacity") or 1)
        queue.doctors[session["user_id"]] = capacity
        await queue.match()
        return {"ok": True, "data": {"status": "online", "capacity": capacity}}

    @sio.on("queue:accept")
    async def queue_accept(sid: str, payload: Any) -> dict[str, Any]:
        session = await sio.get_session(sid)
        return await queue.accept(session["user_id"], int(payload["consultation_id"]))

    def user(request: web.Request) -> int:
        who = _identity(request.headers.get("Authorization", "").removeprefix("Bearer "))
        if who is None:
            raise web.HTTPUnauthorized()
        return who[1]

    async def start(request: web.Request) -> web.Response:
        patient_id = user(request)
        await request.json()
        cid = queue.join(patient_id)
        await queue.match()
        return web.json_response(queue.ticket(cid), status=201, dumps=json.dumps)

    async def end(request: web.Request) -> web.Response:
        c = await queue.end(user(request), int(request.match_info["cid"]))
        if c is None:
            return web.json_response({"error": {"code": "consultation_ended"}}, status=409)
        return web.json_response(c)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def state(request: web.Request) -> web.Response:
        """The queue as the server holds it (for checking the benchmark)."""
        statuses: dict[str, int] = {}
        for c in queue.consultations.values():
            statuses[c["status"]] = statuses.get(c["status"], 0) + 1
        return web.json_response(
            {
                "waiting": len(queue.waiting),
                "offered": len(queue.offered),
                "doctors": queue.doctors,
                "statuses": statuses,
            }
        )

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        yield
        await queue.close()

    app.router.add_post("/api/consultations", start)
    app.router.add_post("/api/consultations/{cid}/end", end)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/bench/state", state)
    bare_loop_lag.install(app)  # GET /metrics: the loop lag, as consult reports its own
    app.cleanup_ctx.append(lifetime)
    app.on_shutdown.append(lambda _app: sio.shutdown())
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--delay", type=float, default=0.05, help="fan-out coalescing delay (s)")
    parser.add_argument(
        "--unpaced",
        action="store_true",
        help="a push is done when its emits are queued, not when they have left the server",
    )
    parser.add_argument(
        "--default-runtime",
        action="store_true",
        help="CPython's default GIL switch interval and GC thresholds instead of consult's",
    )
    args = parser.parse_args()
    if not args.default_runtime:  # the same interpreter tuning as `consult serve`
        runtime.tune()
    app = create_app(args.delay, paced=not args.unpaced)
    if not args.default_runtime:
        runtime.started()
    print(f"bare queue server on http://{args.host}:{args.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        web.run_app(
            app,
            host=args.host,
            port=args.port,
            print=None,
        )


if __name__ == "__main__":
    main()
