"""Chat and queue through HAProxy, one node beside two, at the same offered loads.

One command starts, in turn, each configuration of real processes on this machine:

- **1 node**: one ``consult serve`` behind HAProxy (deploy/haproxy.cfg, written for the bench's
  ports by deploy/haproxy_config.py), on a PostgreSQL database of the bench's own (created and
  dropped), no Redis: the deployment of a single process, the baseline;
- **1 node + Redis** (full run only; ``--configs``): the same with python-socketio's Redis
  manager on, which a cluster's every node runs (every emit published to Redis);
- **2 nodes**: two ``consult serve`` on the same database and a redis-server of the bench's own
  (a free port, no persistence), HAProxy in front (leastconn: the two sides of a chat, a doctor
  and the patient offered to them, land on either node).

Each is driven through HAProxy by client processes (python-socketio ``AsyncClient``,
websocket transport) with two loads, one after the other, at fixed offered loads (open loop):

- **chat** (bench/cluster_chat_load.py): ``--pairs`` consultation pairs; the sides send
  ``rate`` messages a second in all on a fixed schedule; delivery latency from the scheduled
  send to the other side's ``chat:message``; throughput = messages delivered a second.
- **queue** (bench/queue_bench.py's client processes): ``--doctors`` doctors online, patients
  queued behind them (waiting tickets inserted, as queue_bench ``--prefill`` does); then, per
  step, the doctors free up at ``rate`` a second (end, offer, accept); **match latency** = from
  the doctor's end request to the later of the two ``consultation:matched`` arrivals; every
  match also moves the queue for every waiting patient (``queue:ticket`` pushes).

Server CPU per message (or per match) = the nodes' CPU over the step's window, summed over
nodes, divided by the messages delivered (matches made) in it. HAProxy's, Redis's, the bench
database's PostgreSQL backends' and the client processes' CPU are reported apart.

Targets (issue 15; docs/performance.md): with 2 nodes, CPU per message (per match) at most 1.25x
one node's, over the steps neither configuration dropped; p99 at most 1.5x one node's at each
offered load; and at the first offered load where one node's p99 passes 2x its idle p99 (the
lowest step's), 2 nodes' p99 at most 2x one node's idle p99. On 2 cores shared by the nodes,
the load generator, HAProxy, Redis and PostgreSQL, two nodes have no core of their own: what
this measures is the cost of the cluster's parts, not a gain from a second machine.

Usage: python bench/cluster_bench.py [--quick] [--configs one,one+redis,two] [--chat-rates R,..]
                                     [--queue-rates R,..] [--pairs N] [--doctors N]
       python bench/cluster_bench.py --report FILE   (an earlier run's output, evaluated again)
The last line printed is one JSON object with the figures, the targets and "targets_met".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chat_bench import insert_consultations  # noqa: E402  (bench/ is not a package)
from cluster_chat_load import ChatLoad  # noqa: E402
from cluster_parts import Cluster, Redis, seeded_template  # noqa: E402
from cluster_queue_load import QueueLoad  # noqa: E402
from queue_bench import _json_safe, insert_users, log  # noqa: E402

TARGET_CPU_RATIO = 1.25
TARGET_P99_RATIO = 1.5
TARGET_KNEE = 2.0  # "passes 2x its idle p99"
DELIVERED_OK = 0.95  # a step that delivered less is one the configuration could not carry
CONFIGS = {"one": (1, False), "one+redis": (1, True), "two": (2, True)}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def window_cpu(cluster: Cluster, before: dict[str, float]) -> dict[str, float]:
    """What each part spent since ``before``; the PostgreSQL backends summed (one that
    connected meanwhile counts from its start; one that left is missed)."""
    after = cluster.cpu()
    out = {k: round(v - before[k], 3) for k, v in after.items() if ":" not in k}
    backends = [v - before.get(k, 0.0) for k, v in after.items() if k.startswith("postgres:")]
    return out | {"postgres": round(sum(backends), 3)}


def run_chat(cluster: Cluster, args: argparse.Namespace, users: Any) -> list[dict[str, Any]]:
    patients, doctors = users
    cids = asyncio.run(
        insert_consultations(
            cluster.database_url,
            [(p, d) for (p, _), (d, _) in zip(patients, doctors, strict=True)],
        )
    )
    triples = [(c, pt, dt) for c, (_, pt), (_, dt) in zip(cids, patients, doctors, strict=True)]
    load = ChatLoad(cluster.url, triples, args.workers, args.body_size)
    rows = []
    try:
        for rate in args.chat_rates:
            start_at = load.start_step(rate, args.warmup, args.seconds, args.grace)
            time.sleep(max(0.0, start_at + args.warmup - time.monotonic()))
            before = cluster.cpu()
            time.sleep(max(0.0, start_at + args.warmup + args.seconds - time.monotonic()))
            cpu = window_cpu(cluster, before)
            row = load.finish_step(args.grace + args.seconds + 60)
            row |= per_unit(rate, row["delivered"], args.seconds, cpu, row["sent"])
            log(f"  chat {rate:g}/s: {row}")
            rows.append(row)
    finally:
        load.close()
    return rows


def per_unit(
    rate: float, done: int, seconds: float, cpu: dict[str, float], expected: int
) -> dict[str, Any]:
    """The figures every step has: throughput, delivered share, CPU per unit of work."""
    return {
        "offered_per_s": rate,
        "done": done,
        "window_s": round(seconds, 2),
        "throughput_per_s": round(done / seconds, 1),
        "delivered_share": round(done / expected, 3) if expected else None,
        "cpu_s": cpu,
        "server_us_per_unit": round(1e6 * cpu["nodes"] / done) if done else None,
        "haproxy_us_per_unit": round(1e6 * cpu["haproxy"] / done) if done else None,
        "redis_us_per_unit": round(1e6 * cpu["redis"] / done) if done else None,
        "postgres_us_per_unit": round(1e6 * cpu["postgres"] / done) if done else None,
        "redis_bytes_in_per_unit": round(cpu["redis_in_bytes"] / done) if done else None,
        "redis_commands_per_unit": round(cpu["redis_commands"] / done, 2) if done else None,
        "redis_bytes_out_per_unit": round(cpu["redis_out_bytes"] / done) if done else None,
    }


def run_queue(cluster: Cluster, args: argparse.Namespace, users: Any) -> list[dict[str, Any]]:
    load = QueueLoad(cluster, users, args)
    rows = []
    try:
        load.prepare()
        for rate in args.queue_rates:
            count = max(1, round(rate * args.seconds))
            load.start_step(rate)
            before = cluster.cpu()
            offers = load.run_step(rate, count)
            cpu = window_cpu(cluster, before)
            row = load.figures(offers)
            row |= per_unit(rate, row["matches"], count / rate, cpu, count)
            log(f"  queue {rate:g}/s: {row}")
            rows.append(row)
        for row, clients in zip(rows, load.client_figures().values(), strict=True):
            row |= clients
    finally:
        load.close()
    return rows


def run_config(
    name: str, redis: Redis | None, template: Any, args: argparse.Namespace, tmp: Path
) -> Any:
    size, with_redis = CONFIGS[name]
    directory = tmp / name
    directory.mkdir()
    env = dict(os.environ) | {
        # Thousands of clients, all from 127.0.0.1 (HAProxy): no per-address cap.
        "CONSULT_MAX_CONNECTIONS_PER_ADDRESS": "0",
        "CONSULT_CHAT_RATE": "100000",  # the senders are machines
        "CONSULT_CHAT_BURST": "100000",
        "CONSULT_TRUSTED_PROXIES": "127.0.0.1",
    }
    cluster = Cluster(size, redis if with_redis else None, directory, template, env)
    try:
        begun = time.monotonic()
        cluster.start()
        log(f"  {size} node(s) and HAProxy in service in {time.monotonic() - begun:.1f} s")
        queue_patients = args.doctors + sum(
            max(1, round(r * args.seconds)) for r in args.queue_rates
        )
        queue_patients += args.waiting
        patients, doctors = asyncio.run(
            insert_users(
                cluster.database_url, args.pairs + queue_patients, args.pairs + args.doctors
            )
        )
        chat = run_chat(cluster, args, (patients[: args.pairs], doctors[: args.pairs]))
        queue = run_queue(cluster, args, (patients[args.pairs :], doctors[args.pairs :]))
    finally:
        cluster.stop()
    return {"nodes": size, "redis": with_redis, "chat": chat, "queue": queue}


# =============================================================================================
# Report
# =============================================================================================


def carried(row: dict[str, Any]) -> bool:
    return (row["delivered_share"] or 0) >= DELIVERED_OK


def cpu_per_unit(rows: list[dict[str, Any]], rates: set[float]) -> float:
    """The nodes' CPU per unit of work over the steps of these offered loads, in µs."""
    mine = [r for r in rows if r["offered_per_s"] in rates]
    done = sum(r["done"] for r in mine)
    return 1e6 * sum(r["cpu_s"]["nodes"] for r in mine) / done if done else math.nan


