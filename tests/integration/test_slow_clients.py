"""Slow headers, slow bodies and too many connections from one address are bounded (issue 11,
item 7), against the app served as ``consult serve`` serves it (consult/serving.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from consult import serving
from consult.app import create_app
from tests.integration.conftest import settings_for
from tests.support import ApiClient, SocketClient, free_port

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.5
CAP = 3
SLACK = 4.0  # seconds beyond a bound that a loaded test machine may take


@pytest.fixture
async def port(database_url: str, tmp_path: Path) -> AsyncIterator[int]:
    settings = settings_for(
        database_url,
        tmp_path,
        header_timeout=HEADER_TIMEOUT,
        body_timeout=BODY_TIMEOUT,
        max_connections_per_address=CAP,
    )
    port = free_port()
    runner, _ = await serving.start(
        create_app(settings), settings, host="127.0.0.1", port=port, handle_signals=False
    )
    yield port
    await runner.cleanup()


async def dribble(writer: asyncio.StreamWriter, data: bytes, every: float) -> None:
    """Send ``data`` a byte at a time, until done or the server closes the connection."""
    for i in range(len(data)):
        writer.write(data[i : i + 1])
        try:
            await writer.drain()
        except ConnectionError:
            return
        await asyncio.sleep(every)


async def until_closed(reader: asyncio.StreamReader, limit: float) -> bytes:
    """Everything the server sends until it closes the connection (failing after ``limit``)."""
    received = b""
    async with asyncio.timeout(limit):
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionError:
                return received
            if not chunk:
                return received
            received += chunk


def status_and_body(response: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


async def get_health(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = await until_closed(reader, 10)
    writer.close()
    return int(response.split()[1])


async def test_headers_sent_a_byte_at_a_time_are_cut_off_at_the_header_timeout(port: int):
    assert await get_health(port) == 200  # a prompt client is served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    headers = b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: " + b"s" * 1000 + b"\r\n\r\n"
    sending = asyncio.create_task(dribble(writer, headers, every=0.2))
    response = await until_closed(reader, HEADER_TIMEOUT + SLACK)
    held = time.monotonic() - started
    sending.cancel()
    writer.close()
    assert response == b""  # closed, never answered: no request was made
    assert HEADER_TIMEOUT * 0.8 <= held < HEADER_TIMEOUT + SLACK, held


async def test_a_body_sent_a_byte_at_a_time_is_answered_408_and_the_connection_closed(
    port: int,
):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    started = time.monotonic()
    sending = asyncio.create_task(dribble(writer, b"{" + b" " * 999, every=0.2))
    response = await until_closed(reader, BODY_TIMEOUT + SLACK)
    held = time.monotonic() - started
    sending.cancel()
    writer.close()
    status, body = status_and_body(response)
    assert status == 408 and body["error"]["code"] == "request_timeout", response  # type: ignore[index]
    assert BODY_TIMEOUT * 0.8 <= held < BODY_TIMEOUT + SLACK, held


async def test_the_connection_beyond_the_cap_from_one_address_is_refused(port: int):
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CAP)]
    # Each of them is served (keep-alive), and stays open.
    for reader, writer in held:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"HTTP/1.1 200")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    status, body = status_and_body(await until_closed(reader, 10))
    writer.close()
    assert status == 429 and body["error"]["code"] == "too_many_connections"  # type: ignore[index]
    # One closed: the next one is served again.
    held.pop()[1].close()
    deadline = time.monotonic() + 10
    while (code := await get_health(port)) != 200 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert code == 200
    for _, writer in held:
        writer.close()


async def test_http_and_socketio_clients_are_served_through_the_bounds(port: int):
    base_url = f"http://127.0.0.1:{port}"
    api = ApiClient(base_url)
    socket = SocketClient()
    try:
        await api.login("anna@demo.test")
        await socket.connect(base_url, api.token)  # a WebSocket through the cap
        assert socket.sio.connected
        # Idle beyond the header timeout: the WebSocket stays, and the keep-alive client's
        # next request simply opens a new connection.
        await asyncio.sleep(HEADER_TIMEOUT * 2)
        assert socket.sio.connected
        assert (await api.call("GET", "/api/me"))["email"] == "anna@demo.test"
    finally:
        await socket.close()
        await api.close()
