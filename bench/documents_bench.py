"""Document uploads against the running server, beside a bare aiohttp upload handler.

One command starts each server in turn as a subprocess on a fresh SQLite database:

- "ours": ``consult serve --demo``; uploads go to ``POST /api/documents`` as a logged-in patient
  (streamed to a temporary file in a thread, SHA-256, the 8 MB limit, the content check, then one
  short transaction), and each document is deleted again after its upload (untimed);
- "bare": this file with ``--bare-server``: an aiohttp handler that reads the same multipart
  body with ``read_chunk`` and writes it to a file with plain blocking writes - the naive
  version, with no checks, no hashing, no database.

Figures, for each server:

1. **upload time** of one 8 MB PDF (the largest accepted), sequential, p50 and p99;
2. **loop responsiveness under uploads**: a probe fetches ``GET /api/openapi.json`` (built in
   memory at start-up, no database) every 20 ms while ``--clients`` clients each upload 8 MB
   PDFs back to back; p50/p99 of the probe's answer time (idle figures beside them);
3. **memory growth**: the server's highest RSS seen by the probe during the concurrent phase
   minus its RSS just before. A server that buffered each upload whole would grow by about
   clients x 8 MB.

Targets (docs/performance.md): upload p50 at most 2x the bare handler's; probe p99 under
concurrent uploads at most 50 ms; RSS growth at most 16 MB with 4 concurrent 8 MB uploads.

Usage: python bench/documents_bench.py [--quick] [--clients N] [--rounds N]
The last line printed is one JSON object with the figures, the targets and "targets_met".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import consult_command, free_port  # noqa: E402

MB = 1024 * 1024
SIZE = 8 * MB
PDF_HEAD = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
PDF_TAIL = b"\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def pdf(size: int = SIZE) -> bytes:
    """A PDF of exactly ``size`` bytes: random hex in a comment pads the middle."""
    middle = size - len(PDF_HEAD) - len(PDF_TAIL) - 1
    return PDF_HEAD + b"%" + os.urandom(middle // 2 + 1).hex().encode()[:middle] + PDF_TAIL


# --- the bare server ---------------------------------------------------------------------------


def bare_server(port: int, directory: Path) -> None:
    async def upload(request: web.Request) -> web.Response:
        reader = await request.multipart()
        size = 0
        while (part := await reader.next()) is not None:
            assert isinstance(part, aiohttp.BodyPartReader)
            if part.name != "file":
                await part.read()
                continue
            with open(directory / f"{time.monotonic_ns()}", "wb") as out:
                while chunk := await part.read_chunk(256 * 1024):
                    size += len(chunk)
                    out.write(chunk)  # blocking, on the loop: the naive handler
        return web.json_response({"size": size}, status=201)

    from consult.app import APIS
    from consult.http.openapi import build_openapi

    document = build_openapi([r for api in APIS for r in api.routes])

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(document)

    app = web.Application()
    app.router.add_post("/api/documents", upload)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/openapi.json", openapi)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


# --- running a server ----------------------------------------------------------------------


class Server:
    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
        if self.kind == "ours":
            command = [
                *consult_command(),
                "serve",
                "--demo",
                "--port",
                str(self.port),
                "--database-url",
                f"sqlite+aiosqlite:///{self.tmp / 'bench.db'}",
            ]
            env["CONSULT_LOG_LEVEL"] = "WARNING"
        else:
            (self.tmp / "bare").mkdir()
            command = [
                sys.executable,
                __file__,
                "--bare-server",
                str(self.port),
                str(self.tmp / "bare"),
            ]
        log = (self.tmp / f"{self.kind}.log").open("wb")
        self.proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        raise RuntimeError(f"{self.kind} server did not start; see {self.tmp / self.kind}.log")

    def rss(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


# --- the scenario --------------------------------------------------------------------------


async def login(session: aiohttp.ClientSession, url: str, kind: str) -> dict[str, str]:
    if kind != "ours":
        return {}
    async with session.post(
        url + "/api/login", json={"email": "anna@demo.test", "password": "demo1234"}
    ) as response:
        token = (await response.json())["token"]
    return {"Authorization": f"Bearer {token}"}


async def upload_once(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], content: bytes, kind: str
) -> float:
    form = aiohttp.FormData()
    form.add_field("description", "benchmark scan")
    form.add_field("file", content, filename="scan.pdf", content_type="application/pdf")
    started = time.perf_counter()
    async with session.post(url + "/api/documents", data=form, headers=headers) as response:
        body = await response.json()
        elapsed = time.perf_counter() - started
        if response.status != 201:
            raise RuntimeError(f"upload refused: {response.status} {body}")
    if kind == "ours":  # the limit is 5 documents: make room again (not timed)
        async with session.delete(
            url + f"/api/documents/{body['id']}", headers=headers
        ) as response:
            assert response.status == 204
    return elapsed


async def probe(
    session: aiohttp.ClientSession, server: Server, stop: asyncio.Event
) -> tuple[list[float], int]:
    """Answer times of a route that touches no database (the OpenAPI document, built in memory
    at start-up): how long the server's event loop keeps others waiting. Also the highest RSS
    seen meanwhile."""
    times = []
    rss = 0
    while not stop.is_set():
        started = time.perf_counter()
        async with session.get(server.url + "/api/openapi.json") as response:
            await response.read()
        times.append(time.perf_counter() - started)
        rss = max(rss, server.rss())
        await asyncio.sleep(0.02)
    return times, rss


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


async def scenario(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    content = pdf()
    async with aiohttp.ClientSession() as session:
        headers = await login(session, server.url, server.kind)
        await upload_once(session, server.url, headers, content, server.kind)  # warm-up
        sequential = [
            await upload_once(session, server.url, headers, content, server.kind)
            for _ in range(args.rounds)
        ]
        stop = asyncio.Event()
        idle_task = asyncio.create_task(probe(session, server, stop))
        await asyncio.sleep(1.0)
        stop.set()
        idle, rss_before = await idle_task

        stop = asyncio.Event()
        probe_task = asyncio.create_task(probe(session, server, stop))

        async def client() -> None:
            # The session token from above: a login here would measure argon2 (memory- and
            # CPU-hard on purpose), not uploads.
            async with aiohttp.ClientSession() as own:
                for _ in range(args.rounds):
                    await upload_once(own, server.url, headers, content, server.kind)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(args.clients)))
        busy_seconds = time.perf_counter() - started
        stop.set()
        busy, rss_busy = await probe_task
        rss_growth = max(0, rss_busy - rss_before)
    return {
        "upload_p50_ms": statistics.median(sequential) * 1000,
        "upload_p99_ms": pct(sequential, 0.99),
        "probe_idle_p50_ms": pct(idle, 0.5),
        "probe_idle_p99_ms": pct(idle, 0.99),
        "probe_busy_p50_ms": pct(busy, 0.5),
        "probe_busy_p99_ms": pct(busy, 0.99),
        "concurrent_mb_per_s": args.clients * args.rounds * SIZE / MB / busy_seconds,
        "rss_growth_mb": rss_growth / MB,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds; well under a minute")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=None, help="uploads per client and phase")
    parser.add_argument("--bare-server", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        bare_server(int(args.bare_server[0]), Path(args.bare_server[1]))
        return 0
    args.rounds = args.rounds or (3 if args.quick else 15)

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="documents-bench-") as tmp:
        for kind in ("bare", "ours"):
            folder = Path(tmp) / kind
            folder.mkdir()
            server = Server(kind, folder)
            server.start()
            try:
                results[kind] = asyncio.run(scenario(server, args))
            finally:
                server.stop()

    ours, bare = results["ours"], results["bare"]
    print(f"{'figure':<26}{'ours':>12}{'bare':>12}{'ratio':>9}")
    for key in ours:
        ratio = ours[key] / bare[key] if bare[key] else float("nan")
        print(f"{key:<26}{ours[key]:>12.1f}{bare[key]:>12.1f}{ratio:>9.2f}")
    targets = {
        "upload_p50_ratio_max": 2.0,
        "probe_busy_p99_ms_max": 50.0,
        "rss_growth_mb_max": 16.0,
    }
    upload_ratio = ours["upload_p50_ms"] / bare["upload_p50_ms"]
    met = (
        upload_ratio <= targets["upload_p50_ratio_max"]
        and ours["probe_busy_p99_ms"] <= targets["probe_busy_p99_ms_max"]
        and ours["rss_growth_mb"] <= targets["rss_growth_mb_max"]
    )
    summary = {
        "bench": "documents",
        "quick": args.quick,
        "clients": args.clients,
        "rounds": args.rounds,
        "file_mb": SIZE / MB,
        "ours": {k: round(v, 2) for k, v in ours.items()},
        "bare": {k: round(v, 2) for k, v in bare.items()},
        "upload_p50_ratio": round(upload_ratio, 2),
        "targets": targets,
        "targets_met": met,
    }
    print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
