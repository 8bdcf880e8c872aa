"""The patient's record at length: the timeline's first page, the FHIR bundle and the archive
of a patient with a long history, beside bare reads of the same rows and files in the same run.

One command runs, on SQLite and PostgreSQL (``--backend``; PostgreSQL on a database of the
bench's own, created and dropped), a real ``consult serve`` over real HTTP, as the other
benches do, with one patient's history inserted straight into its tables (record_seed.py: 300
consultations, 10,000 chat messages, 600 e-prescriptions, 50 documents of 2 MiB, and what goes
with them; on PostgreSQL then ANALYZEd, as autovacuum would):

- **Timeline** (``GET /api/patients/me/timeline``, the first page: 20 items, no filter): the
  time from sending the request to its last byte, p50/p99, beside the **baseline**: the same
  rows read by bare SQLAlchemy Core statements on an engine of the bench's own (which items:
  one UNION ALL of each kind's newest, as the timeline picks them; then each kind's rows with
  the doctors, forms, prescriptions and shares they name).
- **FHIR bundle** (``GET /api/patients/me/fhir``, the whole record; the transcripts' text is not
  in it), likewise, beside the rows the export is made from (the patient, the consultations,
  their doctors and forms, recommendations, follow-ups, recordings, packages with their
  prescriptions and renewals, referrals, sick leave, the doctors, the documents and where they
  were shared, the results and their values).

  Ours and the baseline alternate request by request, so the machine's load falls on both
  alike. Each also reports its CPU per read: the server's (from /proc around each request)
  beside the baseline's own, which the load on a shared machine moves much less.
- **Archive** (``GET /api/patients/me/archive``, a streamed ZIP, read over a plain socket): the
  rate at which the record's files come through the stream (their bytes over the time from the
  first file's first byte to the last's, from the ZIP's own offsets and the arrival time of each
  read), beside the **disk read rate**: the same files read straight from the disk, a 256 KiB
  chunk at a time, as the server reads them. Both cold: each file's pages are dropped from the
  page cache (``posix_fadvise(DONTNEED)``) before each. The warm rates (the files in the page
  cache) and the whole archive's time (the bundle, the printouts made as their turn comes) are
  reported beside, with no target.

Targets (docs/performance.md): timeline page p99 at most 2x the baseline's; FHIR bundle p99 at
most 3x; the archive's files at least 50 % of the disk read rate.

Usage: python bench/record_bench.py [--quick] [--backend sqlite,postgresql] [--pages N]
                                    [--requests N] [--archives N]
The last line printed is one JSON object with the figures, the targets and "targets_met".
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import zipfile
from bisect import bisect_left, bisect_right
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp  # noqa: E402
from queue_bench import (  # noqa: E402
    HOST,
    PostgresDatabase,
    ServerProcess,
    consult_serve_argv,
    free_port,
    pct,
)
from record_seed import Seeded, Shape, seed  # noqa: E402

TARGET_TIMELINE_P99_RATIO = 2.0
TARGET_FHIR_P99_RATIO = 3.0
TIMELINE_PAGE = 20  # the timeline's default page (consult/timeline/schemas.py)
TARGET_ARCHIVE_RATE = 0.5
CHUNK = 256 * 1024  # the archive's (consult/archive/zipping.py)
MB = 1_000_000


# --- the baseline: the FHIR export's rows, read by bare Core statements ------------------------


async def bare_record(conn: Any, patient_id: int) -> int:
    """Every row the FHIR export of ``patient_id`` is made from; how many."""
    import sqlalchemy as sa

    from consult.storage import tables as t

    c, u = t.consultations.c, t.users
    doctor = u.alias("doctor")
    patient = (
        await conn.execute(sa.select(u.c.id, u.c.name, u.c.pesel).where(u.c.id == patient_id))
    ).all()
    consultations = (
        await conn.execute(
            sa.select(
                t.consultations,
                u.c.name.label("patient_name"),
                doctor.c.name.label("doctor_name"),
                t.specialties.c.name.label("specialty_name"),
            )
            .join(u, u.c.id == c.patient_id)
            .outerjoin(doctor, doctor.c.id == c.doctor_id)
            .join(t.specialties, t.specialties.c.code == c.specialty_code)
            .where(c.patient_id == patient_id, c.status != "cancelled")
        )
    ).all()
    ids = [r.id for r in consultations]
    found = [patient, consultations]
    for table in (t.consultation_doctors, t.consultation_forms, t.recommendations, t.recordings):
        found.append(
            (await conn.execute(sa.select(table).where(table.c.consultation_id.in_(ids)))).all()
        )
    f = t.follow_ups
    found.append(
        (
            await conn.execute(
                sa.select(f, doctor.c.name)
                .join(doctor, doctor.c.id == f.c.doctor_id)
                .where(f.c.consultation_id.in_(ids))
            )
        ).all()
    )
    k, p = t.prescription_packages, t.prescriptions
    packages = (
        await conn.execute(
            sa.select(k, doctor.c.name, doctor.c.licence_number)
            .join(doctor, doctor.c.id == k.c.doctor_id)
            .where(k.c.patient_id == patient_id)
        )
    ).all()
    items = (
        await conn.execute(sa.select(p).where(p.c.package_id.in_([r.id for r in packages])))
    ).all()
    renewals = t.renewal_requests
    found += [
        packages,
        items,
        (
            await conn.execute(
                sa.select(renewals.c.prescription_id, renewals.c.status).where(
                    renewals.c.prescription_id.in_([i.id for i in items])
                )
            )
        ).all(),
    ]
    for table in (t.referrals, t.sick_leaves):
        found.append(
            (
                await conn.execute(
                    sa.select(table, doctor.c.name, doctor.c.licence_number)
                    .join(doctor, doctor.c.id == table.c.doctor_id)
                    .where(table.c.patient_id == patient_id)
                )
            ).all()
        )
    doctor_ids = {r.doctor_id for r in found[2]} | {r.doctor_id for r in packages}
    found.append(
        (
            await conn.execute(
                sa.select(u.c.id, u.c.name, u.c.licence_number).where(u.c.id.in_(doctor_ids))
            )
        ).all()
    )
    d, m = t.documents, t.messages
    found.append(
        (
            await conn.execute(
                sa.select(d).where(d.c.patient_id == patient_id, d.c.deleted_at.is_(None))
            )
        ).all()
    )
    found.append(
        (
            await conn.execute(
                sa.select(m.c.document_id, m.c.consultation_id)
                .join(t.consultations)
                .where(c.patient_id == patient_id, m.c.document_id.is_not(None))
                .distinct()
            )
        ).all()
    )
    results = (
        await conn.execute(sa.select(t.results).where(t.results.c.patient_id == patient_id))
    ).all()
    o = t.result_observations
    found += [
        results,
        (await conn.execute(sa.select(o).where(o.c.result_id.in_([r.id for r in results])))).all(),
    ]
    return sum(len(rows) for rows in found)


async def bare_timeline(conn: Any, patient_id: int, limit: int) -> int:
    """The rows of the timeline's first page (``limit`` items, newest first): which items (one
    UNION ALL of each kind's newest, as the timeline's page.py picks them), then each kind's
    rows with what they name (doctors, forms, prescriptions, where a document was shared);
    how many rows."""
    import sqlalchemy as sa

    from consult.storage import tables as t

    c, u = t.consultations.c, t.users
    doctor = u.alias("doctor")
    in_record = (c.patient_id == patient_id, c.status != "cancelled")
    kinds: list[tuple[str, sa.Table, Any, Any, tuple[Any, ...]]] = [
        ("consultation", t.consultations, t.consultations, c.created_at, in_record),
        (
            "booking",
            t.bookings,
            t.bookings.join(t.slots),
            t.slots.c.starts_at,
            (t.bookings.c.patient_id == patient_id,),
        ),
        (
            "document",
            t.documents,
            t.documents,
            t.documents.c.created_at,
            (t.documents.c.patient_id == patient_id, t.documents.c.deleted_at.is_(None)),
        ),
        (
            "recording",
            t.recordings,
            t.recordings.join(t.consultations),
            t.recordings.c.started_at,
            in_record,
        ),
        (
            "recommendation",
            t.recommendations,
            t.recommendations.join(t.consultations),
            t.recommendations.c.created_at,
            (t.recommendations.c.patient_id == patient_id, *in_record),
        ),
    ]
    for name, table, at in (
        ("prescription", t.prescription_packages, "issued_at"),
        ("referral", t.referrals, "issued_at"),
        ("sick_leave", t.sick_leaves, "issued_at"),
        ("follow_up", t.follow_ups, "asked_at"),
        ("renewal", t.renewal_requests, "requested_at"),
        ("rating", t.ratings, "rated_at"),
    ):
        kinds.append((name, table, table, table.c[at], (table.c.patient_id == patient_id,)))
    parts = []
    for rank, (_, table, froms, at, where) in enumerate(kinds):
        inner = (
            sa.select(
                at.label("at"), sa.literal_column(str(rank)).label("rank"), table.c.id.label("id")
            )
            .select_from(froms)
            .where(*where)
            .order_by(at.desc(), table.c.id.desc())
            .limit(limit + 1)
            .subquery()
        )
        parts.append(sa.select(inner.c.at, inner.c.rank, inner.c.id))
    page = sa.union_all(*parts).subquery().select()
    p = page.selected_columns
    items = (
        await conn.execute(page.order_by(p.at.desc(), p.rank, p.id.desc()).limit(limit + 1))
    ).all()
    ids: dict[str, list[int]] = {}
    for item in items[:limit]:
        ids.setdefault(kinds[int(item.rank)][0], []).append(item.id)
    found = [items]

    async def rows(statement: Any) -> list[Any]:
        got = (await conn.execute(statement)).all()
        found.append(got)
        return got

    for name, table, *_ in kinds:
        wanted = ids.get(name)
        if not wanted:
            continue
        if name == "consultation":
            await rows(
                sa.select(
                    t.consultations,
                    u.c.name.label("patient_name"),
                    doctor.c.name.label("doctor_name"),
                    t.specialties.c.name.label("specialty_name"),
                )
                .join(u, u.c.id == c.patient_id)
                .outerjoin(doctor, doctor.c.id == c.doctor_id)
                .join(t.specialties)
                .where(c.id.in_(wanted))
            )
            f = t.consultation_forms
            await rows(sa.select(f).where(f.c.consultation_id.in_(wanted)))
        elif name == "document":
            m = t.messages.c
            await rows(sa.select(table).where(table.c.id.in_(wanted)))
            await rows(
                sa.select(m.document_id, m.consultation_id)
                .where(m.document_id.in_(wanted))
                .distinct()
            )
        elif name == "prescription":
            k, q = t.prescription_packages, t.prescriptions
            await rows(
                sa.select(k, doctor.c.name, doctor.c.licence_number)
                .join(doctor, doctor.c.id == k.c.doctor_id)
                .where(k.c.id.in_(wanted))
            )
            items = await rows(sa.select(q).where(q.c.package_id.in_(wanted)))
            r = t.renewal_requests.c
            await rows(
                sa.select(r.prescription_id, r.status).where(
                    r.prescription_id.in_([i.id for i in items])
                )
            )
        elif "doctor_id" in table.c:
            await rows(
                sa.select(table, doctor.c.name, doctor.c.licence_number)
                .join(doctor, doctor.c.id == table.c.doctor_id)
                .where(table.c.id.in_(wanted))
            )
        else:
            await rows(sa.select(table).where(table.c.id.in_(wanted)))
    return sum(len(r) for r in found)


# --- one backend -------------------------------------------------------------------------------


@dataclass
class Timed:
    """One side's calls: their times (seconds), the CPU they cost (seconds, all calls), and
    what the last one returned (bytes or rows)."""

    times: list[float] = field(default_factory=list)
    cpu: float = 0.0
    last: int = 0

    def figures(self) -> dict[str, float]:
        ordered = sorted(self.times)
        return {
            "p50_ms": round(1000 * pct(ordered, 50), 1),
            "p99_ms": round(1000 * pct(ordered, 99), 1),
            "cpu_ms": round(1000 * self.cpu / len(ordered), 1),
        }


async def paired(
    ours: Callable[[], Awaitable[int]],
    bare: Callable[[], Awaitable[int]],
    server_cpu: Callable[[], float],
    n: int,
    warm: int,
) -> tuple[Timed, Timed]:
    """``n`` timed calls of each, alternating (which goes first alternates too), after ``warm``
    untimed ones. The CPU of ours is the server's (its process's, read from /proc around each
    request), the baseline's this process's."""
    for _ in range(warm):
        await ours()
        await bare()
    mine, base = Timed(), Timed()
    for i in range(n):
        pair = [(ours, mine, server_cpu), (bare, base, time.process_time)]
        for call, into, clock in pair if i % 2 == 0 else reversed(pair):
            cpu = clock()
            start = time.perf_counter()
            into.last = await call()
            into.times.append(time.perf_counter() - start)
            into.cpu += clock() - cpu
    return mine, base


def compared(mine: Timed, base: Timed) -> dict[str, Any]:
    ours, baseline = mine.figures(), base.figures()
    return {
        "ours": ours,
        "baseline": baseline,
        "p99_ratio": round(ours["p99_ms"] / max(baseline["p99_ms"], 0.1), 2),
        "p50_ratio": round(ours["p50_ms"] / max(baseline["p50_ms"], 0.1), 2),
        "cpu_ratio": round(ours["cpu_ms"] / max(baseline["cpu_ms"], 0.1), 2),
    }


Bare = Callable[[Any, int], Awaitable[int]]


async def reads(
    url: str,
    path: str,
    database_url: str,
    bare: Bare,
    seeded: Seeded,
    server: ServerProcess,
    n: int,
    warm: int,
) -> dict[str, Any]:
    """GET ``path`` as the patient, beside ``bare`` reading the same rows on an engine of the
    bench's own, alternating."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    headers = {"Authorization": f"Bearer {seeded.token}"}
    try:
        async with aiohttp.ClientSession() as http:

            async def ours() -> int:
                async with http.get(url + path, headers=headers) as response:
                    body = await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{path}: {response.status} {body[:300]!r}")
                return len(body)

            async def baseline() -> int:
                async with engine.connect() as conn:
                    return await bare(conn, seeded.patient_id)

            mine, base = await paired(ours, baseline, server.cpu_s, n, warm)
            async with http.get(url + path, headers=headers) as response:
                answer = await response.json(content_type=None)
    finally:
        await engine.dispose()
    listed = len(answer.get("items") or answer.get("entry") or ())
    if not listed:
        raise RuntimeError(f"{path} listed nothing")
    return {
        "requests": n,
        "bytes": mine.last,
        "items": listed,
        "rows": base.last,
        **compared(mine, base),
    }


