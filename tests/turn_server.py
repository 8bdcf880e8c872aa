"""A TURN server of a test's own: Debian's coturn (``turnserver``) with the configuration the
repository ships (deploy/turnserver.conf: the TURN REST scheme's shared secret, peers limited
to the consult servers' addresses), its port, secret, addresses and log given on the command
line (which coturn lets take precedence): a free port on 127.0.0.1, UDP only, the log (verbose)
on stdout, where the test reads the allocations."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import free_port

TURNSERVER = "turnserver"
REALM = "consult.test"
CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "turnserver.conf"


class TurnServer:
    """``peers``: the addresses it may relay to (the consult server's media addresses)."""

    def __init__(self, directory: Path, peers: list[str]) -> None:
        self.peers = peers
        self.port = free_port()
        self.secret = secrets.token_hex(16)
        self.directory = directory
        self.log = directory / "turnserver.log"
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def start(self, timeout: float = 10.0) -> None:
        if shutil.which(TURNSERVER) is None:  # CI installs it (scripts/test): not a skip
            pytest.fail("coturn is not installed: `apt-get install coturn` (scripts/test does)")
        command = [
            TURNSERVER,
            "-c",
            str(CONFIG),
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={self.port}",
            f"--static-auth-secret={self.secret}",
            f"--realm={REALM}",
            "--no-tls",  # no certificate here
            "--no-dtls",
            "--no-tcp",  # UDP only: the relay the test checks
            *(f"--allowed-peer-ip={address}" for address in self.peers),
            "--log-file=stdout",
            "--verbose",
            f"--pidfile={self.directory / 'turnserver.pid'}",
            f"--userdb={self.directory / 'turndb'}",
        ]
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while "UDP listener opened" not in self.log.read_text(errors="replace"):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"turnserver did not start:\n{self.log_tail()}")
            time.sleep(0.05)
        self._answers_binding()

    def _answers_binding(self) -> None:
        """A STUN binding request answered: the UDP listener is up."""
        request = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + secrets.token_bytes(12)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.settimeout(2)
            udp.sendto(request, ("127.0.0.1", self.port))
            answer, _ = udp.recvfrom(2048)
        assert answer[:2] == b"\x01\x01", answer[:2]  # a binding success response

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.popen = None
