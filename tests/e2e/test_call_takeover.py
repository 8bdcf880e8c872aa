"""A video call in two Chromium pages survives the death of the server that holds its media.

Two ``consult serve`` processes on one PostgreSQL database and one Redis; the pages reach them
through a TCP proxy that stands for the load balancer (both pages on node A first). Once the
call plays both ways, the node that holds its media is killed (SIGKILL: no shutdown hook runs,
nothing tells the pages) and the proxy sends new connections to the other node. Each page must
notice by itself that the media stopped, show "Reconnecting…", offer again until the live node
answers (it takes the call over), and play the other's camera again within 10 s of the kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests import backends
from tests.e2e.helpers import OpenPage, assert_no_problems
from tests.e2e.test_calls import go_online, plays, start
from tests.integration.test_call_nodes import calls_held
from tests.integration.test_two_processes import REDIS_URL, Cluster, Process
from tests.support import free_port

pytestmark = pytest.mark.skipif(
    "postgresql" not in backends.BACKENDS, reason="PostgreSQL not selected"
)


class Proxy:
    """The load balancer: TCP to one node at a time (``target``), in a thread of its own."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        started.wait(5)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._connect, "127.0.0.1", self.port)
        )
        started.set()
        self._loop.run_forever()
        server.close()
        for writer in self._writers:  # every pipe ends with its connections
            writer.close()
        pending = asyncio.all_tasks(self._loop)
        self._loop.run_until_complete(asyncio.wait(pending, timeout=5) if pending else _nothing())
        self._loop.close()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


async def _nothing() -> None:
    return None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError, ConnectionError):
        writer.close()


@dataclass
class Balanced:
    """What ``open_page`` needs of a server: the pages' URL (the proxy) and a log."""

    cluster: Cluster
    proxy: Proxy

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}"

    def log_tail(self, lines: int = 60) -> str:
        return "\n\n".join(
            f"--- {p.name}\n{p.log_tail(lines)}" for p in self.cluster.processes.values()
        )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Balanced]:
    """Nodes A and B on a database of their own, the proxy to A."""
    settings = {"CONSULT_CALL_LEASE": "3", "CONSULT_CALL_FORWARD_TIMEOUT": "2"}
    for database_url in backends.postgres_database():
        cluster = Cluster(database_url, REDIS_URL, tmp_path, settings=settings)
        try:
            cluster.start("a", "b", demo="a")
            proxy = Proxy(port_of(cluster["a"]))
            try:
                yield Balanced(cluster, proxy)
            finally:
                proxy.close()
        finally:
            cluster.stop()


def port_of(process: Process) -> int:
    return int(process.url.rsplit(":", 1)[1])


def record_statuses(call: Locator) -> None:
    """From now on, every text the call's status line shows is kept in window.statusesSeen."""
    call.get_by_test_id("call-status").evaluate(
        """(status) => {
            window.statusesSeen = [];
            new MutationObserver(() => window.statusesSeen.push(status.textContent)).observe(
                status, { childList: true, characterData: true, subtree: true });
        }"""
    )


def frames(call: Locator) -> int:
    video = call.get_by_test_id("remote-video")
    return int(video.evaluate("(v) => v.getVideoPlaybackQuality().totalVideoFrames"))


def plays_again(page: Page, call: Locator, after: int) -> None:
    """New pictures beyond ``after`` (a second's worth), waited for up to 15 s."""
    handle = call.get_by_test_id("remote-video").element_handle()
    page.wait_for_function(
        "([v, n]) => v.getVideoPlaybackQuality().totalVideoFrames > n",
        arg=[handle, after + 25],
        timeout=15_000,
    )


@pytest.mark.e2e
def test_a_call_whose_server_is_killed_reconnects_on_the_live_one_within_10_s(
    open_page: OpenPage, server: Balanced
) -> None:
    doctor, doctor_problems = open_page("doctor")
    patient, patient_problems = open_page("patient")
    go_online(doctor)
    card = start(patient, doctor, "video")
    patient_call = patient.get_by_test_id("call-panel")
    doctor_call = card.get_by_test_id("call-panel")
    plays(doctor_call, video=True)
    plays(patient_call, video=True)
    a, b = server.cluster["a"], server.cluster["b"]
    assert calls_held(a) == 1 and calls_held(b) == 0

    seen = {"patient": frames(patient_call), "doctor": frames(doctor_call)}
    for call in (patient_call, doctor_call):
        record_statuses(call)
    killed = time.monotonic()
    server.proxy.target = port_of(b)  # the balancer's next choice
    server.cluster.kill("a")
    plays_again(patient, patient_call, seen["patient"])
    plays_again(doctor, doctor_call, seen["doctor"])
    recovered = time.monotonic() - killed
    print(f"\nnode killed: both pages play the other's camera again after {recovered:.1f} s")
    assert recovered < 10, recovered
    for call in (patient_call, doctor_call):
        expect(call).to_have_attribute("data-connection", "connected")
        expect(call.get_by_test_id("call-status")).to_have_text("In a video call.")
        # Nothing told the pages: each saw its media stop and said so meanwhile.
        assert "Reconnecting…" in call.evaluate("() => window.statusesSeen"), call
    assert calls_held(b) == 1
    # The socket.io reconnection and the refused calls on the dead node are the page's console.
    for problems in (patient_problems, doctor_problems):
        problems.expect_error(r"WebSocket connection to .* failed", "node A was killed")
    assert_no_problems(doctor_problems, patient_problems)
