"""deploy/haproxy.cfg and deploy/haproxy_config.py: the shipped file and the ones written for
other addresses are valid HAProxy configurations (``haproxy -c``, Debian's package, which
scripts/test installs), naming exactly the nodes given."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from deploy.haproxy_config import TEMPLATE, main, render

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def _valid(config: Path) -> None:
    checked = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_shipped_file_is_valid_and_fronts_three_local_nodes() -> None:
    _valid(TEMPLATE)
    text = TEMPLATE.read_text()
    assert "    bind 127.0.0.1:8080\n" in text
    servers = [
        line.split()[1:3] for line in text.splitlines() if line.strip().startswith("server ")
    ]
    assert servers == [
        ["node1", "127.0.0.1:8081"],
        ["node2", "127.0.0.1:8082"],
        ["node3", "127.0.0.1:8083"],
    ]


def test_a_file_for_other_addresses_names_only_those_nodes(tmp_path: Path) -> None:
    text = render("0.0.0.0:80", ["10.0.0.11:8080", "[2001:db8::2]:8080"], "/run/consult.sock")
    config = tmp_path / "haproxy.cfg"
    config.write_text(text.replace("/run/consult.sock", str(tmp_path / "s.sock")))
    _valid(config)
    lines = [line.strip() for line in text.splitlines()]
    assert [x for x in lines if x.startswith("server ")] == [
        "server node1 10.0.0.11:8080",
        "server node2 [2001:db8::2]:8080",
    ]
    assert "bind 0.0.0.0:80" in lines
    assert "stats socket /run/consult.sock mode 600 level admin" in lines
    # Everything else as shipped: the checks, timeouts and balancing.
    assert [x for x in lines if not x.startswith(("server ", "bind ", "stats "))] == [
        x
        for x in (y.strip() for y in TEMPLATE.read_text().splitlines())
        if not x.startswith(("server ", "bind "))
    ]


@pytest.mark.parametrize("node", ["10.0.0.1", "10.0.0.1:80 stats enable", "10.0.0.1:80\n"])
def test_a_bad_address_writes_nothing(node: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--bind", "127.0.0.1:8080", node]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "not a HOST:PORT address" in out.err
