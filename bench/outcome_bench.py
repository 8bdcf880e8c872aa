"""Issue and end under load, beside bare transactions writing the same rows.

One command runs, on SQLite and PostgreSQL (``--backend``), ``--doctors`` (50) doctors ending
their consultations at once through a real ``consult serve`` process: each sends Issue and end
(``POST /api/consultations/{id}/outcome``) with a recommendation, a package of 3
e-prescriptions, a referral and sick leave; 10 % of them send the same request again under the
same Idempotency-Key while the first is in flight (a retry after a dropped connection). Each
patient is connected over Socket.IO and waits for ``outcome:issued``.

- **ours**: the time from sending Issue and end to its answer (p50/p99; the retries count as
  requests too), and how long after the doctor's answer the patient's page was told
  (``outcome:issued`` arrival minus the HTTP answer's arrival; both follow the commit, the
  answer by the time it takes to send it).
- **baseline**: the same rows (outcome, recommendation, package, 3 prescriptions, referral,
  sick leave, the consultation ended, an audit row) written by one bare SQLAlchemy Core
  transaction per outcome on the same database, all at once (on SQLite one writer at a time,
  as SQLite allows), timed from the start to each commit.
- **duplicates**: documents beyond one set per consultation, counted in the database after
  the run (must be 0).

Targets (docs/performance.md): issue-and-end p99 at most 3x the baseline's p99; 0 duplicated
documents; patients told within 100 ms (p99).

Usage: python bench/outcome_bench.py [--quick] [--doctors N] [--backend sqlite,postgresql]
                                     [--rounds R]
The last line printed is one JSON object with the figures, the targets and "targets_met".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp  # noqa: E402
import socketio  # noqa: E402
from queue_bench import (  # noqa: E402
    HOST,
    PostgresDatabase,
    ServerProcess,
    consult_serve_argv,
    free_port,
    insert_users,
    pct,
)

TARGET_P99_RATIO = 3.0
TARGET_TOLD_MS = 100.0
RETRIED = 0.10
PRODUCTS = ((241, 60), (242, 30), (358, 5))  # long-term standard products and a pack size


def body(today: date) -> dict[str, Any]:
    return {
        "recommendation": "Rest, fluids; come back if the fever stays over 3 days.",
        "prescriptions": [
            {"product_id": p, "pack_size": size, "dosage_instruction": "1 daily"}
            for p, size in PRODUCTS
        ],
        "referrals": [
            {"kind": "specialist_consultation", "target": "cardiology", "diagnosis": "I10"}
        ],
        "sick_leave": {
            "start": today.isoformat(),
            "end": (today + timedelta(days=4)).isoformat(),
            "recommendation": 2,
            "diagnosis": "J06.9",
        },
    }


async def prepare(database_url: str, n: int) -> list[tuple[int, int, str, str]]:
    """n doctor/patient pairs with an active consultation each (and PESELs): (consultation,
    patient id, patient token, doctor token)."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from consult.outcome.pesel import make_pesel
    from consult.storage import tables as t

    patients, doctors = await insert_users(database_url, n, n)
    now = datetime.now(UTC)
    engine = create_async_engine(database_url)
    pairs = []
    try:
        async with engine.begin() as conn:
            for i, ((pid, ptok), (did, dtok)) in enumerate(zip(patients, doctors, strict=True)):
                pesel = make_pesel(date(1980, 1, 1) + timedelta(days=i), i % 1000, "female")
                await conn.execute(t.users.update().where(t.users.c.id == pid).values(pesel=pesel))
                cid = (
                    await conn.execute(
                        t.consultations.insert()
                        .values(
                            patient_id=pid,
                            doctor_id=did,
                            specialty_code="internal-medicine",
                            form="chat",
                            status="active",
                            created_at=now,
                            started_at=now,
                            rank_at=now,
                            priority=0,
                        )
                        .returning(t.consultations.c.id)
                    )
                ).scalar_one()
                await conn.execute(
                    t.consultation_doctors.insert().values(
                        consultation_id=cid, doctor_id=did, accepted_at=now
                    )
                )
                pairs.append((cid, pid, ptok, dtok))
            await conn.execute(sa.text("SELECT 1"))
    finally:
        await engine.dispose()
    return pairs


