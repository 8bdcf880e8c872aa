"""Walk-in queue speed against the running server, beside a bare python-socketio server.

One command starts each server in turn as a subprocess, drives it with real Socket.IO clients
(python-socketio ``AsyncClient``, websocket transport) spread over a few client processes, and
reports p50 and p99 of each figure for consult ("ours") and for ``bench/bare_queue_server.py``
("bare": the same emits and room broadcasts from memory, no database, no auth) side by side.

The scenario, the same for both servers:

1. ``connect``: N patients and M doctors (one specialty, internal medicine) open a Socket.IO
   connection each. For consult the users and their sessions are inserted straight into the
   database (``users``, ``doctor_specialties``, ``sessions``), as the integration tests do,
   instead of N argon2 logins.
2. ``online``: the doctors go online (``presence:online``, chat, capacity 1).
3. ``join``: the patients join the queue (``POST /api/consultations``) open-loop, at
   ``--join-rate`` per second in a fixed order. **Join to ticket** = the HTTP answer time. The
   first M are offered to the doctors at once; each doctor accepts an offer as soon as it
   arrives (``queue:accept``), so the queue holds N - M waiting patients behind M busy doctors.
   **Memory per waiting patient** = (server RSS after that - RSS before the first connection)
   / patients queued. A join answered with an error is looked up (``GET /api/queue/ticket``)
   in case it was committed anyway. With ``--prefill`` all but the last ``--sample`` patients
   are queued first, unmeasured (consult: waiting rows inserted into the database; bare: fast
   joins), so the later phases run at full size even when the joins alone cannot fill it.
4. ``leave``: single patients from the back leave (``POST /api/consultations/{id}/end``)
   at ``--leave-rate`` per second: isolated queue moves.
5. ``match``: doctors free up at ``--free-rate`` (50) per second, round robin: each ends its
   consultation (``POST .../end``); the server offers it the next waiting patient
   (``queue:offer``); the doctor accepts at once; ``consultation:matched`` goes to both sides.
   **Doctor free to both sides told of the match** = from sending the end request to the later
   of the two ``consultation:matched`` arrivals (the doctor's and the patient's) for the patient
   offered next; it includes the doctor client's accept round trip. The offer leg alone (end
   sent to ``queue:offer`` arrived) is reported beside it.

**One queue move to every waiting patient holding their new place**, in phases 4 and 5: the
k-th move of a phase (a leave, or an end that makes an offer), counted in the order the
actions were sent, leaves ``W - k`` patients waiting (``W`` at the start of the phase). It is
complete when every patient still waiting at the end of the phase holds a ``queue:ticket``
with ``waiting <= W - k``; the figure is that moment minus the moment the k-th action was sent.
(The k-th commit can only follow the k-th request, so this never runs ahead of the server.)
Pushes are coalesced, in consult as in the bare server, by the same delay (``--delay``), so one
push carries several moves; a patient who holds a later place holds the k-th one too. After
each phase every waiting patient's last ticket is checked: their places must be 1..W exactly.
Where the queue is not where the bench's own count expects it (a join refused after it was
committed, say), the level the patients hold is taken, and the mismatch is logged.

Every wait is bounded by a patience (60 s per answer; 15 s with ``--quick``): a server that falls
behind is recorded as such, not waited for. If fewer than 95 % of the patients got into the
queue, that server's run stops after the join phase, with what it measured so far.

Targets (docs/performance.md): match and fan-out p99 (both phases) at most 2x the bare
server's; at most 64 KB of server memory per waiting patient; on SQLite, the server's
event-loop lag p99 under 5 ms in the join, leave and match phases (read from its /metrics,
``bench/loop_lag.py``; the connect storm's is reported, not targeted). Join to ticket has no
target.

Client processes: the patients are spread over ``--workers`` processes (one more holds the
doctors). Each measures its event-loop lag (a 20 ms ticker) and its CPU time per phase; the
table shows them, so a client that could not keep up (saturation: timestamps taken late) is
visible. Server and clients share the machine's cores.

Usage: python bench/queue_bench.py [--quick] [--prefill] [--backend sqlite|postgresql]
                                   [--only ours|bare] [--profile DIR [--py-spy PATH]]
The last line printed is one JSON object with the figures, the targets and "targets_met".
The server runs this checkout's consult (``CONSULT_BENCH_SERVER_CODE=DIR``: another checkout's).
Every request goes to 127.0.0.1; every wait is bounded; servers, client processes and the
temporary database are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import multiprocessing as mp
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import loop_lag  # bench/loop_lag.py (a script's folder is on sys.path)

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SPECIALTY = "internal-medicine"
HOST = "127.0.0.1"
TARGET_RATIO = 2.0
TARGET_KB = 64.0
DEFAULT_DELAY = 0.05  # consult's QueueFanout delay (consult/app.py)
COMMAND_TIMEOUT = 600.0

# =============================================================================================
# Client processes
# =============================================================================================


def _now() -> float:
    return time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on this machine


@dataclass
class Patient:
    index: int  # global join order
    uid: int
    token: str
    sio: Any = None
    cid: int | None = None
    state: str = "new"  # waiting | offered | active | ended | left | failed
    tickets: list[tuple[float, int, int, str]] = field(default_factory=list)
    matched_at: float | None = None
    join: tuple[float, float, int] | None = None  # (sent, answered, HTTP status)


@dataclass
class Doctor:
    uid: int
    token: str
    sio: Any = None
    cid: int | None = None
    state: str = "idle"  # idle | ending | offered | active
    pending_t0: float | None = None
    records: list[dict[str, Any]] = field(default_factory=list)


class Worker:
    """One client process: a share of the patients, or all the doctors."""

    def __init__(self, conn: Any, spec: dict[str, Any]) -> None:
        self.conn = conn
        self.url: str = spec["url"]
        self.role: str = spec["role"]
        self.patience: float = spec["patience"]  # the longest wait for any one answer
        self.patients = [Patient(i, uid, tok) for i, uid, tok in spec.get("patients", [])]
        self.doctors = [Doctor(uid, tok) for uid, tok in spec.get("doctors", [])]
        self.by_cid: dict[int, Patient] = {}
        self.doctor_by_cid: dict[int, Doctor] = {}
        self.phase = "setup"
        self.lags: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}  # phase -> [cpu seconds, wall seconds]
        self._phase_mark = (time.process_time(), _now())
        self.errors: list[str] = []
        self.tasks: set[asyncio.Task[Any]] = set()

    # --- plumbing ------------------------------------------------------------------------

    async def run(self) -> None:
        import aiohttp

        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=512),
            timeout=aiohttp.ClientTimeout(total=self.patience),
        )
        monitor = asyncio.create_task(self._lag_monitor())
        loop = asyncio.get_running_loop()
        try:
            while True:
                cmd, args = await loop.run_in_executor(None, self.conn.recv)
                if cmd == "close":
                    await self.close()
                    self.conn.send({"ok": True})
                    return
                try:
                    reply = await getattr(self, "cmd_" + cmd)(**args)
                except Exception as exc:  # reported to the coordinator, which stops the run
                    reply = {"error": f"{type(exc).__name__}: {exc}"}
                self.conn.send(reply)
        finally:
            monitor.cancel()
            await self.http.close()

    async def _lag_monitor(self) -> None:
        tick = 0.02
        while True:
            start = _now()
            await asyncio.sleep(tick)
            self.lags.setdefault(self.phase, []).append(max(0.0, _now() - start - tick))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def cmd_phase(self, name: str) -> dict[str, Any]:
        cpu, wall = time.process_time(), _now()
        spent = self.cpu.setdefault(self.phase, [0.0, 0.0])
        spent[0] += cpu - self._phase_mark[0]
        spent[1] += wall - self._phase_mark[1]
        self._phase_mark = (cpu, wall)
        self.phase = name
        return {"ok": True}

    async def cmd_stats(self) -> dict[str, Any]:
        await self.cmd_phase(self.phase)
        out = {}
        for phase, (cpu, wall) in self.cpu.items():
            lags = sorted(self.lags.get(phase, [0.0]))
            out[phase] = {
                "cpu_s": cpu,
                "wall_s": wall,
                "lag_p99_ms": 1000 * pct(lags, 99),
                "lag_max_ms": 1000 * lags[-1],
            }
        return {"phases": out, "errors": self.errors[:20], "error_count": len(self.errors)}

    # --- connecting --------------------------------------------------------------------------

    async def cmd_connect(self, concurrency: int = 20) -> dict[str, Any]:
        import socketio

        gate = asyncio.Semaphore(concurrency)
        times: list[float] = []
        failed = 0

        async def one(client: Patient | Doctor, handlers: dict[str, Callable[..., Any]]) -> None:
            nonlocal failed
            sio = socketio.AsyncClient(reconnection=False)
            for event, handler in handlers.items():
                sio.on(event, handler)
            async with gate:
                start = _now()
                try:
                    await sio.connect(
                        self.url,
                        auth={"token": client.token},
                        transports=["websocket"],
                        wait_timeout=20,
                    )
                except Exception as exc:
                    failed += 1
                    self.errors.append(f"connect: {exc}")
                    return
                times.append(_now() - start)
            client.sio = sio

        jobs = [one(p, self._patient_handlers(p)) for p in self.patients]
        jobs += [one(d, self._doctor_handlers(d)) for d in self.doctors]
        await asyncio.gather(*jobs)
        return {"times": times, "failed": failed}

    def _patient_handlers(self, p: Patient) -> dict[str, Callable[..., Any]]:
        async def ticket(data: dict[str, Any]) -> None:
            p.tickets.append((_now(), data["waiting"], data["place"], data["status"]))
            if data["status"] == "offered" and p.state == "waiting":
                p.state = "offered"

        async def matched(data: dict[str, Any]) -> None:
            p.matched_at = _now()
            p.state = "active"

        async def ended(data: dict[str, Any]) -> None:
            if p.state in ("active", "offered", "waiting"):
                p.state = "ended"

        return {
            "queue:ticket": ticket,
            "consultation:matched": matched,
            "consultation:ended": ended,
        }

    def _doctor_handlers(self, d: Doctor) -> dict[str, Callable[..., Any]]:
        async def offer(data: dict[str, Any]) -> None:
            t = _now()
            cid = int(data["consultation"]["id"])
            record = {"doctor": d.uid, "cid": cid, "t_offer": t, "t0": d.pending_t0}
            d.pending_t0 = None
            d.records.append(record)
            d.cid, d.state = cid, "offered"
            self.doctor_by_cid[cid] = d
            self._spawn(self._accept(d, cid, record))

        async def matched(data: dict[str, Any]) -> None:
            cid = int(data["consultation"]["id"])
            if d.cid == cid:
                d.state = "active"
            for record in reversed(d.records):
                if record["cid"] == cid:
                    record["t_matched"] = _now()
                    break

        async def withdrawn(data: dict[str, Any]) -> None:
            self.errors.append(f"offer withdrawn from doctor {d.uid}: {data}")

        return {
            "queue:offer": offer,
            "consultation:matched": matched,
            "queue:offer-withdrawn": withdrawn,
        }

    async def _accept(self, d: Doctor, cid: int, record: dict[str, Any]) -> None:
        try:
            ack = await d.sio.call("queue:accept", {"consultation_id": cid}, timeout=30)
        except Exception as exc:
            self.errors.append(f"accept {cid}: {exc}")
            return
        record["t_ack"] = _now()
        if not ack.get("ok"):
            self.errors.append(f"accept {cid}: {ack}")

    async def cmd_online(self, capacity: int = 1) -> dict[str, Any]:
        body = {"specialties": [SPECIALTY], "forms": ["chat"], "capacity": capacity}
        acks = await asyncio.gather(
            *(d.sio.call("presence:online", body, timeout=30) for d in self.doctors)
        )
        bad = [a for a in acks if not a.get("ok")]
        return {"online": len(acks) - len(bad), "errors": bad[:3]}

    # --- patients' actions -----------------------------------------------------------------

    def _headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def _sleep_until(self, at: float) -> None:
        delay = at - _now()
        if delay > 0:
            await asyncio.sleep(delay)

    async def cmd_join(self, t0: float, rate: float, first: int, last: int) -> dict[str, Any]:
        """Patients ``first <= index < last`` join at ``t0 + (index - first) / rate``, open loop
        (each request is sent on time whatever the answers before it)."""
        body = {"specialty": SPECIALTY, "form": "chat"}

        async def one(p: Patient) -> tuple[int, float, float, int] | None:
            if p.sio is None:
                p.state = "failed"
                return None
            await self._sleep_until(t0 + (p.index - first) / rate)
            sent = _now()
            try:
                async with self.http.post(
                    self.url + "/api/consultations", json=body, headers=self._headers(p.token)
                ) as response:
                    status = response.status
                    answer = await response.json(content_type=None)
            except Exception as exc:
                self.errors.append(f"join {p.index}: {exc!r}")
                p.state = "failed"
                return (p.index, sent, _now(), 0)
            done = _now()
            if status != 201:
                self.errors.append(f"join {p.index}: {status} {str(answer)[:200]}")
                p.state = "failed"
                return (p.index, sent, done, status)
            p.join = (sent, done, status)
            p.cid = int(answer["consultation"]["id"])
            self.by_cid[p.cid] = p
            if p.state == "new":
                p.state = "waiting" if answer["consultation"]["status"] == "waiting" else "offered"
            return (p.index, sent, done, status)

        results = await asyncio.gather(*(one(p) for p in self.patients if first <= p.index < last))
        # A join whose answer failed may still have been committed: ask, as a page would.
        recovered = 0
        for p in self.patients:
            if first <= p.index < last and p.state == "failed" and p.sio is not None:
                try:
                    async with self.http.get(
                        self.url + "/api/queue/ticket", headers=self._headers(p.token)
                    ) as response:
                        if response.status != 200:
                            continue
                        answer = await response.json()
                except Exception as exc:
                    self.errors.append(f"ticket {p.index}: {exc!r}")
                    continue
                p.cid = int(answer["consultation"]["id"])
                self.by_cid[p.cid] = p
                p.state = "waiting" if answer["consultation"]["status"] == "waiting" else "offered"
                recovered += 1
        return {
            "joins": [r for r in results if r is not None],
            "cids": {p.index: p.cid for p in self.patients if p.cid is not None},
            "recovered": recovered,
        }

    async def cmd_adopt(self, cids: dict[str, int]) -> dict[str, Any]:
        """Tickets put in the queue by the coordinator (``--prefill``) become these patients'."""
        adopted = 0
        for p in self.patients:
            cid = cids.get(str(p.index))
            if cid is not None:
                p.cid = cid
                self.by_cid[cid] = p
                if p.state == "new":
                    p.state = "waiting"
                adopted += 1
        return {"adopted": adopted}

    async def cmd_leave(self, moves: dict[str, float]) -> dict[str, Any]:
        mine = {p.index: p for p in self.patients}
        out: list[tuple[int, float, float, int]] = []

        async def one(p: Patient, at: float) -> None:
            await self._sleep_until(at)
            p.state = "left"
            sent = _now()
            try:
                async with self.http.post(
                    f"{self.url}/api/consultations/{p.cid}/end",
                    json={},
                    headers=self._headers(p.token),
                ) as response:
                    await response.read()
                    out.append((p.index, sent, _now(), response.status))
            except Exception as exc:
                self.errors.append(f"leave {p.index}: {exc!r}")

        await asyncio.gather(*(one(mine[int(i)], at) for i, at in moves.items() if int(i) in mine))
        return {"leaves": out}

    async def cmd_settle(self, level: int, timeout: float, quiet: float = 3.0) -> dict[str, Any]:
        """Wait until every waiting patient holds a ticket with ``waiting == level`` (not ``<=``:
        while patients join, the queue grows, and a patient holding an earlier, shorter queue has
        not settled), or until no ticket has come for ``quiet`` seconds (the queue is not where
        the bench expected it: the caller then goes by the level the patients hold), or
        ``timeout``."""
        start = _now()
        while True:
            now = _now()
            waiting = [p for p in self.patients if p.state == "waiting"]
            behind = [p for p in waiting if not p.tickets or p.tickets[-1][1] != level]
            last = max((p.tickets[-1][0] for p in waiting if p.tickets), default=start)
            if not behind or now > start + timeout or now - max(last, start) > quiet:
                held: dict[str, int] = {}
                for p in waiting:
                    key = str(p.tickets[-1][1]) if p.tickets else "none"
                    held[key] = held.get(key, 0) + 1
                return {"unsettled": len(behind), "held": held}
            await asyncio.sleep(0.02)

    async def cmd_places(self) -> dict[str, Any]:
        """Each waiting patient's last ticket: (join index, cid, place, waiting)."""
        return {
            "places": [
                (
                    p.index,
                    p.cid,
                    p.tickets[-1][2] if p.tickets else None,
                    p.tickets[-1][1] if p.tickets else None,
                )
                for p in self.patients
                if p.state == "waiting"
            ]
        }

    async def cmd_levels(self, since: float, levels: list[int]) -> dict[str, Any]:
        """For each level (descending), the latest first arrival of a ticket at or below it
        among the patients still waiting, and how many never got one."""
        latest: list[float | None] = [None] * len(levels)
        missing = [0] * len(levels)
        counted = 0
        for p in self.patients:
            if p.state != "waiting":
                continue
            counted += 1
            arrivals = [(t, w) for t, w, _, _ in p.tickets if t >= since]
            j = 0
            low = math.inf
            for k, level in enumerate(levels):
                while j < len(arrivals) and low > level:
                    low = min(low, arrivals[j][1])
                    j += 1
                if low <= level:
                    t = arrivals[j - 1][0]
                    latest[k] = t if latest[k] is None else max(latest[k], t)
                else:
                    missing[k] += 1
        return {"latest": latest, "missing": missing, "patients": counted}

    async def cmd_matched(self) -> dict[str, Any]:
        return {"matched": {p.cid: p.matched_at for p in self.patients if p.matched_at and p.cid}}

    # --- doctors' actions ------------------------------------------------------------------

    async def cmd_free(self, t0: float, rate: float, count: int) -> dict[str, Any]:
        """End one consultation every 1/rate s, round robin over the doctors who hold one."""
        order = list(self.doctors)
        slips: list[float] = []
        ends: list[dict[str, Any]] = []
        turn = 0

        async def end(d: Doctor, cid: int) -> None:
            sent = _now()
            d.pending_t0 = sent
            item = {"doctor": d.uid, "cid": cid, "t0": sent}
            ends.append(item)
            try:
                async with self.http.post(
                    f"{self.url}/api/consultations/{cid}/end",
                    json={},
                    headers=self._headers(d.token),
                ) as response:
                    await response.read()
                    item["t_answer"], item["status"] = _now(), response.status
            except Exception as exc:
                self.errors.append(f"end {cid}: {exc!r}")

        # A server that falls behind leaves no doctor free to end on time: the ends then slip
        # (reported), and none is sent after the deadline.
        deadline = t0 + count / rate + self.patience
        for j in range(count):
            at = t0 + j / rate
            await self._sleep_until(at)
            chosen = None
            give_up = min(_now() + self.patience, deadline)
            while chosen is None and _now() < give_up:
                for k in range(len(order)):
                    d = order[(turn + k) % len(order)]
                    if d.state == "active" and d.cid is not None:
                        chosen, turn = d, (turn + k + 1) % len(order)
                        break
                else:
                    await asyncio.sleep(0.001)
            if chosen is None:
                self.errors.append(f"free-ups stopped after {j} of {count}: no doctor to end")
                break
            slips.append(_now() - at)
            cid, chosen.state, chosen.cid = chosen.cid, "ending", None
            self._spawn(end(chosen, cid))
        return {"ends": ends, "slip_p99_ms": 1000 * pct(sorted(slips), 99) if slips else 0.0}

    async def cmd_drain(self, since: float, timeout: float) -> dict[str, Any]:
        """Wait until every offer made since ``since`` is matched; return the records."""
        deadline = _now() + timeout
        while _now() < deadline:
            open_ = [
                r
                for d in self.doctors
                for r in d.records
                if r["t_offer"] >= since and "t_matched" not in r
            ]
            pending = [d for d in self.doctors if d.state == "ending"]
            if not open_ and not pending and not self.tasks:
                break
            await asyncio.sleep(0.02)
        records = [r for d in self.doctors for r in d.records if r["t_offer"] >= since]
        return {"records": records, "ending": sum(d.state == "ending" for d in self.doctors)}

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        clients = [c.sio for c in [*self.patients, *self.doctors] if c.sio is not None]
        gate = asyncio.Semaphore(50)

        async def bye(sio: Any) -> None:
            async with gate:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(sio.disconnect(), 5)

        await asyncio.gather(*(bye(s) for s in clients))