def drop_cache(files: list[Path]) -> None:
    """The files' pages out of the page cache (they were fsynced: clean pages go)."""
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def disk_read(files: list[Path]) -> float:
    """The files read in order, a chunk at a time, as the archive reads them: bytes a second."""
    start = time.perf_counter()
    total = 0
    for path in files:
        with path.open("rb") as source:
            while chunk := source.read(CHUNK):
                total += len(chunk)
    return total / (time.perf_counter() - start)


def download(
    port: int, path: str, token: str, size_hint: int
) -> tuple[bytes, list[tuple[int, float]]]:
    """One GET over a plain socket, read with ``recv_into`` a buffer made beforehand: the
    answer's raw bytes (status line, headers, chunked body) and when each read ended (bytes
    so far, time). aiohttp's client reads a stream at a third of the rate a browser or curl
    does on this machine; this reads as fast as they do, so the figure is the server's."""
    buffer = bytearray(size_hint)
    view = memoryview(buffer)
    got = 0
    arrived: list[tuple[int, float]] = []
    with socket.create_connection((HOST, port)) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        while True:
            if got == len(buffer):
                view.release()
                buffer.extend(bytes(len(buffer)))
                view = memoryview(buffer)
            n = sock.recv_into(view[got:], 1 << 20)
            if not n:
                break
            got += n
            arrived.append((got, time.perf_counter()))
    view.release()
    return bytes(buffer[:got]), arrived