async def _listen(conn: Any, url: str, patients: list[tuple[int, str]]) -> None:
    """The patients' pages: each connected, noting when its outcome:issued arrives."""
    told: dict[int, float] = {}
    clients = []
    for cid, token in patients:
        client = socketio.AsyncClient(reconnection=False)

        def on_issued(data: Any, cid: int = cid) -> None:
            told.setdefault(cid, time.monotonic())

        client.on("outcome:issued", on_issued)
        await client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
        clients.append(client)
    conn.send("ready")
    await asyncio.to_thread(conn.recv)  # "stop"
    for client in clients:
        await client.disconnect()
    conn.send(told)


def listen_main(conn: Any, url: str, patients: list[tuple[int, str]]) -> None:
    asyncio.run(_listen(conn, url, patients))


async def ours(url: str, pairs: list[tuple[int, int, str, str]]) -> dict[str, Any]:
    # The patients listen in a process of their own, so that the doctors' requests here do not
    # delay the noting of a push (both read the same CLOCK_MONOTONIC).
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    listener = ctx.Process(
        target=listen_main, args=(child, url, [(c, tok) for c, _, tok, _ in pairs]), daemon=True
    )
    listener.start()
    if not parent.poll(120) or parent.recv() != "ready":
        raise RuntimeError("the patients' sockets did not connect")
    today = datetime.now(UTC).date()
    answered: dict[int, float] = {}
    latencies: list[float] = []
    statuses: list[int] = []
    retries = max(1, round(len(pairs) * RETRIED))
    async with aiohttp.ClientSession() as http:

        async def send(cid: int, dtok: str, key: str, delay: float = 0.0) -> None:
            await asyncio.sleep(delay)
            start = time.monotonic()
            async with http.post(
                f"{url}/api/consultations/{cid}/outcome",
                json=body(today),
                headers={"Authorization": f"Bearer {dtok}", "Idempotency-Key": key},
            ) as response:
                await response.read()
                end = time.monotonic()
                statuses.append(response.status)
            latencies.append(end - start)
            answered.setdefault(cid, end)

        jobs = []
        for n, (cid, _, _, dtok) in enumerate(pairs):
            key = str(uuid.uuid4())
            jobs.append(send(cid, dtok, key))
            if n < retries:
                jobs.append(send(cid, dtok, key, delay=0.005))
        await asyncio.gather(*jobs)
    await asyncio.sleep(2)  # the last pushes arrive
    parent.send("stop")
    told: dict[int, float] = parent.recv() if parent.poll(60) else {}
    listener.join(timeout=10)
    after = sorted(max(0.0, told[c] - answered[c]) for c in told)
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "errors": sum(1 for s in statuses if s != 201),
        "p50_ms": round(1000 * pct(ordered, 50), 1),
        "p99_ms": round(1000 * pct(ordered, 99), 1),
        "told": len(told),
        "told_after_answer_p99_ms": round(1000 * pct(after, 99), 1) if after else None,
    }


