"""Helpers for integration tests: a JSON HTTP client and a Socket.IO client that records the
events it receives, both talking to a real server over loopback; reading rows straight from the
database; waiting for a condition; media peers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import aioice.ice
import pikepdf
import pyotp
import pytest
import socketio
import sqlalchemy as sa
from PIL import Image
from sqlalchemy.ext.asyncio import create_async_engine

from consult.demo import DEMO_PASSWORD, DEMO_TOTP_SECRET


def demo_totp_code() -> str:
    """The demo staff's current TOTP code."""
    return str(pyotp.TOTP(DEMO_TOTP_SECRET).now())


class ApiClient:
    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        """``headers`` go with every request (``X-Forwarded-For``, as a proxy would send)."""
        self.base_url = base_url.rstrip("/")
        self.session = aiohttp.ClientSession(headers=headers)
        self.token: str | None = None
        self.user: dict[str, Any] = {}

    async def login(self, email: str, password: str = DEMO_PASSWORD) -> ApiClient:
        """Logged in; staff (and patients with two-factor login) with the demo TOTP code."""
        body = await self.call("POST", "/api/login", {"email": email, "password": password})
        if body["totp_required"]:
            step = {"challenge": body["challenge"], "code": demo_totp_code()}
            body = await self.call("POST", "/api/login/totp", step)
        self.token = body["token"]
        self.user = body["user"]
        return self

    async def call(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        expect: int = 200,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        async with self.session.request(
            method, self.base_url + path, json=json, data=data, headers=headers
        ) as response:
            body = await response.json() if response.status != 204 else None
            assert response.status == expect, (response.status, body)
            return body

    async def close(self) -> None:
        await self.session.close()


class SocketClient:
    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self._queues: dict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)
        self.sio.on("*", self._record)

    async def _record(self, event: str, data: Any = None) -> None:
        await self._queues[event].put(data)

    async def connect(
        self, base_url: str, token: str | None, headers: dict[str, str] | None = None
    ) -> SocketClient:
        refusals: list[Any] = []
        self.sio.on("connect_error", refusals.append)
        try:
            await self.sio.connect(
                base_url,
                headers=headers or {},
                auth={"token": token} if token else None,
                transports=["websocket"],
                # A loaded CI machine has taken over 5 s to answer a connect (the namespace
                # handler reads the session and joins rooms): the suite is no latency benchmark.
                wait_timeout=15,
            )
        except socketio.exceptions.ConnectionError as exc:
            # What the server said when it refused (a CI failure showed only "failed to connect").
            raise socketio.exceptions.ConnectionError(
                f"{exc}; the server said: {refusals}"
            ) from exc
        return self

    async def emit(self, event: str, data: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.sio.call(event, data, timeout=10)
        return result

    async def next(self, event: str, timeout: float = 5) -> Any:
        return await asyncio.wait_for(self._queues[event].get(), timeout)

    async def until(self, event: str, predicate: Any, timeout: float = 5) -> Any:
        """The first ``event`` whose payload satisfies ``predicate`` (earlier ones are skipped)."""

        async def wait() -> Any:
            while True:
                data = await self._queues[event].get()
                if predicate(data):
                    return data

        return await asyncio.wait_for(wait(), timeout)

    def pending(self, event: str) -> int:
        return self._queues[event].qsize()

    async def close(self) -> None:
        await self.sio.disconnect()


async def start_and_accept(
    patient: ApiClient, doctor_ws: SocketClient, specialty: str, form: str = "chat"
) -> int:
    """The patient joins; the (online, free) doctor gets the offer and accepts it."""
    ticket = await patient.call(
        "POST", "/api/consultations", {"specialty": specialty, "form": form}, expect=201
    )
    cid = int(ticket["consultation"]["id"])
    offer = await doctor_ws.next("queue:offer")
    assert offer["consultation"]["id"] == cid
    ack = await doctor_ws.emit("queue:accept", {"consultation_id": cid})
    assert ack["ok"], ack
    return cid


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A ``consult serve`` process of the test's own."""

    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def demo_server(
    directory: Path,
    start_timeout: float = 30.0,
    *,
    database_url: str | None = None,
    settings: dict[str, str] | None = None,
    template: Path | None = None,
) -> Iterator[Server]:
    """``consult serve --demo`` of this source tree on a free port, with a fresh SQLite database
    in ``directory`` (a copy of ``template`` when given, else empty; or on ``database_url``) and
    these ``CONSULT_*`` ``settings``; stopped on exit."""
    if template is not None and database_url is None:
        shutil.copyfile(template, directory / "consult.db")
    port = free_port()
    log = directory / "server.log"
    # Only this test's settings: no CONSULT_* variable from the environment (e.g. a Redis URL).
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    env.update(settings or {}, PYTHONUNBUFFERED="1")
    database = database_url or f"sqlite+aiosqlite:///{directory / 'consult.db'}"
    command = [sys.executable, "-m", "consult", "serve", "--demo", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--database-url", database]
    repo = Path(__file__).resolve().parents[1]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", log, process)
    try:
        wait_healthy(server, start_timeout)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def demo_template(directory: Path) -> Path:
    """A SQLite file with the migrations applied and the demo seeded, by this tree's CLI: copied
    for each browser test, whose ``serve --demo`` then finds the demo there (seeding is
    idempotent) instead of hashing its passwords again (about 2 s a server)."""
    path = directory / "demo-template.db"
    command = consult_command() + ["demo-data", "--database-url", f"sqlite+aiosqlite:///{path}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
    return path


def wait_healthy(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"the server exited with {server.process.returncode} before it was healthy:\n"
                + server.log_tail()
            )
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    pytest.fail(f"the server was not healthy after {timeout:.0f} s:\n" + server.log_tail())


def consult_command() -> list[str]:
    """How to run this tree's ``consult`` CLI in a subprocess. Not the virtualenv's ``consult``
    script: an editable install imports the checkout it was installed from, which need not be
    the tree under test (a git worktree sharing the virtualenv)."""
    tree = str(Path(__file__).resolve().parent.parent)
    run = f"import sys; sys.path[:0] = [{tree!r}]; import consult.__main__ as m; sys.exit(m.main())"
    return [sys.executable, "-c", run]


async def count(database_url: str, table: sa.Table, *where: Any) -> int:
    """Rows of ``table`` matching ``where``, read straight from the database."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            n = (
                await conn.execute(sa.select(sa.func.count()).select_from(table).where(*where))
            ).scalar()
    finally:
        await engine.dispose()
    return int(n or 0)


async def rows(database_url: str, table: sa.Table, *where: Any) -> list[Any]:
    """Rows of ``table`` matching ``where`` (by id when it has one), read straight from the
    database."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            query = sa.select(table).where(*where)
            if "id" in table.c:
                query = query.order_by(table.c.id)
            return list((await conn.execute(query)).all())
    finally:
        await engine.dispose()


async def execute(database_url: str, statement: Any) -> None:
    """Run one writing statement straight on the database (a state no route leads to)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(statement)
    finally:
        await engine.dispose()


async def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Media peers gather host candidates on 127.0.0.1 only: aioice leaves the loopback address
    out by default, and the server and the test clients run here."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


def png(width: int = 2, height: int = 2, rgb: bytes = b"\xff\x00\x00") -> bytes:
    """A whole PNG image of one colour (what the documents' content check accepts)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + rgb * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def jpeg(width: int = 16, height: int = 16, color: str = "navy") -> bytes:
    """A whole JPEG photo of one colour, made by Pillow."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "JPEG")
    return out.getvalue()


def pdf(size: int | None = None) -> bytes:
    """A real one-page PDF (made by pikepdf), of exactly ``size`` bytes when given: an
    uncompressed stream in the catalog, then line ends after %%EOF, make up the size."""
    padding = 0 if size is None else max(0, size - 2_000)
    while True:
        document = pikepdf.new()
        document.add_blank_page()
        if padding:
            document.Root.Padding = document.make_stream(b"x" * padding)
        out = io.BytesIO()
        document.save(out, compress_streams=False, static_id=True)
        data = out.getvalue()
        if size is None:
            return data
        if len(data) <= size <= len(data) + 500:
            return data + b"\n" * (size - len(data))
        padding += size - len(data) - 100
