"""What one statement costs the server's CPU, by the way it is run: the figures behind running
SQLite on the event loop's thread and building hot statements once (docs/performance.md).

Each way runs the same indexed one-row SELECT (a consultation by id, with a status filter, as
the queue does) ``--n`` times inside one transaction and reports the process CPU time per
statement (``time.process_time``: the machine's other load does not count, only what this
process spends), median of ``--repeats`` rounds, interleaved:

- **baseline**: SQLAlchemy's asyncio engine over aiosqlite (each statement handed to
  aiosqlite's thread and back), the statement built per call: how consult ran until 117a077;
- **inline**: the asyncio engine over ``inline_sqlite`` (the statement runs on the loop's
  thread; SQLAlchemy's greenlet and awaits remain), built per call;
- **uow**: a consult unit of work (``Database.reader()``: a synchronous connection on SQLite),
  built per call;
- **uow prebuilt**: the same with the statement built once with bind parameters (as the hot
  paths now are);
- **raw sqlite3**: the driver alone, for scale.

On PostgreSQL (``--backend postgresql``), ``baseline`` and ``inline`` do not apply: ``uow`` and
``uow prebuilt`` are asyncpg through SQLAlchemy's asyncio engine, and the round trip to the
server is not CPU time of this process.

Targets (set with this bench, after the change it measures; see docs/performance.md): on
SQLite, a unit of work's statement costs at most 0.5x the baseline's CPU built per call and
0.25x prebuilt; on both backends, a prebuilt statement at most 0.75x one built per call.

Usage: python bench/statement_bench.py [--quick] [--n N] [--repeats R] [--backend sqlite|postgresql]
The last line printed is one JSON object with the figures, the targets and "targets_met".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from consult.events import EventBus  # noqa: E402
from consult.storage import tables as t  # noqa: E402
from consult.storage.engine import create_engine  # noqa: E402
from consult.storage.uow import Database  # noqa: E402
from tests import backends  # noqa: E402

_C = t.consultations.c
STATUSES = ["waiting", "offered"]
PREBUILT = sa.select(_C.id, _C.status).where(_C.id == sa.bindparam("cid"), _C.status.in_(STATUSES))
RAW = "SELECT id, status FROM consultations WHERE id = ? AND status IN (?, ?)"


def built(cid: int) -> sa.Select[Any]:
    return sa.select(_C.id, _C.status).where(_C.id == cid, _C.status.in_(STATUSES))


async def per_statement(run: Callable[[int], Awaitable[None]], n: int) -> float:
    await run(1)  # compile and cache outside the timing
    started = time.process_time()
    for i in range(n):
        await run(i)
    return (time.process_time() - started) / n * 1e6


async def ways_sqlite(path: Path, n: int) -> dict[str, float]:
    url = f"sqlite+aiosqlite:///{path}"
    out: dict[str, float] = {}

    baseline = create_async_engine(url)  # aiosqlite's own threads: the old way
    async with baseline.connect() as conn:

        async def run_baseline(i: int) -> None:
            (await conn.execute(built(i))).first()

        out["baseline"] = await per_statement(run_baseline, n)
    await baseline.dispose()

    inline = create_engine(url)
    async with inline.connect() as conn:

        async def run_inline(i: int) -> None:
            (await conn.execute(built(i))).first()

        out["inline"] = await per_statement(run_inline, n)
    await inline.dispose()

    out |= await ways_uow(url, n)

    raw = sqlite3.connect(path)

    async def run_raw(i: int) -> None:
        raw.execute(RAW, (i, *STATUSES)).fetchone()

    out["raw sqlite3"] = await per_statement(run_raw, n)
    raw.close()
    return out


async def ways_uow(url: str, n: int) -> dict[str, float]:
    db = Database(create_engine(url), EventBus())
    out: dict[str, float] = {}
    async with db.reader() as uow:

        async def run_uow(i: int) -> None:
            (await uow.conn.execute(built(i))).first()

        async def run_prebuilt(i: int) -> None:
            (await uow.conn.execute(PREBUILT, {"cid": i})).first()

        out["uow"] = await per_statement(run_uow, n)
        out["uow prebuilt"] = await per_statement(run_prebuilt, n)
    await db.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer statements; seconds")
    parser.add_argument("--n", type=int, default=None, help="statements per round")
    parser.add_argument("--repeats", type=int, default=None, help="rounds (median reported)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    n = args.n or (1000 if args.quick else 5000)
    repeats = args.repeats or (3 if args.quick else 7)

    rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="statement-bench-") as tmp:
        if args.backend == "sqlite":
            path = Path(backends.sqlite_template(Path(tmp)))
            for _ in range(repeats):
                rounds.append(asyncio.run(ways_sqlite(path, n)))
        else:
            for url in backends.postgres_database():
                for _ in range(repeats):
                    rounds.append(asyncio.run(ways_uow(url, n)))

    figures = {way: round(statistics.median(r[way] for r in rounds), 1) for way in rounds[0]}
    print(f"CPU per statement, median of {repeats} rounds of {n} ({args.backend}):")
    base = figures.get("baseline")
    for way, us in figures.items():
        ratio = f"  {us / base:.2f}x baseline" if base else ""
        print(f"  {way:<14} {us:8.1f} us{ratio}")

    targets: dict[str, dict[str, Any]] = {}

    def target(name: str, value: float, limit: float) -> None:
        targets[name] = {"value": round(value, 2), "max": limit, "met": value <= limit}

    if base:
        target("uow_vs_baseline", figures["uow"] / base, 0.5)
        target("uow_prebuilt_vs_baseline", figures["uow prebuilt"] / base, 0.25)
    target("prebuilt_vs_built", figures["uow prebuilt"] / figures["uow"], 0.75)
    for name, target in targets.items():
        met = "met" if target["met"] else "MISSED"
        print(f"target {name}: {target['value']} (at most {target['max']}): {met}")
    summary = {
        "bench": "statement_bench",
        "backend": args.backend,
        "mode": "quick" if args.quick else "full",
        "n": n,
        "repeats": repeats,
        "cpu_us_per_statement": figures,
        "targets": targets,
        "targets_met": all(t["met"] for t in targets.values()),
    }
    print(json.dumps(summary, separators=(",", ":")))


if __name__ == "__main__":
    main()