def worker_main(conn: Any, spec: dict[str, Any]) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(Worker(conn, spec).run())


# =============================================================================================
# The coordinator
# =============================================================================================


def pct(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary_ms(values: list[float]) -> dict[str, float | int]:
    xs = sorted(values)
    return {
        "n": len(xs),
        "p50_ms": round(1000 * pct(xs, 50), 2),
        "p99_ms": round(1000 * pct(xs, 99), 2),
        "max_ms": round(1000 * xs[-1], 2) if xs else math.nan,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def consult_serve_argv(port: int, database_url: str) -> list[str]:
    """``consult serve --demo`` of this virtualenv on ``port``, on ``database_url``."""
    return [
        str(VENV_BIN / "consult"),
        "serve",
        "--demo",
        "--port",
        str(port),
        "--host",
        HOST,
        "--database-url",
        database_url,
    ]


class ServerProcess:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.argv, self.env, self.log_path = name, argv, env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self._spy: subprocess.Popen[bytes] | None = None

    def start(self, url: str, timeout: float = 90) -> None:
        self.url = url
        self.log = self.log_path.open("wb")
        # The consult of this checkout, not the one the shared virtualenv's ``consult`` script
        # was installed from (an editable install points at one checkout only);
        # CONSULT_BENCH_SERVER_CODE names another (this bench against another commit's server).
        code = os.environ.get("CONSULT_BENCH_SERVER_CODE", str(REPO))
        env = self.env | {
            "PYTHONPATH": os.pathsep.join(filter(None, [code, self.env.get("PYTHONPATH")]))
        }
        self.proc = subprocess.Popen(
            self.argv, env=env, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.flush()
                tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError(f"{self.name} exited early:\n" + "\n".join(tail))
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer /healthz in {timeout} s")

    def rss_kb(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_s(self) -> float:
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def profile(self, py_spy: str | None, out: Path | None) -> None:
        """Stop the running py-spy recording, if any; start one into ``out`` if given."""
        running = self._spy
        if running is not None:
            running.send_signal(signal.SIGINT)
            try:
                running.wait(timeout=30)
            except subprocess.TimeoutExpired:
                running.kill()
                running.wait(timeout=5)
            self._spy = None
        if py_spy and out is not None and self.proc is not None:
            self._spy = subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(self.proc.pid),
                    "--format",
                    "raw",
                    "--rate",
                    "200",
                    "--nonblocking",
                    "--idle",
                    "--threads",
                    "-o",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def stop(self) -> None:
        if self.proc is None:
            return
        self.profile(None, None)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


class Clients:
    """The client processes and a way to talk to them."""

    def __init__(
        self,
        url: str,
        patients: list[tuple[int, str]],
        doctors: list[tuple[int, str]],
        workers: int,
        patience: float,
    ) -> None:
        ctx = mp.get_context("spawn")
        self.url = url
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        shares: list[list[tuple[int, int, str]]] = [[] for _ in range(workers)]
        for i, (uid, token) in enumerate(patients):
            shares[i % workers].append((i, uid, token))
        specs = [
            {"url": url, "role": "patients", "patients": s, "patience": patience} for s in shares
        ]
        specs.append({"url": url, "role": "doctors", "doctors": doctors, "patience": patience})
        for spec in specs:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child, spec), daemon=True)
            proc.start()
            self.procs.append(proc)
            self.conns.append(parent)
        self.patient_conns = self.conns[:-1]
        self.doctor_conn = self.conns[-1]

    @staticmethod
    def _reply(conn: Any, timeout: float) -> Any:
        if not conn.poll(timeout):
            raise TimeoutError("a client process did not answer in time")
        reply = conn.recv()
        if isinstance(reply, dict) and "error" in reply and len(reply) == 1:
            raise RuntimeError(f"client process: {reply['error']}")
        return reply

    def ask(self, conns: list[Any], cmd: str, **args: Any) -> list[Any]:
        """Send one command to each process, then gather their answers (bounded in time)."""
        for conn in conns:
            conn.send((cmd, args))
        deadline = time.monotonic() + COMMAND_TIMEOUT
        return [self._reply(c, max(0.1, deadline - time.monotonic())) for c in conns]

    def phase(self, name: str) -> None:
        self.ask(self.conns, "phase", name=name)

    def close(self) -> None:
        close_processes(self.conns, self.procs)


def close_processes(conns: list[Any], procs: list[Any]) -> None:
    """Ask each client process to close (its sockets say goodbye), then make sure it ends."""
    for conn in conns:
        with contextlib.suppress(Exception):
            conn.send(("close", {}))
    for conn in conns:
        with contextlib.suppress(Exception):
            if conn.poll(30):
                conn.recv()
    for proc in procs:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)


# --- users ----------------------------------------------------------------------------------


async def insert_users(
    database_url: str, patients: int, doctors: int
) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """Verified premium patients and internal-medicine doctors with ready session tokens."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from consult.accounts.service import token_hash
    from consult.storage import tables as t

    now = datetime.now(UTC)
    made: dict[str, list[tuple[int, str]]] = {}
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            for role, count in (("patient", patients), ("doctor", doctors)):
                emails = [f"{role}{i}@bench.test" for i in range(count)]
                await conn.execute(
                    t.users.insert(),
                    [
                        {
                            "email": e,
                            "password_hash": "x",
                            "role": role,
                            "identity": "verified",
                            "name": f"Bench {role} {i}",
                            "plan_code": "premium" if role == "patient" else None,
                            "created_at": now,
                        }
                        for i, e in enumerate(emails)
                    ],
                )
                ids = dict(
                    (
                        await conn.execute(
                            sa.select(t.users.c.email, t.users.c.id).where(
                                t.users.c.email.in_(emails)
                            )
                        )
                    ).all()
                )
                uids = [ids[e] for e in emails]
                if role == "doctor":
                    await conn.execute(
                        t.doctor_specialties.insert(),
                        [{"doctor_id": u, "specialty_code": SPECIALTY} for u in uids],
                    )
                tokens = [secrets.token_urlsafe(16) for _ in uids]
                await conn.execute(
                    t.sessions.insert(),
                    [
                        {
                            "token_hash": token_hash(tok),
                            "user_id": u,
                            "created_at": now,
                            "expires_at": now + timedelta(hours=3),
                        }
                        for u, tok in zip(uids, tokens, strict=True)
                    ],
                )
                made[role] = list(zip(uids, tokens, strict=True))
    finally:
        await engine.dispose()
    return made["patient"], made["doctor"]


async def insert_tickets(database_url: str, patient_ids: list[int]) -> dict[int, int]:
    """``--prefill``: waiting tickets as a join commits them (a waiting consultation row, queue
    order by arrival), without the HTTP answer; returns join index -> consultation id."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from consult.storage import tables as t

    now = datetime.now(UTC)
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            rows = [
                {
                    "patient_id": uid,
                    "specialty_code": SPECIALTY,
                    "form": "chat",
                    "status": "waiting",
                    "created_at": now + timedelta(microseconds=i),
                    "rank_at": now + timedelta(microseconds=i),
                    "priority": 0,
                }
                for i, uid in enumerate(patient_ids)
            ]
            await conn.execute(t.consultations.insert(), rows)
            found = dict(
                (
                    await conn.execute(
                        sa.select(t.consultations.c.patient_id, t.consultations.c.id).where(
                            t.consultations.c.patient_id.in_(patient_ids)
                        )
                    )
                ).all()
            )
    finally:
        await engine.dispose()
    return {i: found[uid] for i, uid in enumerate(patient_ids)}


def _prefill(database_url: str, patient_ids: list[int], count: int) -> dict[int, int]:
    return asyncio.run(insert_tickets(database_url, patient_ids[:count]))


class PostgresDatabase:
    """A fresh database on the local PostgreSQL, dropped afterwards."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"consult_bench_{os.getpid()}_{secrets.token_hex(3)}"

    async def _admin(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url.replace("+asyncpg", ""), timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def create(self, template: str | None = None) -> str:
        """The database's URL; a copy of database ``template`` if given (PostgreSQL copies its
        files: migrated and seeded once, as many copies as wanted in a moment)."""
        like = f' TEMPLATE "{template}"' if template else ""
        asyncio.run(self._admin(f'CREATE DATABASE "{self.name}"{like}'))
        base = self.admin_url.rsplit("/", 1)[0]
        if "+asyncpg" not in base:
            base = base.replace("postgresql://", "postgresql+asyncpg://")
        return f"{base}/{self.name}"

    def drop(self) -> None:
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


# --- one server, the whole scenario -----------------------------------------------------------


@dataclass
class Plan:
    patients: int
    doctors: int
    workers: int
    join_rate: float
    leaves: int
    leave_rate: float
    free_rate: float
    frees: int
    delay: float
    seed: int
    prefill: bool
    sample: int
    patience: float


def run_scenario(kind: str, plan: Plan, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    port = free_port()
    url = f"http://{HOST}:{port}"
    env = dict(os.environ)
    # Thousands of clients, all from 127.0.0.1: no per-address connection cap.
    env["CONSULT_MAX_CONNECTIONS_PER_ADDRESS"] = "0"
    pg: PostgresDatabase | None = None
    if kind == "ours":
        if args.backend == "postgresql":
            pg = PostgresDatabase(args.pg_admin_url)
            database_url = pg.create()
        else:
            database_url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
        if abs(plan.delay - DEFAULT_DELAY) > 1e-9:
            from dataclasses import fields

            from consult.settings import Settings

            if "queue_push_delay" not in {f.name for f in fields(Settings)}:
                raise SystemExit("--delay: this consult has no queue_push_delay setting")
            env["CONSULT_QUEUE_PUSH_DELAY"] = str(plan.delay)
        argv = consult_serve_argv(port, database_url)
    else:
        argv = [
            sys.executable,
            str(REPO / "bench" / "bare_queue_server.py"),
            "--port",
            str(port),
            "--delay",
            str(plan.delay),
        ]
    server = ServerProcess(kind, argv, env, tmp / f"{kind}-server.log")
    clients: Clients | None = None
    out: dict[str, Any] = {"server_log": str(server.log_path)}
    try:
        server.start(url)
        if kind == "ours":
            patients, doctors = asyncio.run(insert_users(database_url, plan.patients, plan.doctors))
        else:
            patients = [(10_000 + i, f"patient:{10_000 + i}") for i in range(plan.patients)]
            doctors = [(100 + i, f"doctor:{100 + i}") for i in range(plan.doctors)]
        clients = Clients(url, patients, doctors, plan.workers, plan.patience)
        profile = Path(args.profile) if args.profile else None
        py_spy = args.py_spy or shutil.which("py-spy")
        if profile is not None:
            if not py_spy:
                raise SystemExit("--profile needs py-spy (pip install py-spy, or --py-spy PATH)")
            profile.mkdir(parents=True, exist_ok=True)
        prefill = None
        if kind == "ours":
            prefill = functools.partial(_prefill, database_url, [u for u, _ in patients])
        try:
            drive(server, clients, plan, profile, py_spy, prefill, out)
        except Stop as stop:
            out["stopped"] = str(stop)
            log(f"  stopped: {stop}")
        out["client_stats"] = clients.ask(clients.conns, "stats")
    finally:
        if clients is not None:
            clients.close()
        server.stop()
        if pg is not None:
            pg.drop()
    return out


class Stop(Exception):
    """The server could not be driven through the scenario; the figures so far are kept."""


def drive(
    server: ServerProcess,
    clients: Clients,
    plan: Plan,
    profile: Path | None,
    py_spy: str | None,
    prefill: Callable[[int], dict[int, int]] | None,
    out: dict[str, Any],
) -> None:
    out["phases"] = {}
    all_conns, pconns, dconn = clients.conns, clients.patient_conns, clients.doctor_conn
    marks: dict[str, tuple[float, float]] = {}
    lag_marks: dict[str, loop_lag.Buckets | None] = {}

    def phase(name: str) -> None:
        clients.phase(name)
        if profile is not None:
            server.profile(py_spy, profile / f"{server.name}-{name}.txt")
        marks[name] = (_now(), server.cpu_s())
        lag_marks[name] = loop_lag.scrape(server.url)

    def phase_end(name: str) -> None:
        start, cpu0 = marks[name]
        wall = _now() - start
        out["phases"][name] = {
            "wall_s": round(wall, 2),
            "server_cpu": round((server.cpu_s() - cpu0) / wall, 3),
        }
        log(
            f"  {name}: {wall:.1f} s, server CPU {(server.cpu_s() - cpu0) / wall:.0%}, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        out["phases"][name]["loadavg_1min"] = round(os.getloadavg()[0], 2)
        lag = loop_lag.between(lag_marks[name], loop_lag.scrape(server.url))
        if lag is not None:
            out["phases"][name]["server_loop_lag"] = lag
        server.profile(None, None)

    time.sleep(1.0)  # let the start-up settle before the baseline
    rss_before = server.rss_kb()

    # 1. connect ------------------------------------------------------------------------
    phase("connect")
    replies = clients.ask(all_conns, "connect")
    times = [t for r in replies for t in r["times"]]
    failed = sum(r["failed"] for r in replies)
    out["connect"] = summary_ms(times) | {"failed": failed}
    phase_end("connect")
    rss_connected = server.rss_kb()
    if failed:
        raise Stop(f"{failed} clients could not connect")

    # 2. doctors online -----------------------------------------------------------------
    (online,) = clients.ask([dconn], "online")
    if online["online"] != plan.doctors:
        raise Stop(f"doctors could not go online: {online}")

    # 3. join (after an unmeasured fill with --prefill) ----------------------------------
    first = plan.patients - plan.sample if plan.prefill else 0
    cids: dict[int, int] = {}
    if first:
        phase("fill")
        if prefill is not None:  # consult: waiting tickets straight into the database
            filled = prefill(first)
            clients.ask(pconns, "adopt", cids={str(i): c for i, c in filled.items()})
            cids.update(filled)
        else:  # bare: unmeasured joins, as fast as it takes them
            replies = clients.ask(pconns, "join", t0=_now() + 0.5, rate=1000.0, first=0, last=first)
            cids.update({int(i): c for rep in replies for i, c in rep["cids"].items()})
        phase_end("fill")
    phase("join")
    t0 = _now() + 1.0
    replies = clients.ask(
        pconns, "join", t0=t0, rate=plan.join_rate, first=first, last=plan.patients
    )
    joins = [r for rep in replies for r in rep["joins"]]
    cids.update({int(i): c for rep in replies for i, c in rep["cids"].items()})
    ok = [done - sent for _, sent, done, status in joins if status == 201]
    statuses: dict[str, int] = {}
    for *_, status in joins:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    out["join"] = summary_ms(ok) | {
        "joins": len(joins),
        "failed": len(joins) - len(ok),
        "statuses": statuses,
        "rate_per_s": plan.join_rate,
        "queued_before": first,
        "queued_despite_failed_answer": sum(rep.get("recovered", 0) for rep in replies),
    }
    queued = len(cids)
    waiting, info = settle(clients, queued - plan.doctors, plan.patience)
    (drained,) = clients.ask([dconn], "drain", since=0.0, timeout=plan.patience)
    phase_end("join")
    out["join"] |= info
    matched_first = [r for r in drained["records"] if "t_matched" in r]
    time.sleep(2.0)
    rss_after = server.rss_kb()
    out["memory"] = {
        "rss_before_kb": rss_before,
        "rss_after_kb": rss_after,
        "rss_connected_kb": rss_connected,
        "queued": queued,
        "per_patient_kb": round((rss_after - rss_before) / max(1, queued), 1),
    }
    if queued < 0.95 * plan.patients:
        raise Stop(
            f"only {queued} of {plan.patients} patients got into the queue "
            f"({out['join']['failed']} joins failed: {statuses})"
        )
    if len(matched_first) != plan.doctors:
        raise Stop(f"only {len(matched_first)} of {plan.doctors} first offers were accepted")
    out["places_after_join"] = check_places(clients.ask(pconns, "places"), waiting)

    # 4. leave: isolated moves ----------------------------------------------------------
    rng = random.Random(plan.seed)
    # Leavers come from behind everyone the doctors will take in the match phase.
    behind = sorted(cids)[plan.doctors + plan.frees + plan.leaves :]
    leavers = rng.sample(behind, plan.leaves)
    phase("leave")
    t0 = _now() + 0.5
    moves = {str(i): t0 + k / plan.leave_rate for k, i in enumerate(leavers)}
    replies = clients.ask(pconns, "leave", moves=moves)
    leaves = sorted(x for r in replies for x in r["leaves"] if x[3] == 200)
    final, info = settle(clients, waiting - len(leaves), plan.patience)
    phase_end("leave")
    out["leave"] = fanout(clients, pconns, sorted(x[1] for x in leaves), waiting, t0 - 0.1)
    out["leave"] |= info | {"failed": plan.leaves - len(leaves)}
    out["leave"]["http"] = summary_ms([x[2] - x[1] for x in leaves])
    out["places_after_leave"] = check_places(clients.ask(pconns, "places"), final)

    # 5. match: doctors free up at 50/s ------------------------------------------------
    phase("match")
    start_level = final
    t0 = _now() + 0.5
    (freed,) = clients.ask([dconn], "free", t0=t0, rate=plan.free_rate, count=plan.frees)
    (drained,) = clients.ask([dconn], "drain", since=t0 - 0.1, timeout=plan.patience)
    ends = freed["ends"]
    offers = [r for r in drained["records"] if r["t0"] is not None]
    final, info = settle(clients, start_level - len(offers), plan.patience)
    phase_end("match")
    both, offer_leg, missing = match_latencies(clients, offers)
    out["match"] = summary_ms(both) | {
        "not_matched": missing,
        "ends": len(ends),
        "rate_per_s": plan.free_rate,
        "schedule_slip_p99_ms": round(freed["slip_p99_ms"], 1),
    }
    out["offer"] = summary_ms(offer_leg)
    out["end_http"] = summary_ms([e["t_answer"] - e["t0"] for e in ends if "t_answer" in e])
    out["fanout_match"] = fanout(
        clients, pconns, sorted(r["t0"] for r in offers), start_level, t0 - 0.1
    )
    out["fanout_match"] |= info
    out["places_after_match"] = check_places(clients.ask(pconns, "places"), final)


def match_latencies(
    clients: Clients, offers: list[dict[str, Any]]
) -> tuple[list[float], list[float], int]:
    """For the doctors' offer records: doctor free to both told of the match, the offer leg
    alone, and how many offers were never matched on both sides."""
    matched_p: dict[int, float] = {}
    for rep in clients.ask(clients.patient_conns, "matched"):
        matched_p.update({int(k): v for k, v in rep["matched"].items()})
    both, offer_leg, missing = [], [], 0
    for r in offers:
        offer_leg.append(r["t_offer"] - r["t0"])
        if "t_matched" in r and r["cid"] in matched_p:
            both.append(max(r["t_matched"], matched_p[r["cid"]]) - r["t0"])
        else:
            missing += 1
    return both, offer_leg, missing


def bare_state(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url + "/bench/state", timeout=5) as response:
            return dict(json.load(response))
    except OSError:
        return None


def settle(clients: Clients, expected: int, patience: float) -> tuple[int, dict[str, Any]]:
    """Wait for the waiting patients to hold ``expected``; return the level they hold (the most
    common last ``waiting``), which is what the next phase starts from."""
    replies = clients.ask(clients.patient_conns, "settle", level=expected, timeout=patience)
    held: dict[str, int] = {}
    for r in replies:
        for k, n in r["held"].items():
            held[k] = held.get(k, 0) + n
    levels = {int(k): n for k, n in held.items() if k != "none"}
    observed = max(levels, key=lambda k: levels[k]) if levels else expected
    info = {
        "unsettled": sum(r["unsettled"] for r in replies),
        "level_expected": expected,
        "level_held": observed,
    }
    if observed != expected:
        log(f"  the waiting patients hold waiting={observed}, the bench expected {expected}")
        state = bare_state(clients.url)
        if state:
            log(f"  the bare server holds {state}")
    return observed, info


def fanout(
    clients: Clients, conns: list[Any], sent: list[float], start_level: int, since: float
) -> dict[str, Any]:
    """Per move k: when every still-waiting patient held ``waiting <= start_level - k``."""
    levels = [start_level - k for k in range(1, len(sent) + 1)]
    replies = clients.ask(conns, "levels", since=since, levels=levels)
    latencies, incomplete = [], 0
    for k, t_sent in enumerate(sent):
        arrivals = [r["latest"][k] for r in replies]
        if any(r["missing"][k] for r in replies) or all(a is None for a in arrivals):
            incomplete += 1
            continue
        latencies.append(max(a for a in arrivals if a is not None) - t_sent)
    return summary_ms(latencies) | {
        "moves": len(sent),
        "incomplete": incomplete,
        "waiting_patients": sum(r["patients"] for r in replies),
    }


def check_places(replies: list[dict[str, Any]], expected_waiting: int) -> dict[str, Any]:
    rows = [tuple(x) for r in replies for x in r["places"]]
    places = sorted(r[2] for r in rows if r[2] is not None)
    by_cid = [r[2] for r in sorted(rows, key=lambda r: r[1])]
    return {
        "waiting": len(rows),
        "expected": expected_waiting,
        "places_are_1_to_n": places == list(range(1, len(rows) + 1)),
        "waiting_field_ok": all(r[3] == len(rows) for r in rows),
        "in_id_order": by_cid == list(range(1, len(rows) + 1)),
    }


# =============================================================================================
# Report
# =============================================================================================


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b and not math.isnan(a) and not math.isnan(b) else math.nan


FIGURES = [
    ("join", "join to ticket (HTTP)"),
    ("match", "doctor free -> both told of match"),
    ("offer", "  of which: end -> doctor's offer"),
    ("end_http", "  doctor's end request (HTTP)"),
    ("fanout_match", "queue move -> all hold new place (matches at 50/s)"),
    ("leave", "queue move -> all hold new place (isolated leaves)"),
    ("connect", "Socket.IO connect"),
]


def report(results: dict[str, dict[str, Any]], plan: Plan, backend: str) -> dict[str, Any]:
    ours, bare = results.get("ours"), results.get("bare")
    head = (
        f"{'figure':<52} {'ours p50':>9} {'bare p50':>9} {'x':>6} {'ours p99':>9} "
        f"{'bare p99':>9} {'x':>6}"
    )
    print(head)
    print("-" * len(head))
    figures: dict[str, Any] = {}

    def cell(x: dict[str, Any] | None, k: str) -> str:
        return f"{x[k]:9.1f}" if x and x.get("n") else f"{'-':>9}"

    for key, label in FIGURES:
        o = ours.get(key) if ours else None
        b = bare.get(key) if bare else None
        row: dict[str, Any] = {"ours": o, "bare": b, "ratio_p50": math.nan, "ratio_p99": math.nan}
        if o and b and o.get("n") and b.get("n"):
            row["ratio_p50"] = ratio(o["p50_ms"], b["p50_ms"])
            row["ratio_p99"] = ratio(o["p99_ms"], b["p99_ms"])
        figures[key] = row
        print(
            f"{label:<52} {cell(o, 'p50_ms')} {cell(b, 'p50_ms')} {row['ratio_p50']:6.2f} "
            f"{cell(o, 'p99_ms')} {cell(b, 'p99_ms')} {row['ratio_p99']:6.2f}"
        )
    print("(milliseconds; x = ours / bare; - = not measured)")
    print()
    for name, res in results.items():
        if res.get("stopped"):
            print(f"{name}: STOPPED: {res['stopped']}")
        j = res.get("join")
        if j:
            print(
                f"{name}: joins: {j['joins']} measured at {j['rate_per_s']:g}/s onto "
                f"{j['queued_before']} queued, {j['failed']} failed {j['statuses']}"
            )
        m = res.get("memory")
        if m:
            print(
                f"{name}: server RSS {m['rss_before_kb'] / 1024:.1f} MB before connecting, "
                f"{m['rss_after_kb'] / 1024:.1f} MB with {m['queued']} patients queued: "
                f"{m['per_patient_kb']:.1f} KB per patient "
                f"({m['rss_connected_kb'] / 1024:.1f} MB once connected, before joining)"
            )
    print()
    print("server CPU (share of one core) and client processes, per phase:")
    for name, res in results.items():
        for ph, v in res.get("phases", {}).items():
            cl = [w["phases"].get(ph) for w in res.get("client_stats", [])]
            cl = [c for c in cl if c]
            cpu = [c["cpu_s"] / c["wall_s"] for c in cl if c["wall_s"] > 0]
            lag = max((c["lag_p99_ms"] for c in cl), default=math.nan)
            lag_max = max((c["lag_max_ms"] for c in cl), default=math.nan)
            v["clients_cpu"] = round(sum(cpu), 3)
            v["busiest_client_cpu"] = round(max(cpu, default=0), 3)
            v["client_lag_p99_ms"] = round(lag, 1)
            v["client_lag_max_ms"] = round(lag_max, 1)
            server_lag = v.get("server_loop_lag")
            print(
                f"  {name:<5} {ph:<8} {v['wall_s']:6.1f} s  server {v['server_cpu']:5.0%}  "
                f"clients {sum(cpu):5.0%} (busiest {max(cpu, default=0):4.0%}), "
                f"loop lag p99 {lag:6.1f} ms, max {lag_max:6.1f} ms, "
                f"load avg {v['loadavg_1min']:.1f}"
                + (
                    f"; server loop lag p99 {server_lag['p99_ms']:.1f} ms "
                    f"({server_lag['samples']} samples)"
                    if server_lag
                    else ""
                )
            )
    print()
    for name, res in results.items():
        checks = {k: v for k, v in res.items() if k.startswith("places_after")}
        wrong = [
            k
            for k, v in checks.items()
            if not (
                v["places_are_1_to_n"] and v["waiting_field_ok"] and v["waiting"] == v["expected"]
            )
        ]
        errors = sum(w["error_count"] for w in res.get("client_stats", []))
        unsettled = [
            res[k].get("unsettled", 0) for k in ("join", "leave", "fanout_match") if k in res
        ]
        print(
            f"{name}: places checked after {len(checks)} phases: "
            f"{'every waiting patient held 1..W' if not wrong else 'WRONG: ' + str(wrong)}; "
            f"client errors {errors}; patients not holding the last move in time "
            f"{sum(unsettled)}"
        )

    for name, res in results.items():
        kinds: dict[str, int] = {}
        for w in res.get("client_stats", []):
            for e in w["errors"]:
                kind = re.sub(r"\d+", "N", e)[:90]
                kinds[kind] = kinds.get(kind, 0) + 1
        for kind, n in sorted(kinds.items(), key=lambda x: -x[1])[:6]:
            print(f"{name}: client error x{n} (of the first 20 per process): {kind}")

    met: dict[str, Any] = {}
    for key, label in (
        ("match", "match_p99_ratio"),
        ("fanout_match", "fanout_p99_ratio"),
        ("leave", "fanout_isolated_p99_ratio"),
    ):
        value = figures[key]["ratio_p99"]
        ok = not math.isnan(value) and value <= TARGET_RATIO
        met[label] = {"value": value, "max": TARGET_RATIO, "met": ok}
    kb = ours["memory"]["per_patient_kb"] if ours and "memory" in ours else math.nan
    met["memory_per_patient_kb"] = {
        "value": kb,
        "max": TARGET_KB,
        "met": not math.isnan(kb) and kb <= TARGET_KB,
    }
    if ours and backend == "sqlite":
        met |= loop_lag.targets(ours.get("phases", {}))
    targets_met = all(v["met"] for v in met.values())
    print()
    for label, v in met.items():
        print(
            f"target {label}: {v['value']} (at most {v['max']}): {'met' if v['met'] else 'MISSED'}"
        )
    print(f"targets met: {targets_met}")
    return {
        "figures": figures,
        "memory": {k: v.get("memory") for k, v in results.items()},
        "phases": {k: v.get("phases") for k, v in results.items()},
        "stopped": {k: v.get("stopped") for k, v in results.items()},
        "checks": {
            k: {c: v[c] for c in v if c.startswith("places_after")} for k, v in results.items()
        },
        "targets": met,
        "targets_met": targets_met,
    }


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return x


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 patients; under a minute")
    parser.add_argument("--patients", type=int)
    parser.add_argument("--doctors", type=int)
    parser.add_argument("--workers", type=int, help="client processes for the patients")
    parser.add_argument("--join-rate", type=float, default=50.0, help="joins per second")
    parser.add_argument("--leaves", type=int, help="isolated leave moves")
    parser.add_argument("--leave-rate", type=float, default=5.0, help="leaves per second")
    parser.add_argument("--free-rate", type=float, default=50.0, help="doctors freed per second")
    parser.add_argument("--frees", type=int, help="doctor free-ups in the match phase")
    parser.add_argument(
        "--delay",
        type=float,
        default=DEFAULT_DELAY,
        help="fan-out coalescing delay for both servers (consult: CONSULT_QUEUE_PUSH_DELAY)",
    )
    parser.add_argument(
        "--prefill",
        action="store_true",
        help="queue all but the last --sample patients before the measured "
        "joins (consult: rows inserted into the database; bare: joins)",
    )
    parser.add_argument("--sample", type=int, help="measured joins with --prefill")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "CONSULT_BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--only", choices=["ours", "bare"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="record each server phase with py-spy (raw collapsed stacks)",
    )
    parser.add_argument("--py-spy", metavar="PATH", help="the py-spy binary for --profile")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    args = parser.parse_args()
    quick = args.quick
    plan = Plan(
        patients=args.patients or (200 if quick else 2000),
        doctors=args.doctors or (20 if quick else 100),
        workers=args.workers or (2 if quick else 3),
        join_rate=args.join_rate,
        leaves=args.leaves or (20 if quick else 100),
        leave_rate=args.leave_rate,
        free_rate=args.free_rate,
        frees=args.frees or (100 if quick else 500),
        delay=args.delay,
        seed=args.seed,
        prefill=args.prefill,
        sample=args.sample or (100 if quick else 200),
        patience=15.0 if quick else 60.0,
    )
    if plan.patients < plan.doctors + plan.frees + 3 * plan.leaves + 10:
        parser.error("too few patients for the doctors, frees and leaves asked for")
    if args.backend == "postgresql" and args.only == "bare":
        parser.error("--backend applies to consult only")
    tmp = Path(tempfile.mkdtemp(prefix="queue-bench-"))
    log(f"queue_bench: {plan}, backend {args.backend}, logs in {tmp}")
    results: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    try:
        for kind in ("ours", "bare"):
            if args.only and kind != args.only:
                continue
            log(f"{kind}:")
            results[kind] = run_scenario(kind, plan, args, tmp)
    finally:
        if not args.keep_logs:
            shutil.rmtree(tmp, ignore_errors=True)
    summary = report(results, plan, args.backend)
    summary |= {
        "bench": "queue_bench",
        "mode": "quick" if quick else "full",
        "backend": args.backend,
        "plan": plan.__dict__,
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "wall_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(_json_safe(summary), separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
