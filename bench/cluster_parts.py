"""The cluster of bench/cluster_bench.py (a helper, not run by itself): N ``consult serve``
nodes of this checkout on a PostgreSQL database of the bench's own, a redis-server of the
bench's own on a free port (for more than one node, or when asked), HAProxy with
deploy/haproxy.cfg written for these ports by deploy/haproxy_config.py. Each part's CPU is
read from /proc, PostgreSQL's as the CPU of the server processes that serve the bench's
database (the PostgreSQL server itself is shared with other work on this machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import queue_bench as qb  # bench/ is on sys.path (a script's folder)
from queue_bench import HOST, REPO, PostgresDatabase, ServerProcess

sys.path.insert(0, str(REPO))
from deploy.haproxy_config import render  # noqa: E402

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Redis:
    """A private redis-server without persistence, on a free port."""

    def __init__(self, directory: Path) -> None:
        self.port = qb.free_port()
        self.url = f"redis://{HOST}:{self.port}/0"
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", HOST, "--save", ""]
        command += ["--appendonly", "no", "--dir", str(directory)]
        with (directory / "redis.log").open("ab") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while not self._pong():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("redis-server did not start: see redis.log")
            time.sleep(0.05)

    def _pong(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
        return False

    def info_stats(self) -> dict[str, int]:
        """Redis's own counters (INFO stats): commands processed, bytes in and out."""
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=5)
        try:
            info = client.info("stats")
        finally:
            client.close()
        keys = ("total_commands_processed", "total_net_input_bytes", "total_net_output_bytes")
        return {k: int(info[k]) for k in keys}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def seeded_template(admin_url: str, directory: Path) -> PostgresDatabase:
    """A new database, migrated and seeded with the demo (specialties, plans) by this
    checkout's ``consult demo-data``: each configuration's database is a copy of it."""
    template = PostgresDatabase(admin_url)
    url = template.create()
    code = os.environ.get("CONSULT_BENCH_SERVER_CODE", str(REPO))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    with (directory / "demo-data.log").open("ab") as out:
        subprocess.run(
            [str(qb.VENV_BIN / "consult"), "demo-data", "--database-url", url],
            env=env | {"PYTHONPATH": code},
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=300,
        )
    return template


class Cluster:
    """``size`` nodes behind HAProxy; ``url`` is HAProxy's."""

    def __init__(
        self, size: int, redis: Redis | None, directory: Path, template: PostgresDatabase, env: dict
    ) -> None:
        self.size, self.redis, self.directory = size, redis, directory
        self.template = template  # migrated and seeded once for every configuration
        self.pg = PostgresDatabase(template.admin_url)
        self.env = env
        self.nodes: list[ServerProcess] = []
        self.haproxy: ServerProcess | None = None
        self.port = qb.free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.database_url = ""

    def start(self) -> None:
        self.database_url = self.pg.create(template=self.template.name)
        env = dict(self.env)
        if self.redis is not None:
            env["CONSULT_REDIS_URL"] = self.redis.url
            env["CONSULT_REDIS_CHANNEL"] = f"bench-{secrets.token_hex(4)}"
        else:
            env.pop("CONSULT_REDIS_URL", None)
        # One after the other: the first migrates the new database and seeds the demo's
        # specialties; the others find both done.
        for i in range(self.size):
            port = qb.free_port()
            name = f"node{i + 1}"
            node = ServerProcess(
                name,
                qb.consult_serve_argv(port, self.database_url),
                env,
                self.directory / f"{name}.log",
            )
            node.start(f"http://{HOST}:{port}")
            self.nodes.append(node)
        config = self.directory / "haproxy.cfg"
        nodes = [n.url.removeprefix("http://") for n in self.nodes]
        config.write_text(render(f"{HOST}:{self.port}", nodes))
        # HAProxy counts a server in service from the start (its checks can only take it out),
        # and every node already answers /healthz: in service once HAProxy answers.
        self.haproxy = ServerProcess(
            "haproxy", [HAPROXY, "-f", str(config), "-db"], {}, self.directory / "haproxy.log"
        )
        self.haproxy.start(self.url)

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far: the nodes summed, HAProxy, Redis, each of the database's
        backends (``postgres:PID``); and Redis's counters (commands, bytes in and out)."""
        assert self.haproxy is not None
        stats = self.redis.info_stats() if self.redis else {}
        return {
            "nodes": sum(n.cpu_s() for n in self.nodes),
            "haproxy": self.haproxy.cpu_s(),
            "redis": proc_cpu_s(self.redis.proc.pid) if self.redis else 0.0,
            **{f"postgres:{pid}": proc_cpu_s(pid) for pid in self._backend_pids()},
            "redis_commands": stats.get("total_commands_processed", 0),
            "redis_in_bytes": stats.get("total_net_input_bytes", 0),
            "redis_out_bytes": stats.get("total_net_output_bytes", 0),
        }

    def _backend_pids(self) -> list[int]:
        async def query() -> list[int]:
            import asyncpg

            conn = await asyncpg.connect(self.pg.admin_url.replace("+asyncpg", ""), timeout=10)
            try:
                sql = "SELECT pid FROM pg_stat_activity WHERE datname = $1"
                return [r["pid"] for r in await conn.fetch(sql, self.pg.name)]
            finally:
                await conn.close()

        return asyncio.run(query())

    def stop(self) -> None:
        if self.haproxy is not None:
            self.haproxy.stop()
        for node in self.nodes:
            node.stop()
        if self.database_url:
            self.pg.drop()
