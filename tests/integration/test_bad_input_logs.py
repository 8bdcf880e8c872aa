"""Expected bad input is logged as one line without a traceback, and rate-limited per client:
a client cannot fill the log (issue 11, item 6)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from consult.logs import BAD_INPUT, BURST, FORMAT
from tests.support import ApiClient, SocketClient

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# Each 8 bytes, as in the review: not a packet type, bad JSON, a truncated event, an unknown
# Engine.IO type, an attachment count with no attachments.
MALFORMED = ["4garbage", '42["x",{', "42abcdef", "9zzzzzzz", '451-["a"]', "4-12345x", "x" * 8]


class LogText(logging.Handler):
    """Everything logged, formatted as the server's stderr shows it, tracebacks included."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter(FORMAT))
        self.lines: list[str] = []
        self.warnings: list[str] = []  # WARNING and worse

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        self.lines.append(line)
        if record.levelno >= logging.WARNING:
            self.warnings.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def warnings_size(self) -> int:
        """Bytes of WARNING and worse: INFO has a line per request or connection, whatever
        was sent on it (the access log, "socket ... connected")."""
        return len("\n".join(self.warnings).encode())


@pytest.fixture
def log_text() -> Iterator[LogText]:
    BAD_INPUT.clear()  # every test starts with the whole allowance of lines
    handler = LogText()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)


async def socketio_connection(
    http: aiohttp.ClientSession, base_url: str, token: str
) -> aiohttp.ClientWebSocketResponse:
    """An Engine.IO WebSocket with the Socket.IO namespace joined, spoken by hand."""
    ws = await http.ws_connect(base_url + "/socket.io/?EIO=4&transport=websocket")
    assert (await ws.receive_str()).startswith("0{")  # Engine.IO open
    await ws.send_str("40" + json.dumps({"token": token}))
    assert (await ws.receive_str()).startswith("40{")  # Socket.IO connect
    return ws


async def closed_by_server(ws: aiohttp.ClientWebSocketResponse, timeout: float = 10) -> bool:
    async def until_closed() -> None:
        while (await ws.receive()).type not in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.CLOSING,
        ):
            pass

    await asyncio.wait_for(until_closed(), timeout)
    return True


async def test_a_hundred_malformed_socketio_packets_write_a_few_lines_and_no_traceback(
    server: TestServer,
    base_url: str,
    api: Callable[..., Awaitable[ApiClient]],
    sockets: Callable[..., Awaitable[SocketClient]],
    log_text: LogText,
) -> None:
    anna = await api("anna@demo.test")
    assert anna.token is not None
    async with aiohttp.ClientSession() as http:
        # 100 malformed packets on one connection: the first closes it.
        ws = await socketio_connection(http, base_url, anna.token)
        for _ in range(100):
            await ws.send_str(MALFORMED[0])
        assert await closed_by_server(ws)
        # ...and 100 more over 20 connections, each of every kind, all from one address.
        for n in range(20):
            ws = await socketio_connection(http, base_url, anna.token)
            for packet in MALFORMED[n % len(MALFORMED) :] + MALFORMED[: n % len(MALFORMED)]:
                await ws.send_str(packet)
            assert await closed_by_server(ws)
    # The server still serves well-behaved clients.
    client = await sockets(anna.token)
    assert client.sio.connected
    text = log_text.text
    assert "Traceback" not in text, text
    bad = [line for line in log_text.warnings if "consult.bad_input" in line]
    # Nothing else complained; a slow COMMIT on a loaded machine is the disk's, not the input's.
    others = [w for w in log_text.warnings if w not in bad and "slow statement" not in w]
    assert others == []
    assert 1 <= len(bad) <= BURST, bad  # one line each, at most BURST per address a minute
    assert all("bad input from 127.0.0.1: malformed" in line for line in bad), bad
    assert log_text.warnings_size() < 2000, bad  # was 326 KB for 100 packets


async def test_malformed_http_requests_and_polling_payloads_write_no_traceback(
    server: TestServer, base_url: str, log_text: LogText
) -> None:
    for n in range(50):
        reader, writer = await asyncio.open_connection(server.host, server.port)
        garbage = b"Bad Header Line" if n % 2 else b"Content-Length: abc"
        writer.write(b"POST /api/login HTTP/1.1\r\nHost: x\r\n" + garbage + b"\r\n\r\n")
        await writer.drain()
        assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"HTTP/1.0 400")
        writer.close()
    async with aiohttp.ClientSession() as http:
        for _ in range(20):
            async with http.get(base_url + "/socket.io/?EIO=4&transport=polling") as response:
                sid = json.loads((await response.text())[1:])["sid"]
            url = f"{base_url}/socket.io/?EIO=4&transport=polling&sid={sid}"
            async with http.post(url, data="x" * 8) as response:
                assert response.status in (200, 400)
        async with http.post(base_url + "/api/login", data=b"{bad json") as response:
            assert response.status == 400
    text = log_text.text
    assert "Traceback" not in text, text
    assert 1 <= len(log_text.warnings) <= BURST, log_text.warnings  # all from one address
    assert all("consult.bad_input: bad input from 127.0.0.1" in w for w in log_text.warnings)
    assert log_text.warnings_size() < 2000, log_text.warnings
