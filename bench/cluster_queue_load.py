"""The queue load of bench/cluster_bench.py (a helper, not run by itself), made of
bench/queue_bench.py's client processes: doctors online, patients queued behind them, then
steps in which the doctors free up at a fixed rate (open loop: each end is sent on schedule),
each end followed by an offer of the next waiting patient, its accept, and a queue move pushed
to every waiting patient.

Setting up (not measured): every client connects through HAProxy, the doctors go online, all
but the last ``doctors + 5`` patients are queued as waiting rows inserted into the database
(queue_bench ``--prefill``), and the last ones join through ``POST /api/consultations``, which
offers the front of the queue to the idle doctors; they accept, so every doctor holds a
consultation when the first step starts.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from cluster_parts import Cluster
from queue_bench import Clients, insert_tickets, match_latencies, summary_ms

Users = tuple[list[tuple[int, str]], list[tuple[int, str]]]


class QueueLoad:
    def __init__(self, cluster: Cluster, users: Users, args: argparse.Namespace) -> None:
        """``users``: (patients, doctors), each a list of (user id, session token)."""
        self.cluster = cluster
        self.patients, self.doctors = users
        self.patience = args.patience
        self.clients = Clients(cluster.url, *users, args.queue_workers, args.patience)
        self.phases: list[str] = []

    def prepare(self) -> None:
        clients = self.clients
        failed = sum(r["failed"] for r in clients.ask(clients.conns, "connect"))
        if failed:
            raise RuntimeError(f"queue: {failed} clients could not connect through HAProxy")
        (online,) = clients.ask([clients.doctor_conn], "online")
        if online["online"] != len(self.doctors):
            raise RuntimeError(f"queue: doctors could not go online: {online}")
        first = len(self.patients) - (len(self.doctors) + 5)
        ids = [uid for uid, _ in self.patients]
        filled = asyncio.run(insert_tickets(self.cluster.database_url, ids[:first]))
        clients.ask(clients.patient_conns, "adopt", cids={str(i): c for i, c in filled.items()})
        t0 = time.monotonic() + 0.5
        clients.ask(
            clients.patient_conns, "join", t0=t0, rate=50.0, first=first, last=len(self.patients)
        )
        (drained,) = clients.ask([clients.doctor_conn], "drain", since=0.0, timeout=self.patience)
        matched = [r for r in drained["records"] if "t_matched" in r]
        if len(matched) != len(self.doctors):
            raise RuntimeError(
                f"queue: {len(matched)} of {len(self.doctors)} doctors got a first patient"
            )

    def start_step(self, rate: float) -> None:
        name = f"match-{rate:g}"
        self.phases.append(name)
        self.clients.phase(name)

    def run_step(self, rate: float, count: int) -> list[dict[str, Any]]:
        """``count`` ends at ``rate`` a second, then every offer they made matched (bounded by
        the patience); returns the doctors' offer records of the step."""
        dconn = self.clients.doctor_conn
        t0 = time.monotonic() + 0.5
        (freed,) = self.clients.ask([dconn], "free", t0=t0, rate=rate, count=count)
        (drained,) = self.clients.ask([dconn], "drain", since=t0 - 0.1, timeout=self.patience)
        self.slip_p99_ms = round(freed["slip_p99_ms"], 1)
        return [r for r in drained["records"] if r["t0"] is not None]

    def figures(self, offers: list[dict[str, Any]]) -> dict[str, Any]:
        # The doctor's records are complete once drained; a patient's consultation:matched may
        # still be on its way (it is sent beside the doctor's): asked again until it is there.
        deadline = time.monotonic() + self.patience
        while True:
            both, offer_leg, missing = match_latencies(self.clients, offers)
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        match = summary_ms(both)
        return {
            "matches": match["n"],
            "not_matched": missing,
            "p50_ms": match["p50_ms"],
            "p99_ms": match["p99_ms"],
            "offer_p99_ms": summary_ms(offer_leg)["p99_ms"],
            "schedule_slip_p99_ms": self.slip_p99_ms,
        }

    def client_figures(self) -> dict[str, dict[str, float]]:
        """Per step: the client processes' CPU seconds (summed) and worst loop lag p99."""
        self.clients.phase("done")
        stats = self.clients.ask(self.clients.conns, "stats")
        out = {}
        for name in self.phases:
            mine = [s["phases"][name] for s in stats if name in s["phases"]]
            out[name] = {
                "client_cpu_s": round(sum(m["cpu_s"] for m in mine), 2),
                "client_lag_p99_ms": round(max((m["lag_p99_ms"] for m in mine), default=0), 1),
            }
        return out

    def close(self) -> None:
        self.clients.close()
