"""Chat throughput and delivery latency through the full stack, beside a bare relay.

One command runs, for 50 and 200 consultation pairs (``--pairs``):

- **bare**: ``bench/bare_chat_server.py``, python-socketio relaying ``chat:send`` to both
  participants' rooms from memory (no auth, no database);
- **ours** on SQLite and on PostgreSQL (``--backend``): a real ``consult serve`` process. Each
  message is authenticated (the socket's session), validated, rate-checked, stored with its
  sequence number and audit entry (group commit), acknowledged after the commit and delivered
  as ``chat:message`` to both participants.

The same clients drive both: each pair is a patient and a doctor, each with its own Socket.IO
connection (python-socketio ``AsyncClient``, websocket transport), spread over ``--workers``
client processes. Every participant sends closed-loop: its next message as soon as the
previous one is acknowledged (like a person who waits for the tick, but without the thinking),
so 2 x pairs messages are always in flight and the server runs at its capacity.

- **Throughput** = messages delivered to the other participant per second, in the measuring
  window (after a warm-up).
- **Delivery latency** = from the sender's ``emit`` to the other participant's ``chat:message``
  (the send time travels in the body; every process reads the same CLOCK_MONOTONIC).

Targets (docs/performance.md): ours at least 60 % of the bare relay's throughput, and p99
delivery latency within 2x of the bare relay's, for each pair count and backend; on SQLite, the
server's event-loop lag p99 under 5 ms over the measuring window (read from its /metrics:
``bench/loop_lag.py``).

Consult's users, sessions and active consultations are inserted straight into its database (as
``bench/queue_bench.py`` does), and its per-participant rate limit is raised
(``CONSULT_CHAT_RATE``): the senders here are machines.

Usage: python bench/chat_bench.py [--quick] [--pairs 50,200] [--backend sqlite,postgresql]
                                  [--seconds S] [--workers N] [--rounds R]
                                  [--profile DIR [--py-spy PATH]]
The last line printed is one JSON object with the figures, the targets and "targets_met".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loop_lag  # noqa: E402  (bench/ is not a package)
from queue_bench import (  # noqa: E402
    HOST,
    REPO,
    PostgresDatabase,
    ServerProcess,
    consult_serve_argv,
    free_port,
    insert_users,
    log,
    pct,
)

TARGET_THROUGHPUT = 0.6
TARGET_P99 = 2.0
PATIENT_BASE, DOCTOR_BASE = 10_000, 20_000  # bench/bare_chat_server.py


# =============================================================================================
# Client processes
# =============================================================================================


class Side:
    def __init__(self, name: str, token: str, cid: int) -> None:
        self.name, self.token, self.cid = name, token, cid
        self.sio: Any = None
        self.n = 0


async def _worker(conn: Any, spec: dict[str, Any]) -> None:
    import socketio

    url = spec["url"]
    sides: list[Side] = []
    latencies: list[float] = []
    counts = {"delivered": 0, "acked": 0, "errors": 0}
    window = [float("inf"), float("inf")]
    running = True

    for cid, patient_token, doctor_token in spec["pairs"]:
        sides.append(Side("p", patient_token, cid))
        sides.append(Side("d", doctor_token, cid))

    def on_message_for(side: Side) -> Any:
        async def on_message(data: dict[str, Any]) -> None:
            m = data["message"]
            if m["client_id"].startswith(side.name + "-"):
                return  # our own, echoed to our room
            now = time.monotonic()
            sent = float(m["body"].split(" ", 1)[0])
            if window[0] <= sent and now <= window[1]:
                counts["delivered"] += 1
                latencies.append(now - sent)

        return on_message

    async def connect(side: Side) -> None:
        side.sio = socketio.AsyncClient(reconnection=False)
        side.sio.on("chat:message", on_message_for(side))
        await side.sio.connect(
            url, auth={"token": side.token}, transports=["websocket"], wait_timeout=30
        )

    for i in range(0, len(sides), 50):
        await asyncio.gather(*(connect(s) for s in sides[i : i + 50]))

    async def sender(side: Side) -> None:
        filler = "x" * spec["body_size"]
        while running:
            side.n += 1
            sent = time.monotonic()
            try:
                ack = await side.sio.call(
                    "chat:send",
                    {
                        "consultation_id": side.cid,
                        "client_id": f"{side.name}-{side.n}",
                        "body": f"{sent:.6f} {filler}",
                    },
                    timeout=30,
                )
            except Exception:
                counts["errors"] += 1
                await asyncio.sleep(0.05)
                continue
            if ack.get("ok"):
                if window[0] <= sent and time.monotonic() <= window[1]:
                    counts["acked"] += 1
            else:
                counts["errors"] += 1
                await asyncio.sleep(0.05)

    conn.send("ready")
    start_at, warmup, seconds = conn.recv()
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    window[0] = start_at + warmup
    window[1] = start_at + warmup + seconds
    cpu0 = time.process_time()
    tasks = [asyncio.create_task(sender(s)) for s in sides]
    await asyncio.sleep(max(0.0, window[1] - time.monotonic()))
    running = False
    cpu = time.process_time() - cpu0
    await asyncio.sleep(0.5)  # let the last deliveries of the window arrive
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    conn.send({"counts": counts, "latencies": latencies, "cpu_s": cpu})
    for side in sides:
        with contextlib.suppress(Exception):
            await side.sio.disconnect()


def worker_main(conn: Any, spec: dict[str, Any]) -> None:
    try:
        asyncio.run(_worker(conn, spec))
    except Exception as exc:  # reported to the parent, which stops the run
        conn.send({"error": repr(exc)})


# =============================================================================================
# One server, one pair count
# =============================================================================================


async def insert_consultations(database_url: str, pairs: list[tuple[int, int]]) -> list[int]:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from consult.storage import tables as t

    now = datetime.now(UTC)
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                t.consultations.insert(),
                [
                    {
                        "patient_id": p,
                        "doctor_id": d,
                        "specialty_code": "internal-medicine",
                        "form": "chat",
                        "status": "active",
                        "created_at": now,
                        "started_at": now,
                        "rank_at": now,
                        "priority": 0,
                    }
                    for p, d in pairs
                ],
            )
            found = dict(
                (
                    await conn.execute(
                        sa.select(t.consultations.c.patient_id, t.consultations.c.id).where(
                            t.consultations.c.patient_id.in_([p for p, _ in pairs])
                        )
                    )
                ).all()
            )
    finally:
        await engine.dispose()
    return [found[p] for p, _ in pairs]


def run_one(kind: str, backend: str, pairs: int, args: argparse.Namespace, tmp: Path) -> Any:
    port = free_port()
    url = f"http://{HOST}:{port}"
    env = dict(os.environ)
    # Thousands of clients, all from 127.0.0.1: no per-address connection cap.
    env["CONSULT_MAX_CONNECTIONS_PER_ADDRESS"] = "0"
    pg: PostgresDatabase | None = None
    database_url = ""
    if kind == "ours":
        if backend == "postgresql":
            pg = PostgresDatabase(args.pg_admin_url)
            database_url = pg.create()
        else:
            database_url = f"sqlite+aiosqlite:///{tmp / f'chat-{pairs}-{time.time_ns()}.db'}"
        env |= {"CONSULT_CHAT_RATE": "100000", "CONSULT_CHAT_BURST": "100000"}
        env.pop("CONSULT_REDIS_URL", None)
        argv = consult_serve_argv(port, database_url)
    else:
        argv = [sys.executable, str(REPO / "bench" / "bare_chat_server.py"), "--port", str(port)]
    name = f"{kind}-{backend}-{pairs}-{time.time_ns()}"
    server = ServerProcess(name, argv, env, tmp / f"{name}.log")
    procs: list[Any] = []
    conns: list[Any] = []
    try:
        server.start(url)
        if kind == "ours":
            patients, doctors = asyncio.run(insert_users(database_url, pairs, pairs))
            cids = asyncio.run(
                insert_consultations(
                    database_url, [(p, d) for (p, _), (d, _) in zip(patients, doctors, strict=True)]
                )
            )
            triples = [
                (cid, pt, dt) for cid, (_, pt), (_, dt) in zip(cids, patients, doctors, strict=True)
            ]
        else:
            triples = [
                (n, f"patient:{PATIENT_BASE + n}", f"doctor:{DOCTOR_BASE + n}")
                for n in range(pairs)
            ]
        ctx = mp.get_context("spawn")
        workers = min(args.workers, pairs)
        for w in range(workers):
            parent, child = ctx.Pipe()
            spec = {"url": url, "pairs": triples[w::workers], "body_size": args.body_size}
            proc = ctx.Process(target=worker_main, args=(child, spec), daemon=True)
            proc.start()
            procs.append(proc)
            conns.append(parent)
        for c in conns:
            if not c.poll(120):
                raise RuntimeError("a client process did not connect in time")
            reply = c.recv()
            if reply != "ready":
                raise RuntimeError(f"client process: {reply}")
        cpu0 = server.cpu_s()
        start_at = time.monotonic() + 0.5
        for c in conns:
            c.send((start_at, args.warmup, args.seconds))
        # The server's CPU over the measuring window alone, read by this process at its edges:
        # CPU per delivered message does not depend on how much of the shared cores the server
        # got, so it compares the two servers' work even when other jobs load the machine.
        time.sleep(max(0.0, start_at + args.warmup - time.monotonic()))
        window_cpu0 = server.cpu_s()
        lag0 = loop_lag.scrape(url)
        if args.profile is not None:
            server.profile(args.py_spy, args.profile / f"{name}.txt")
        time.sleep(max(0.0, start_at + args.warmup + args.seconds - time.monotonic()))
        window_cpu = server.cpu_s() - window_cpu0
        lag = loop_lag.between(lag0, loop_lag.scrape(url))
        results = []
        for c in conns:
            if not c.poll(args.warmup + args.seconds + 60):
                raise RuntimeError("a client process did not report in time")
            reply = c.recv()
            if "error" in reply:
                raise RuntimeError(f"client process: {reply['error']}")
            results.append(reply)
        server_cpu = server.cpu_s() - cpu0
        server.profile(None, None)
    finally:
        for c in conns:
            with contextlib.suppress(Exception):
                c.close()
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
        server.stop()
        if pg is not None:
            pg.drop()
    latencies = sorted(x for r in results for x in r["latencies"])
    delivered = sum(r["counts"]["delivered"] for r in results)
    return {
        "kind": kind,
        "backend": backend,
        "pairs": pairs,
        "msgs_per_s": round(delivered / args.seconds, 1),
        "acked_per_s": round(sum(r["counts"]["acked"] for r in results) / args.seconds, 1),
        "errors": sum(r["counts"]["errors"] for r in results),
        "p50_ms": round(1000 * pct(latencies, 50), 2),
        "p99_ms": round(1000 * pct(latencies, 99), 2),
        "server_cpu_s": round(server_cpu, 1),
        "server_us_per_msg": round(1e6 * window_cpu / delivered) if delivered else None,
        "client_cpu_s": round(sum(r["cpu_s"] for r in results), 1),
        # The server's loop lag over the measuring window (None: the bare relay has no
        # /metrics).
        "loop_lag_p99_ms": lag["p99_ms"] if lag else None,
        "loop_lag_samples": lag["samples"] if lag else None,
    }


# =============================================================================================
# Report
# =============================================================================================


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the rounds of one server and pair count."""
    out = dict(runs[0])
    for key in ("msgs_per_s", "acked_per_s", "p50_ms", "p99_ms", "server_cpu_s", "client_cpu_s"):
        out[key] = round(statistics.median(r[key] for r in runs), 2)
    per_msg = [r["server_us_per_msg"] for r in runs if r["server_us_per_msg"] is not None]
    out["server_us_per_msg"] = round(statistics.median(per_msg)) if per_msg else None
    out["errors"] = sum(r["errors"] for r in runs)
    lags = [r["loop_lag_p99_ms"] for r in runs if r.get("loop_lag_p99_ms") is not None]
    out["loop_lag_p99_ms"] = round(statistics.median(lags), 2) if lags else None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short windows; under a minute")
    parser.add_argument("--pairs", default="50,200", help="pair counts, comma-separated")
    parser.add_argument("--backend", default="sqlite,postgresql", help="sqlite,postgresql")
    parser.add_argument("--seconds", type=float, help="measuring window per run")
    parser.add_argument("--warmup", type=float, help="warm-up before the window")
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    parser.add_argument(
        "--rounds",
        type=int,
        help="runs of each server, interleaved; the median is reported (default 2, quick 1)",
    )
    parser.add_argument("--body-size", type=int, default=60, help="characters of filler")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record each server's measuring window with py-spy (raw collapsed stacks)",
    )
    parser.add_argument("--py-spy", metavar="PATH", help="the py-spy binary for --profile")
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "CONSULT_BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    args.seconds = args.seconds or (1.5 if args.quick else 10.0)
    args.warmup = args.warmup or (0.5 if args.quick else 3.0)
    args.rounds = args.rounds or (1 if args.quick else 2)
    pair_counts = [int(p) for p in args.pairs.split(",") if p]
    if args.profile is not None:
        args.py_spy = args.py_spy or shutil.which("py-spy")
        if not args.py_spy:
            parser.error("--profile needs py-spy (pip install py-spy, or --py-spy PATH)")
        args.profile.mkdir(parents=True, exist_ok=True)
    backends = [b for b in args.backend.split(",") if b]
    for b in backends:
        if b not in ("sqlite", "postgresql"):
            parser.error(f"unknown backend {b!r}")
    tmp = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    try:
        for pairs in pair_counts:
            # The baseline, then each backend, for this pair count; repeated in rounds, so a
            # machine that is busier for a while (the cores are shared) weighs on all alike.
            for r in range(args.rounds):
                for kind, backend in [("bare", "-"), *(("ours", b) for b in backends)]:
                    log(f"round {r + 1}: {kind} {backend} {pairs} pairs ...")
                    row = run_one(kind, backend, pairs, args, tmp)
                    log(f"  {row}")
                    rows.append(row)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    medians = [
        median_row([r for r in rows if (r["kind"], r["backend"], r["pairs"]) == key])
        for key in dict.fromkeys((r["kind"], r["backend"], r["pairs"]) for r in rows)
    ]
    comparisons = []
    header = (
        f"{'pairs':>5} {'server':<18} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'x bare msg/s':>12} {'x bare p99':>10} {'CPU us/msg':>10} {'x bare CPU':>10} "
        f"{'loop lag p99 ms':>15}"
    )
    print(header)
    for pairs in pair_counts:
        bare = next(r for r in medians if r["pairs"] == pairs and r["kind"] == "bare")
        print(
            f"{pairs:>5} {'bare relay':<18} {bare['msgs_per_s']:>8} {bare['p50_ms']:>8} "
            f"{bare['p99_ms']:>8} {'':>12} {'':>10} {bare['server_us_per_msg']!s:>10}"
        )
        for r in medians:
            if r["pairs"] != pairs or r["kind"] != "ours":
                continue
            thr = r["msgs_per_s"] / bare["msgs_per_s"] if bare["msgs_per_s"] else 0.0
            p99 = r["p99_ms"] / bare["p99_ms"] if bare["p99_ms"] else float("inf")
            cpu = (
                r["server_us_per_msg"] / bare["server_us_per_msg"]
                if r["server_us_per_msg"] and bare["server_us_per_msg"]
                else float("nan")
            )
            lag = r["loop_lag_p99_ms"]
            # The loop-lag target is SQLite's (its commits' fsyncs once ran on the loop).
            lag_met = r["backend"] != "sqlite" or (lag is not None and lag < loop_lag.TARGET_LAG_MS)
            met = thr >= TARGET_THROUGHPUT and p99 <= TARGET_P99 and r["errors"] == 0
            comparisons.append(
                {
                    "pairs": pairs,
                    "backend": r["backend"],
                    "throughput_ratio": round(thr, 2),
                    "p99_ratio": round(p99, 2),
                    "cpu_per_msg_ratio": round(cpu, 2),
                    "loop_lag_p99_ms": lag,
                    "loop_lag_met": lag_met,
                    "met": met and lag_met,
                }
            )
            print(
                f"{pairs:>5} {'consult ' + r['backend']:<18} {r['msgs_per_s']:>8} "
                f"{r['p50_ms']:>8} {r['p99_ms']:>8} {thr:>12.2f} {p99:>10.2f} "
                f"{r['server_us_per_msg']!s:>10} {cpu:>10.2f} {lag!s:>15}"
            )
    summary = {
        "bench": "chat_bench",
        "mode": "quick" if args.quick else "full",
        "rounds": args.rounds,
        "medians": medians,
        "runs": rows,
        "comparisons": comparisons,
        "targets": {
            "throughput_ratio_min": TARGET_THROUGHPUT,
            "p99_ratio_max": TARGET_P99,
            "sqlite_loop_lag_p99_ms_under": loop_lag.TARGET_LAG_MS,
        },
        "targets_met": bool(comparisons) and all(c["met"] for c in comparisons),
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "wall_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