def unchunk(raw: bytes) -> tuple[bytes, list[tuple[int, int]]]:
    """The body of an HTTP/1.1 answer with a chunked body, and where each chunk's data starts
    (body offset, raw offset)."""
    head, _, _ = raw.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if b" 200 " not in status or b"chunked" not in head.lower():
        raise RuntimeError(f"archive: {status.decode(errors='replace')}")
    at = len(head) + 4
    parts: list[bytes] = []
    starts: list[tuple[int, int]] = []
    body = 0
    while True:
        line_end = raw.index(b"\r\n", at)
        size = int(raw[at:line_end].split(b";")[0], 16)
        at = line_end + 2
        if size == 0:
            break
        starts.append((body, at))
        parts.append(raw[at : at + size])
        body += size
        at += size + 2
    return b"".join(parts), starts


def archive(port: int, seeded: Seeded) -> dict[str, Any]:
    """One archive, streamed: the whole answer's time and size, and the rate of its files'
    span (from the first stored file's local header to the end of the last one's data)."""
    start = time.perf_counter()
    raw, arrived = download(
        port, "/api/patients/me/archive", seeded.token, seeded.file_bytes + 64 * 1024 * 1024
    )
    end = time.perf_counter()
    data, starts = unchunk(raw)
    entries = sorted(zipfile.ZipFile(io.BytesIO(data)).infolist(), key=lambda i: i.header_offset)
    files = [i for i in entries if i.filename.startswith(("documents/", "recordings/"))]
    if sum(i.file_size for i in files) != seeded.file_bytes:
        raise RuntimeError("the archive's files do not add up to the record's")
    after = entries.index(files[-1]) + 1
    first = files[0].header_offset
    last = entries[after].header_offset if after < len(entries) else len(data)
    counts = [n for n, _ in arrived]
    bodies = [b for b, _ in starts]

    def at(offset: int) -> float:
        """When the body's byte at ``offset`` had arrived."""
        body, raw_start = starts[bisect_right(bodies, offset) - 1]
        return arrived[bisect_left(counts, raw_start + offset - body + 1)][1]

    span = at(last - 1) - at(first)
    return {
        "seconds": end - start,
        "first_byte_s": arrived[0][1] - start,
        "bytes": len(data),
        "files_rate": (last - first) / span,
        "after_files_s": end - at(last - 1),
    }


