"""Open-loop chat load for bench/cluster_bench.py (a helper, not run by itself).

Each pair is a patient and a doctor of an active consultation, each with its own Socket.IO
connection (python-socketio ``AsyncClient``, websocket transport) to the address given (HAProxy:
the two sides of a pair may land on different nodes). Unlike bench/chat_bench.py, whose senders
wait for each acknowledgement (closed loop: the server sets the pace), every side here sends on a
fixed schedule, whatever the answers: ``rate`` messages a second in all, spread evenly over the
sides with a random phase each. So two servers are compared at the same offered load, and a
server that falls behind shows it as latency instead of slowing its clients down.

**Delivery latency** = from the moment the message was *scheduled* (not when the client got to
send it: a late client would hide a slow server) to the other side's ``chat:message``; the
scheduled time travels in the body (every process reads the same CLOCK_MONOTONIC). Messages
scheduled in the measuring window count; those not delivered within ``grace`` seconds after the
window are counted as late. Each client process reports its own CPU and loop lag, so a load
generator that could not keep up is visible beside the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import random
import time
from typing import Any

from queue_bench import close_processes, pct  # bench/ is on sys.path (a script's folder)


class _Side:
    def __init__(self, role: str, token: str, cid: int) -> None:
        self.role, self.token, self.cid = role, token, cid
        self.sio: Any = None
        self.n = 0


class _ChatWorker:
    """One client process: a share of the pairs, both sides of each."""

    def __init__(self, conn: Any, spec: dict[str, Any]) -> None:
        self.conn, self.url, self.filler = conn, spec["url"], "x" * spec["body_size"]
        self.total_sides: int = spec["total_sides"]  # over every process
        self.sides = [
            _Side(role, token, cid)
            for cid, patient, doctor in spec["pairs"]
            for role, token in (("p", patient), ("d", doctor))
        ]
        self.window = (float("inf"), float("inf"))
        self.latencies: list[float] = []
        self.counts = {"sent": 0, "acked": 0, "refused": 0, "errors": 0}

    async def run(self) -> None:
        await self._connect_all()
        self.conn.send({"ready": len(self.sides)})
        loop = asyncio.get_running_loop()
        while True:
            cmd, args = await loop.run_in_executor(None, self.conn.recv)
            if cmd == "close":
                break
            self.conn.send(await self.step(**args))
        gate = asyncio.Semaphore(50)

        async def bye(side: _Side) -> None:
            async with gate:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(side.sio.disconnect(), 5)

        await asyncio.gather(*(bye(s) for s in self.sides))
        self.conn.send({"closed": True})

    async def _connect_all(self) -> None:
        import socketio

        gate = asyncio.Semaphore(25)  # HAProxy and the nodes take a storm, not a flood

        async def connect(side: _Side) -> None:
            client = socketio.AsyncClient(reconnection=False)
            client.on("chat:message", self._receiver(side))
            async with gate:
                await client.connect(
                    self.url, auth={"token": side.token}, transports=["websocket"], wait_timeout=30
                )
            side.sio = client

        await asyncio.gather(*(connect(s) for s in self.sides))

    def _receiver(self, side: _Side) -> Any:
        def on_message(data: dict[str, Any]) -> None:
            self._arrived(side.role, data["message"], time.monotonic())

        return on_message

    def _arrived(self, role: str, message: dict[str, Any], now: float) -> None:
        """``chat:message`` reached ``role``'s side: both sides' rooms get each message, and the
        other side's, scheduled in the window, is a delivery."""
        sender = message["client_id"].partition("-")[0]
        scheduled = float(message["body"].partition(" ")[0])
        if sender != role and self.window[0] <= scheduled < self.window[1]:
            self.latencies.append(now - scheduled)

    def _on_ack(self, ack: Any = None) -> None:
        self.counts["acked" if isinstance(ack, dict) and ack.get("ok") else "refused"] += 1

    async def _sender(self, side: _Side, first: float, interval: float, stop: float) -> None:
        at = first
        while at < stop:
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            side.n += 1
            if self.window[0] <= at < self.window[1]:
                self.counts["sent"] += 1
            body = {
                "consultation_id": side.cid,
                "client_id": f"{side.role}-{side.n}",
                "body": f"{at:.6f} {self.filler}",
            }
            try:
                await side.sio.emit("chat:send", body, callback=self._on_ack)
            except Exception:
                self.counts["errors"] += 1
            at += interval

    async def _lag_monitor(self, lags: list[float]) -> None:
        tick = 0.02
        while True:
            start = time.monotonic()
            await asyncio.sleep(tick)
            lags.append(max(0.0, time.monotonic() - start - tick))

    async def step(
        self, start_at: float, rate: float, warmup: float, seconds: float, grace: float
    ) -> dict[str, Any]:
        """Send ``rate`` messages a second in all (this process's share of it) from
        ``start_at`` to the end of the window; report what the window's messages did."""
        self.latencies = []
        self.counts = dict.fromkeys(self.counts, 0)
        self.window = (start_at + warmup, start_at + warmup + seconds)
        interval = self.total_sides / rate  # seconds between two sends of one side
        rng = random.Random(len(self.sides))
        tasks = [
            asyncio.create_task(
                self._sender(s, start_at + rng.uniform(0, interval), interval, self.window[1])
            )
            for s in self.sides
        ]
        lags: list[float] = []
        monitor = asyncio.create_task(self._lag_monitor(lags))
        await asyncio.sleep(max(0.0, self.window[0] - time.monotonic()))
        cpu0 = time.process_time()
        await asyncio.sleep(max(0.0, self.window[1] - time.monotonic()))
        cpu = time.process_time() - cpu0
        await asyncio.sleep(grace)  # the window's last messages on their way
        for task in [*tasks, monitor]:
            task.cancel()
        await asyncio.gather(*tasks, monitor, return_exceptions=True)
        lags.sort()
        return {
            "counts": self.counts,
            "latencies": self.latencies,
            "cpu_s": cpu,
            "lag_p99_ms": 1000 * pct(lags, 99) if lags else 0.0,
        }