def fit(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The nodes' CPU (cores) against the work done (units a second) over the carried steps,
    least squares: the slope is the marginal CPU per unit (µs), the intercept what the nodes
    spend whatever the load (their sweeps, heartbeats, health checks answered), in cores. On a
    machine whose cores are all taken the top steps bend the line down (the nodes get less
    than they would use, and batch more), so it is a reading aid, not a target."""
    points = [
        (r["done"] / r["window_s"], r["cpu_s"]["nodes"] / r["window_s"]) for r in rows if carried(r)
    ]
    if len(points) < 2:
        return {"marginal_us": math.nan, "background_cores": math.nan}
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else math.nan
    return {"marginal_us": round(1e6 * slope), "background_cores": round(my - slope * mx, 3)}


def compare(load: str, one: list[dict[str, Any]], two: list[dict[str, Any]]) -> dict[str, Any]:
    """The three targets for one load, 2 nodes against 1."""
    both = {a["offered_per_s"] for a, b in zip(one, two, strict=True) if carried(a) and carried(b)}
    cpu_one, cpu_two = cpu_per_unit(one, both), cpu_per_unit(two, both)
    cpu_ratio = cpu_two / cpu_one if both else math.nan
    p99 = [
        {"offered_per_s": a["offered_per_s"], "one": a["p99_ms"], "two": b["p99_ms"],
         "ratio": round(b["p99_ms"] / a["p99_ms"], 2) if a["p99_ms"] else None}
        for a, b in zip(one, two, strict=True)
    ]  # fmt: skip
    idle = one[0]["p99_ms"]
    knee = next(
        (
            i
            for i, a in enumerate(one)
            if i > 0 and (a["p99_ms"] > TARGET_KNEE * idle or not carried(a))
        ),
        None,
    )
    knee_row: dict[str, Any] = {"one_idle_p99_ms": idle, "offered_per_s": None, "met": False}
    if knee is not None:
        knee_row |= {
            "offered_per_s": one[knee]["offered_per_s"],
            "one_p99_ms": one[knee]["p99_ms"],
            "two_p99_ms": two[knee]["p99_ms"],
            "two_delivered_share": two[knee]["delivered_share"],
            "limit_ms": round(TARGET_KNEE * idle, 2),
            "met": two[knee]["p99_ms"] <= TARGET_KNEE * idle and carried(two[knee]),
        }
    return {
        "load": load,
        "fit": {"one": fit(one), "two": fit(two)},
        "cpu_per_unit": {
            "steps": sorted(both),
            "one_us": round(cpu_one, 1),
            "two_us": round(cpu_two, 1),
            "ratio": round(cpu_ratio, 3),
            "max": TARGET_CPU_RATIO,
            "met": cpu_ratio <= TARGET_CPU_RATIO,
        },
        "p99_at_same_load": {
            "steps": p99,
            "max": TARGET_P99_RATIO,
            "met": all(x["ratio"] is not None and x["ratio"] <= TARGET_P99_RATIO for x in p99),
        },
        "knee": knee_row,
    }


def print_table(load: str, unit: str, results: dict[str, Any]) -> None:
    print(f"\n{load}: offered {unit}/s through HAProxy")
    head = (
        f"{'config':<10} {'offered':>7} {'done/s':>7} {'done %':>6} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'nodes us':>9} {'haproxy':>8} {'redis':>6} {'pg':>6} {'redis B in/out':>15} "
        f"{'clients':>9} {'cl lag':>7}"
    )
    print(head + f"   (CPU in µs per {unit}; cl lag: clients' loop lag p99, ms)")
    for name, res in results.items():
        for r in res[load]:
            clients = round(1e6 * r["client_cpu_s"] / r["done"]) if r["done"] else None
            redis_bytes = f"{r['redis_bytes_in_per_unit']}/{r['redis_bytes_out_per_unit']}"
            print(
                f"{name:<10} {r['offered_per_s']:>7g} {r['throughput_per_s']:>7} "
                f"{100 * (r['delivered_share'] or 0):>6.1f} {r['p50_ms']:>8} {r['p99_ms']:>8} "
                f"{r['server_us_per_unit']!s:>9} {r['haproxy_us_per_unit']!s:>8} "
                f"{r['redis_us_per_unit']!s:>6} {r['postgres_us_per_unit']!s:>6} "
                f"{redis_bytes:>15} "
                f"{clients!s:>9} {r['client_lag_p99_ms']:>7}"
            )


def print_targets(comparisons: list[dict[str, Any]]) -> None:
    print()
    for c in comparisons:
        cpu, p99, knee = c["cpu_per_unit"], c["p99_at_same_load"], c["knee"]
        print(
            f"target {c['load']} CPU per unit, 2 nodes / 1 node (over {cpu['steps']}): "
            f"{cpu['two_us']} / {cpu['one_us']} µs = {cpu['ratio']} (at most {cpu['max']}): "
            f"{'met' if cpu['met'] else 'MISSED'}"
            + (f"; 1 node with Redis: {cpu['one_redis_us']} µs" if "one_redis_us" in cpu else "")
        )
        f1, f2 = c["fit"]["one"], c["fit"]["two"]
        print(
            f"  (not a target) marginal CPU per unit, one / two nodes: {f1['marginal_us']} / "
            f"{f2['marginal_us']} µs; background, one / two nodes: {f1['background_cores']} / "
            f"{f2['background_cores']} cores"
        )
        ratios = ", ".join(f"{x['offered_per_s']:g}/s: {x['ratio']}" for x in p99["steps"])
        print(
            f"target {c['load']} p99 2 nodes / 1 node at the same offered load ({ratios}) "
            f"(at most {p99['max']}): {'met' if p99['met'] else 'MISSED'}"
        )
        if knee["offered_per_s"] is None:
            print(
                f"target {c['load']} knee: one node's p99 never passed 2 x its idle p99 "
                f"({knee['one_idle_p99_ms']} ms) in these steps: NOT EVALUATED (counts as missed)"
            )
        else:
            print(
                f"target {c['load']} knee: at {knee['offered_per_s']:g}/s one node's p99 is "
                f"{knee['one_p99_ms']} ms (idle {knee['one_idle_p99_ms']} ms); 2 nodes' "
                f"{knee['two_p99_ms']} ms, {100 * (knee['two_delivered_share'] or 0):.1f} % "
                f"delivered (at most {knee['limit_ms']} ms): {'met' if knee['met'] else 'MISSED'}"
            )


def report(results: dict[str, Any], uptimes: list[str]) -> dict[str, Any]:
    """The tables and the targets; the summary for the JSON line."""
    print_table("chat", "message", results)
    print_table("queue", "match", results)
    comparisons = [
        compare(load, results["one"][load], results["two"][load]) for load in ("chat", "queue")
    ]
    if "one+redis" in results:  # the price of the Redis manager alone, beside the second node's
        for c in comparisons:
            steps = set(c["cpu_per_unit"]["steps"])
            alone = cpu_per_unit(results["one+redis"][c["load"]], steps)
            c["cpu_per_unit"]["one_redis_us"] = round(alone, 1)
    print_targets(comparisons)
    met = all(
        c["cpu_per_unit"]["met"] and c["p99_at_same_load"]["met"] and c["knee"]["met"]
        for c in comparisons
    )
    print(f"uptime before: {uptimes[0]}\nuptime after:  {uptimes[1]}")
    print(f"targets met: {met}")
    return {
        "bench": "cluster_bench",
        "configs": list(results),
        "results": results,
        "comparisons": comparisons,
        "targets": {
            "cpu_per_unit_ratio_max": TARGET_CPU_RATIO,
            "p99_ratio_max": TARGET_P99_RATIO,
            "knee_p99_of_one_node_idle_max": TARGET_KNEE,
        },
        "targets_met": met,
        "uptime": uptimes,
        "machine": f"{os.cpu_count()} cores, {platform.python_version()}",
    }


def parse_rates(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short steps; about a minute")
    parser.add_argument("--configs", help="one,one+redis,two (default; quick: one,two)")
    parser.add_argument("--chat-rates", help="offered messages a second, ascending")
    parser.add_argument("--queue-rates", help="doctors freed a second, ascending")
    parser.add_argument("--pairs", type=int, help="chat pairs")
    parser.add_argument("--doctors", type=int, help="queue doctors")
    parser.add_argument("--waiting", type=int, help="patients still waiting after the last step")
    parser.add_argument("--seconds", type=float, help="measuring window of a step")
    parser.add_argument("--warmup", type=float, help="chat: sending before the window")
    parser.add_argument("--workers", type=int, default=2, help="chat client processes")
    parser.add_argument("--queue-workers", type=int, default=2, help="patient processes")
    parser.add_argument("--body-size", type=int, default=60, help="chat filler characters")
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "CONSULT_BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="no run: print the tables and targets of an earlier run's output (its JSON line)",
    )
    args = parser.parse_args()
    if args.report is not None:
        earlier = json.loads(args.report.read_text().strip().splitlines()[-1])
        summary = report(earlier["results"], earlier["uptime"])
        summary |= {"mode": earlier["mode"], "wall_s": earlier["wall_s"], "reported_from": True}
        print(json.dumps(_json_safe(summary), separators=(",", ":")))
        return 0
    q = args.quick
    configs = (args.configs or ("one,two" if q else "one,one+redis,two")).split(",")
    for name in configs:
        if name not in CONFIGS:
            parser.error(f"unknown configuration {name!r}: one of {', '.join(CONFIGS)}")
    if "one" not in configs or "two" not in configs:
        parser.error("--configs must hold one and two (the targets compare them)")
    args.chat_rates = parse_rates(
        args.chat_rates or ("50,500" if q else "50,200,400,700,1000,1400")
    )
    args.queue_rates = parse_rates(args.queue_rates or ("5,25" if q else "5,10,20,40"))
    args.pairs = args.pairs or (30 if q else 100)
    args.doctors = args.doctors or (20 if q else 50)
    args.waiting = args.waiting if args.waiting is not None else (40 if q else 400)
    args.seconds = args.seconds or (1.5 if q else 10.0)
    args.warmup = args.warmup or (0.5 if q else 3.0)
    args.grace = 0.5 if q else 3.0
    args.patience = 15.0 if q else 60.0
    started = time.monotonic()
    load_before = uptime()
    log(f"cluster_bench: {configs}, chat {args.chat_rates}/s, queue {args.queue_rates}/s")
    log(f"uptime before: {load_before}")
    tmp = Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    redis = Redis(tmp) if any(CONFIGS[c][1] for c in configs) else None
    results: dict[str, Any] = {}
    template = None
    try:
        template = seeded_template(args.pg_admin_url, tmp)
        for name in configs:
            log(f"{name}:")
            results[name] = run_config(name, redis, template, args, tmp)
    finally:
        if template is not None:
            template.drop()
        if redis is not None:
            redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    summary = report(results, [load_before, uptime()])
    summary |= {"mode": "quick" if q else "full", "wall_s": round(time.monotonic() - started, 1)}
    print(json.dumps(_json_safe(summary), separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