def archives(port: int, seeded: Seeded, rounds: int, warm: bool) -> dict[str, Any]:
    """``rounds`` of: the files read cold from the disk, a cold archive; then (``warm``) the
    files read again from the page cache, and an archive of files in the cache."""
    runs: list[dict[str, float]] = []
    for _ in range(rounds):
        drop_cache(seeded.files)
        run = {"disk_cold": disk_read(seeded.files)}
        drop_cache(seeded.files)
        cold = archive(port, seeded)
        run |= {
            "files_cold": cold["files_rate"],
            "archive_s": cold["seconds"],
            "first_byte_s": cold["first_byte_s"],
            "after_files_s": cold["after_files_s"],
            "archive_mb": cold["bytes"] / MB,
        }
        if warm:
            run["disk_warm"] = disk_read(seeded.files)
            run["files_warm"] = archive(port, seeded)["files_rate"]
        runs.append(run)
        print(json.dumps({"archive_round": {k: round(v, 2) for k, v in run.items()}}))

    def med(key: str, scale: float = 1.0, digits: int = 2) -> float | None:
        if key not in runs[0]:
            return None
        return round(statistics.median(r[key] for r in runs) / scale, digits)

    def ratio(files: str, disk: str) -> float | None:
        if files not in runs[0]:
            return None
        return round(statistics.median(r[files] / r[disk] for r in runs), 2)

    return {
        "rounds": rounds,
        "files": len(seeded.files),
        "file_mb": round(seeded.file_bytes / MB, 1),
        "disk_cold_mb_s": med("disk_cold", MB, 0),
        "files_cold_mb_s": med("files_cold", MB, 0),
        "cold_ratio": ratio("files_cold", "disk_cold"),
        "disk_warm_mb_s": med("disk_warm", MB, 0),
        "files_warm_mb_s": med("files_warm", MB, 0),
        "warm_ratio": ratio("files_warm", "disk_warm"),
        "archive_mb": med("archive_mb", 1.0, 1),
        "archive_s": med("archive_s"),
        "first_byte_s": med("first_byte_s"),
        "after_files_s": med("after_files_s"),
    }