async def baseline(database_url: str, pairs: list[tuple[int, int, str, str]]) -> dict[str, Any]:
    """The same rows, one bare Core transaction per outcome, all at once."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from consult.outcome import keys
    from consult.storage import tables as t

    sqlite = database_url.startswith("sqlite")
    engine = create_async_engine(database_url, pool_size=len(pairs) if not sqlite else 5)
    writer = asyncio.Lock()
    today = datetime.now(UTC).date()
    users = {}
    async with engine.connect() as conn:
        found = await conn.execute(
            sa.select(t.consultations.c.id, t.consultations.c.doctor_id).where(
                t.consultations.c.id.in_([p[0] for p in pairs])
            )
        )
        users = dict(found.all())

    async def one(cid: int, pid: int) -> float:
        start = time.monotonic()
        did = users[cid]
        now = datetime.now(UTC)
        common = {"patient_id": pid, "doctor_id": did}

        async def write() -> None:
            async with engine.begin() as conn:
                await conn.execute(
                    sa.select(t.consultations.c.id)
                    .where(t.consultations.c.id == cid)
                    .with_for_update()
                )
                rid = (
                    await conn.execute(
                        t.recommendations.insert()
                        .values(consultation_id=cid, text="Rest", created_at=now, **common)
                        .returning(t.recommendations.c.id)
                    )
                ).scalar_one()
                oid = (
                    await conn.execute(
                        t.outcomes.insert()
                        .values(
                            consultation_id=cid,
                            idempotency_key=str(uuid.uuid4()),
                            request_hash="0" * 64,
                            issued_at=now,
                            recommendation_id=rid,
                            **common,
                        )
                        .returning(t.outcomes.c.id)
                    )
                ).scalar_one()
                docs = {"consultation_id": cid, "outcome_id": oid, "issued_at": now, **common}
                kid = (
                    await conn.execute(
                        t.prescription_packages.insert()
                        .values(key=keys.new_key(), access_code=keys.new_access_code(), **docs)
                        .returning(t.prescription_packages.c.id)
                    )
                ).scalar_one()
                await conn.execute(
                    t.prescriptions.insert(),
                    [
                        {
                            "package_id": kid,
                            "position": n,
                            "product_id": product,
                            "product_name": "x",
                            "substance": "x",
                            "strength": "x",
                            "form": "x",
                            "category": "standard",
                            "long_term_eligible": True,
                            "pack_size": size,
                            "packs": 1,
                            "dosage_instruction": "1 daily",
                            "payment_level": "100%",
                            "issued_on": today,
                            "validity_days": 30,
                            "valid_until": today + timedelta(days=30),
                            **common,
                        }
                        for n, (product, size) in enumerate(PRODUCTS)
                    ],
                )
                await conn.execute(
                    t.referrals.insert().values(
                        key=keys.new_key(),
                        access_code=keys.new_access_code(),
                        position=0,
                        kind="specialist_consultation",
                        target="cardiology",
                        diagnosis_code="I10",
                        diagnosis_title="Essential (primary) hypertension",
                        reason="",
                        priority="routine",
                        **docs,
                    )
                )
                await conn.execute(
                    t.sick_leaves.insert().values(
                        start=today,
                        end=today + timedelta(days=4),
                        recommendation=2,
                        diagnosis_code="J06.9",
                        diagnosis_title="Acute upper respiratory infection, unspecified",
                        letter_codes=[],
                        **docs,
                    )
                )
                await conn.execute(
                    t.consultations.update()
                    .where(t.consultations.c.id == cid)
                    .values(status="ended", ended_at=now, ended_by=did)
                )
                await conn.execute(
                    t.audit_log.insert().values(
                        at=now,
                        actor_id=did,
                        actor_role="doctor",
                        action="outcome.issue",
                        patient_id=pid,
                        consultation_id=cid,
                        allowed=True,
                    )
                )

        if sqlite:
            async with writer:
                await write()
        else:
            await write()
        return time.monotonic() - start

    try:
        latencies = sorted(await asyncio.gather(*(one(cid, pid) for cid, pid, _, _ in pairs)))
    finally:
        await engine.dispose()
    return {
        "p50_ms": round(1000 * pct(latencies, 50), 1),
        "p99_ms": round(1000 * pct(latencies, 99), 1),
    }


async def duplicates(database_url: str, consultations: int) -> int:
    """Documents beyond one set per consultation (1 outcome, 1 package, 3 prescriptions, 1
    referral, 1 sick leave)."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from consult.storage import tables as t

    engine = create_async_engine(database_url)
    expected = {
        t.outcomes: 1,
        t.prescription_packages: 1,
        t.prescriptions: len(PRODUCTS),
        t.referrals: 1,
        t.sick_leaves: 1,
    }
    extra = 0
    try:
        async with engine.connect() as conn:
            for table, per in expected.items():
                n = (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar()
                extra += max(0, int(n or 0) - per * consultations)
    finally:
        await engine.dispose()
    return extra


def run_backend(backend: str, doctors: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    port = free_port()
    url = f"http://{HOST}:{port}"
    pg = None
    if backend == "postgresql":
        pg = PostgresDatabase(args.pg_admin_url)
        database_url = pg.create()
    else:
        database_url = f"sqlite+aiosqlite:///{tmp / f'outcome-{time.time_ns()}.db'}"
    env = dict(os.environ) | {"CONSULT_MAX_CONNECTIONS_PER_ADDRESS": "0"}
    env.pop("CONSULT_REDIS_URL", None)
    argv = consult_serve_argv(port, database_url)
    name = f"outcome-{backend}-{time.time_ns()}"
    server = ServerProcess(name, argv, env, tmp / f"{name}.log")
    try:
        server.start(url)
        pairs = asyncio.run(prepare(database_url, 2 * doctors))
        ours_pairs, base_pairs = pairs[:doctors], pairs[doctors:]
        mine = asyncio.run(ours(url, ours_pairs))
        extra = asyncio.run(duplicates(database_url, doctors))
        base = asyncio.run(baseline(database_url, base_pairs))
    finally:
        server.stop()
        if pg is not None:
            pg.drop()
    return {
        "backend": backend,
        "doctors": doctors,
        "ours": mine,
        "baseline": base,
        "duplicates": extra,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 doctors, one round")
    parser.add_argument("--doctors", type=int, default=50)
    parser.add_argument("--backend", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--pg-admin-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    )
    args = parser.parse_args()
    doctors = 10 if args.quick else args.doctors
    rounds = 1 if args.quick else args.rounds
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backend.split(","):
            runs = [run_backend(backend, doctors, args, Path(tmp)) for _ in range(rounds)]
            for run in runs:
                print(json.dumps(run))
            ratios = [r["ours"]["p99_ms"] / max(r["baseline"]["p99_ms"], 0.1) for r in runs]
            told = [r["ours"]["told_after_answer_p99_ms"] or 0.0 for r in runs]
            results[backend] = {
                "p99_ms": statistics.median(r["ours"]["p99_ms"] for r in runs),
                "baseline_p99_ms": statistics.median(r["baseline"]["p99_ms"] for r in runs),
                "p99_ratio": round(statistics.median(ratios), 2),
                "told_p99_ms": statistics.median(told),
                "duplicates": sum(r["duplicates"] for r in runs),
                "errors": sum(r["ours"]["errors"] for r in runs),
                "told_all": all(r["ours"]["told"] == doctors for r in runs),
            }
    print(f"{'backend':<11} {'p99 ms':>8} {'base p99':>9} {'ratio':>6} {'told p99':>9} {'dup':>4}")
    for backend, r in results.items():
        print(
            f"{backend:<11} {r['p99_ms']:>8} {r['baseline_p99_ms']:>9} {r['p99_ratio']:>6} "
            f"{r['told_p99_ms']:>9} {r['duplicates']:>4}"
        )
    met = all(
        r["p99_ratio"] <= TARGET_P99_RATIO
        and r["duplicates"] == 0
        and r["errors"] == 0
        and r["told_all"]
        and r["told_p99_ms"] <= TARGET_TOLD_MS
        for r in results.values()
    )
    print(
        json.dumps(
            {
                "bench": "outcome",
                "doctors": doctors,
                "rounds": rounds,
                "results": results,
                "targets": {
                    "p99_ratio_max": TARGET_P99_RATIO,
                    "duplicates": 0,
                    "told_p99_ms_max": TARGET_TOLD_MS,
                },
                "targets_met": met,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
