"""A real cluster for tests, made of the parts a deployment uses (docs/operations.md, "Several
processes behind a reverse proxy"):

- a PostgreSQL database of its own on the server of ``CONSULT_TEST_POSTGRES_URL``
  (tests/backends.py), migrated and seeded with the demo once, dropped at the end;
- a private ``redis-server`` on a free port, without persistence (a restart loses everything,
  the harsh case), which a test may stop and start again;
- N ``consult serve`` processes of this tree on free ports, each keeping its port across
  restarts (HAProxy's configuration names it);
- HAProxy with deploy/haproxy.cfg (written for these ports by deploy/haproxy_config.py), its
  runtime API on a Unix socket to read the nodes' states.

``Cluster.url`` is HAProxy's; ``node_url(i)`` a node's own. Nodes are numbered from 0 here and
named ``node1``, ``node2``... in HAProxy. ``kill_node(i)`` (SIGKILL), ``terminate_node(i)``
(SIGTERM: it drains), ``restart_node(i)``, ``stop_redis()``/``start_redis()``, ``heal()``
(everything running again, every node in service), ``states()`` / ``wait_state()`` (HAProxy's
view of the nodes), ``rotate(i, in_service=...)`` (a node out of HAProxy's rotation, MAINT, and
back: a test makes every new socket land on one node). Nodes gather calls' media on 127.0.0.1
(``CONSULT_MEDIA_ADDRESS``), where the test's client peers are.

Reuse: ``running_cluster(directory, size, settings)`` is a whole cluster with other
``CONSULT_*`` settings (a short ``CONSULT_PROCESS_DEAD_AFTER``, say). Nodes that must reach
PostgreSQL through a proxy of the test's own (to cut it off) take the parts apart:
``with cluster_database() as url:`` start the proxy in front of ``url``, then
``Cluster(directory, url, size, settings, node_database_url=proxied_url)``, ``start()`` and,
at the end, ``close()``: the nodes use the proxy, the test's own reads (``database_url``) go
straight to PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from deploy.haproxy_config import render
from tests import backends, support
from tests.support import consult_command, free_port

REPO = Path(__file__).resolve().parents[2]
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
START_TIMEOUT = 60.0  # a node on a loaded two-core machine: migrations are done beforehand

# What every node of a test cluster runs with, beside the test's own settings. HAProxy stops
# sending a draining node new connections at its next check (every second; on a loaded machine
# a check may take a few), hence 3 s of drain.
BASE_SETTINGS = {
    "CONSULT_MIGRATE_ON_START": "false",
    "CONSULT_SLOT_DAYS": "0",
    "CONSULT_TRUSTED_PROXIES": "127.0.0.1",
    "CONSULT_DRAIN_DELAY": "3",
    "CONSULT_LOOP_WATCHDOG_THRESHOLD": "0",
    "CONSULT_MEDIA_ADDRESS": "127.0.0.1",  # calls' media on loopback, where the test peers are
}


@dataclass
class Node:
    name: str  # its server name in HAProxy
    port: int
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


@dataclass
class Cluster:
    directory: Path
    database_url: str
    size: int = 3
    settings: dict[str, str] = field(default_factory=dict)  # CONSULT_* for every node
    nodes: list[Node] = field(default_factory=list)
    redis_port: int = 0
    haproxy_port: int = 0
    errors_expected: bool = False  # the cluster fixture checks the nodes' logs unless set
    node_database_url: str = ""  # what the nodes use, when not database_url (a proxy's)
    _redis: subprocess.Popen[bytes] | None = None
    _haproxy: subprocess.Popen[bytes] | None = None

    # --- addresses ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """HAProxy: what clients use."""
        return f"http://127.0.0.1:{self.haproxy_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def node_url(self, i: int) -> str:
        return self.nodes[i].url

    @property
    def stats_socket(self) -> Path:
        return self.directory / "haproxy.sock"

    # --- start and stop ----------------------------------------------------------------------

    def start(self) -> None:
        self.redis_port, self.haproxy_port = free_port(), free_port()
        self._start_redis()
        self.nodes = [
            Node(f"node{i + 1}", free_port(), self.directory / f"node{i + 1}.log")
            for i in range(self.size)
        ]
        for node in self.nodes:
            self._spawn(node)
        for node in self.nodes:
            _wait_healthy(node)
        config = self.directory / "haproxy.cfg"
        config.write_text(
            render(
                f"127.0.0.1:{self.haproxy_port}",
                [f"127.0.0.1:{n.port}" for n in self.nodes],
                str(self.stats_socket),
            )
        )
        with (self.directory / "haproxy.log").open("ab") as out:
            self._haproxy = subprocess.Popen(
                [HAPROXY, "-f", str(config), "-db"], stdout=out, stderr=subprocess.STDOUT
            )
        self._wait_states({n.name: "UP" for n in self.nodes}, START_TIMEOUT)

    def close(self) -> None:
        running = [n.popen for n in self.nodes if n.running]
        for popen in running:  # all at once; a second SIGTERM cuts the drain short
            popen.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        for popen in running:
            with contextlib.suppress(ProcessLookupError):
                popen.send_signal(signal.SIGTERM)
        for popen in [*running, self._haproxy, self._redis]:
            _end(popen)

    # --- nodes -------------------------------------------------------------------------------

    def kill_node(self, i: int) -> float:
        """SIGKILL, as when a machine dies: no shutdown hook runs. The monotonic time of death."""
        popen = self.nodes[i].popen
        assert popen is not None and popen.poll() is None, f"{self.nodes[i].name} is not running"
        popen.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        popen.wait(timeout=10)
        return killed

    def terminate_node(self, i: int) -> subprocess.Popen[bytes]:
        """SIGTERM: the node drains, then exits (wait on the process returned)."""
        popen = self.nodes[i].popen
        assert popen is not None and popen.poll() is None, f"{self.nodes[i].name} is not running"
        popen.send_signal(signal.SIGTERM)
        return popen

    async def restart_node(self, i: int) -> None:
        """Start node ``i`` again on its port; back once HAProxy has it in service."""
        node = self.nodes[i]
        if node.running:
            raise AssertionError(f"{node.name} is still running")
        self._spawn(node)
        await asyncio.to_thread(_wait_healthy, node)
        await self.wait_state(node.name, "UP", START_TIMEOUT)

    # --- Redis -------------------------------------------------------------------------------

    def stop_redis(self, *, kill: bool = True) -> None:
        """Redis goes away (SIGKILL by default: no goodbye to its clients)."""
        assert self._redis is not None and self._redis.poll() is None, "Redis is not running"
        self._redis.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self._redis.wait(timeout=10)

    async def start_redis(self) -> None:
        """Redis again, on the same port and empty."""
        assert self._redis is None or self._redis.poll() is not None, "Redis is running"
        await asyncio.to_thread(self._start_redis)

    # --- HAProxy's view ----------------------------------------------------------------------

    def rotate(self, i: int, *, in_service: bool) -> None:
        """Node ``i`` in HAProxy's rotation or out of it (MAINT: no new connection; the ones
        it has go on), as an operator does with the runtime API."""
        state = "ready" if in_service else "maint"
        self._runtime(f"set server consult_nodes/{self.nodes[i].name} state {state}")

    def states(self) -> dict[str, str]:
        """Each node's state in HAProxy: UP, DOWN, "UP 1/2" (one check failed), MAINT..."""
        rows = csv.DictReader(io.StringIO(self._runtime("show stat").lstrip("# ")))
        return {
            r["svname"]: r["status"]
            for r in rows
            if r["pxname"] == "consult_nodes" and r["svname"].startswith("node")
        }

    async def wait_state(self, name: str, state: str, timeout: float) -> float:
        """Seconds until HAProxy says ``state`` for node ``name`` (fails after ``timeout``)."""
        started = time.monotonic()
        while (seen := await asyncio.to_thread(self.states)).get(name) != state:
            if time.monotonic() - started > timeout:
                raise AssertionError(f"{name} not {state} after {timeout:.0f} s: {seen}")
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    async def heal(self) -> None:
        """Whatever a test stopped runs again, and every node is in service."""
        if self._redis is None or self._redis.poll() is not None:
            await self.start_redis()
        for i, node in enumerate(self.nodes):
            if not node.running:
                await self.restart_node(i)
        for node in self.nodes:
            await self.wait_state(node.name, "UP", START_TIMEOUT)

    # --- logs --------------------------------------------------------------------------------

    def log_offsets(self) -> dict[Path, int]:
        return {n.log: n.log.stat().st_size for n in self.nodes if n.log.exists()}

    def log_lines_since(self, offsets: dict[Path, int], *needles: str) -> list[str]:
        """The nodes' log lines written since ``offsets`` that contain any of ``needles``."""
        found = []
        for node in self.nodes:
            if not node.log.exists():
                continue
            with node.log.open("rb") as f:
                f.seek(offsets.get(node.log, 0))
                text = f.read().decode(errors="replace")
            found += [
                f"{node.name}: {x}" for x in text.splitlines() if any(n in x for n in needles)
            ]
        return found

    # --- internals ---------------------------------------------------------------------------

    def _runtime(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.stats_socket))
            s.sendall(command.encode() + b"\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return data.decode()

    def _spawn(self, node: Node) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
        env.update(BASE_SETTINGS, PYTHONUNBUFFERED="1", CONSULT_REDIS_CHANNEL="cluster")
        env.update(self.settings)
        command = [*consult_command(), "serve", "--host", "127.0.0.1", "--port", str(node.port)]
        database_url = self.node_database_url or self.database_url
        command += ["--database-url", database_url, "--redis-url", self.redis_url]
        with node.log.open("ab") as out:
            node.popen = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def _start_redis(self) -> None:
        command = [REDIS_SERVER, "--port", str(self.redis_port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        with (self.directory / "redis.log").open("ab") as out:
            self._redis = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.redis_port), timeout=1) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return
            if time.monotonic() > deadline or self._redis.poll() is not None:
                raise AssertionError("redis-server did not start: see redis.log")
            time.sleep(0.05)

    def _wait_states(self, wanted: dict[str, str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError):
                seen = self.states()
                if all(seen.get(k) == v for k, v in wanted.items()):
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"HAProxy did not see {wanted} in {timeout:.0f} s")
            time.sleep(0.1)


def _wait_healthy(node: Node) -> None:
    assert node.popen is not None
    support.wait_healthy(support.Server(node.url, node.log, node.popen), START_TIMEOUT)


def _tail(node: Node, lines: int = 30) -> str:
    text = node.log.read_text(errors="replace") if node.log.exists() else ""
    return "\n" + "\n".join(text.splitlines()[-lines:])


def _end(popen: subprocess.Popen[bytes] | None) -> None:
    if popen is None or popen.poll() is not None:
        return
    popen.terminate()
    try:
        popen.wait(timeout=10)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()


# --- the database ------------------------------------------------------------------------------


@contextlib.contextmanager
def cluster_database() -> Iterator[str]:
    """A new PostgreSQL database (tests/backends.py), migrated, and seeded with the demo
    (specialties, plans) by this tree's CLI; dropped afterwards, connections and all."""
    made = backends.postgres_database()
    url = next(made)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
        command = [*consult_command(), "demo-data", "--database-url", url]
        subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True, timeout=180)
        yield url
    finally:
        made.close()


@contextlib.contextmanager
def running_cluster(
    directory: Path, size: int = 3, settings: dict[str, str] | None = None
) -> Iterator[Cluster]:
    """A whole cluster on a database of its own, stopped and dropped on exit."""
    with cluster_database() as url:
        cluster = Cluster(directory, url, size, dict(settings or {}))
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.close()