def worker_main(conn: Any, spec: dict[str, Any]) -> None:
    try:
        asyncio.run(_ChatWorker(conn, spec).run())
    except Exception as exc:  # reported to the coordinator, which stops the run
        conn.send({"error": repr(exc)})


class ChatLoad:
    """The chat client processes of one cluster, connected through ``url``, driven step by
    step."""

    def __init__(
        self, url: str, triples: list[tuple[int, str, str]], workers: int, body_size: int
    ) -> None:
        ctx = mp.get_context("spawn")
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        workers = max(1, min(workers, len(triples)))
        for w in range(workers):
            parent, child = ctx.Pipe()
            spec = {
                "url": url,
                "pairs": triples[w::workers],
                "body_size": body_size,
                "total_sides": 2 * len(triples),
            }
            proc = ctx.Process(target=worker_main, args=(child, spec), daemon=True)
            proc.start()
            self.procs.append(proc)
            self.conns.append(parent)
        for conn in self.conns:
            self._reply(conn, 120)

    @staticmethod
    def _reply(conn: Any, timeout: float) -> Any:
        if not conn.poll(timeout):
            raise TimeoutError("a chat client process did not answer in time")
        reply = conn.recv()
        if isinstance(reply, dict) and "error" in reply:
            raise RuntimeError(f"chat client process: {reply['error']}")
        return reply

    def start_step(self, rate: float, warmup: float, seconds: float, grace: float) -> float:
        """Start a step in every process; returns its monotonic start time."""
        start_at = time.monotonic() + 0.5
        for conn in self.conns:
            conn.send(
                ("step", {"start_at": start_at, "rate": rate, "warmup": warmup,
                          "seconds": seconds, "grace": grace})
            )  # fmt: skip
        return start_at

    def finish_step(self, timeout: float) -> dict[str, Any]:
        """The step's figures, over every process."""
        replies = [self._reply(c, timeout) for c in self.conns]
        latencies = sorted(x for r in replies for x in r["latencies"])
        counts = {k: sum(r["counts"][k] for r in replies) for k in replies[0]["counts"]}
        return {
            "sent": counts["sent"],
            "delivered": len(latencies),
            "refused": counts["refused"],
            "errors": counts["errors"],
            "p50_ms": round(1000 * pct(latencies, 50), 2),
            "p99_ms": round(1000 * pct(latencies, 99), 2),
            "client_cpu_s": round(sum(r["cpu_s"] for r in replies), 2),
            "client_lag_p99_ms": round(max(r["lag_p99_ms"] for r in replies), 1),
        }

    def close(self) -> None:
        close_processes(self.conns, self.procs)