def run_backend(backend: str, shape: Shape, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    port = free_port()
    url = f"http://{HOST}:{port}"
    pg = None
    if backend == "postgresql":
        pg = PostgresDatabase(args.pg_admin_url)
        database_url = pg.create()
    else:
        database_url = f"sqlite+aiosqlite:///{tmp / f'record-{time.time_ns()}.db'}"
    documents = tmp / f"documents-{backend}-{time.time_ns()}"
    # One reader asking again and again: the per-user limits would refuse it.
    env = dict(os.environ) | {
        "CONSULT_MAX_CONNECTIONS_PER_ADDRESS": "0",
        "CONSULT_READ_RATE": "100000",
        "CONSULT_READ_BURST": "100000",
        "CONSULT_ARCHIVE_PER_HOUR": "100000",
        "CONSULT_ARCHIVE_BURST": "1000",
        "CONSULT_DOCUMENTS_DIR": str(documents),
    }
    env.pop("CONSULT_REDIS_URL", None)
    argv = consult_serve_argv(port, database_url)
    name = f"record-{backend}-{time.time_ns()}"
    server = ServerProcess(name, argv, env, tmp / f"{name}.log")
    try:
        server.start(url)
        started = time.perf_counter()
        seeded = asyncio.run(seed(database_url, documents, shape))
        seeding = time.perf_counter() - started
        measure = functools.partial(
            reads, database_url=database_url, seeded=seeded, server=server, warm=args.warm
        )
        page = asyncio.run(
            measure(
                url,
                f"/api/patients/me/timeline?limit={TIMELINE_PAGE}",
                bare=functools.partial(bare_timeline, limit=TIMELINE_PAGE),
                n=args.pages,
            )
        )
        bundle = asyncio.run(
            measure(url, "/api/patients/me/fhir", bare=bare_record, n=args.requests)
        )
        zipped = archives(port, seeded, args.archives, warm=not args.quick)
    finally:
        server.stop()
        if pg is not None:
            pg.drop()
    return {
        "backend": backend,
        "seed_s": round(seeding, 1),
        "rows": seeded.rows,
        "timeline": page,
        "fhir": bundle,
        "archive": zipped,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a third of the history, fewer reads, one cold archive"
    )
    parser.add_argument("--backend", default="sqlite,postgresql")
    parser.add_argument("--pages", type=int, default=500, help="timed timeline pages of each")
    parser.add_argument("--requests", type=int, default=200, help="timed FHIR reads of each")
    parser.add_argument("--warm", type=int, default=5, help="untimed reads of each first")
    parser.add_argument("--archives", type=int, default=3, help="rounds of archives")
    parser.add_argument(
        "--pg-admin-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    )
    args = parser.parse_args()
    shape = Shape()
    if args.quick:
        args.pages, args.requests, args.warm, args.archives = 60, 15, 2, 1
        # A third of the history (the printouts alone take seconds): the same kinds of rows.
        shape = Shape(
            consultations=100,
            messages=3_400,
            prescriptions=200,
            documents=20,
            document_bytes=1024 * 1024,
        )
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backend.split(","):
            run = run_backend(backend, shape, args, Path(tmp))
            print(json.dumps(run))
            results[backend] = run
    print(
        f"{'backend':<11} {'read':<9} {'p50 ms':>7} {'p99 ms':>7} {'base p50':>9} "
        f"{'base p99':>9} {'x p99':>6} {'x p50':>6} {'x CPU':>6}"
    )
    for backend, r in results.items():
        for read in ("timeline", "fhir"):
            f = r[read]
            print(
                f"{backend:<11} {read:<9} {f['ours']['p50_ms']:>7} {f['ours']['p99_ms']:>7} "
                f"{f['baseline']['p50_ms']:>9} {f['baseline']['p99_ms']:>9} "
                f"{f['p99_ratio']:>6} {f['p50_ratio']:>6} {f['cpu_ratio']:>6}"
            )
    print(
        f"{'backend':<11} {'files MB/s':>11} {'disk MB/s':>10} {'x':>5} {'warm':>6} "
        f"{'disk':>6} {'x':>5} {'archive s':>10}"
    )
    for backend, r in results.items():
        a = r["archive"]
        print(
            f"{backend:<11} {a['files_cold_mb_s']:>11} {a['disk_cold_mb_s']:>10} "
            f"{a['cold_ratio']:>5} {a['files_warm_mb_s'] or '-':>6} "
            f"{a['disk_warm_mb_s'] or '-':>6} {a['warm_ratio'] or '-':>5} {a['archive_s']:>10}"
        )
    met = all(
        r["timeline"]["p99_ratio"] <= TARGET_TIMELINE_P99_RATIO
        and r["fhir"]["p99_ratio"] <= TARGET_FHIR_P99_RATIO
        and r["archive"]["cold_ratio"] >= TARGET_ARCHIVE_RATE
        for r in results.values()
    )
    print(
        json.dumps(
            {
                "bench": "record",
                "shape": vars(shape),
                "timeline_pages": args.pages,
                "fhir_requests": args.requests,
                "archive_rounds": args.archives,
                "results": {
                    b: {k: r[k] for k in ("timeline", "fhir", "archive")}
                    for b, r in results.items()
                },
                "targets": {
                    "timeline_p99_ratio_max": TARGET_TIMELINE_P99_RATIO,
                    "fhir_p99_ratio_max": TARGET_FHIR_P99_RATIO,
                    "archive_files_to_disk_min": TARGET_ARCHIVE_RATE,
                },
                "targets_met": met,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
