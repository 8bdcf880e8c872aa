#!/usr/bin/env python3
"""Write deploy/haproxy.cfg for other addresses: the frontend's ``bind`` and one ``server``
line per ``consult serve`` node; everything else as shipped. Standard library only.

    python3 deploy/haproxy_config.py --bind 0.0.0.0:8080 10.0.0.11:8080 10.0.0.12:8080 > haproxy.cfg

``--stats-socket PATH`` adds HAProxy's runtime API on a Unix socket (``show stat``,
``disable server consult_nodes/node2``), as scripts/serve and the cluster tests use it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().with_name("haproxy.cfg")
_ADDRESS = re.compile(r"(\[[0-9a-fA-F:.]+\]|[\w.-]+):\d{1,5}")


def render(bind: str, nodes: list[str], stats_socket: str | None = None) -> str:
    """The shipped file with this ``bind`` and these nodes (named node1, node2, ...)."""
    for address in (bind, *nodes):
        if not _ADDRESS.fullmatch(address):
            raise ValueError(f"not a HOST:PORT address: {address!r}")
    if not nodes:
        raise ValueError("at least one node is needed")
    out: list[str] = []
    for line in TEMPLATE.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("server node"):
            if not out[-1].strip().startswith("server node"):
                out += [f"    server node{i} {node}" for i, node in enumerate(nodes, 1)]
            continue
        if stripped.startswith("bind "):
            line = f"    bind {bind}"
        out.append(line)
        if stripped == "global" and stats_socket:
            out.append(f"    stats socket {stats_socket} mode 600 level admin")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bind", default="127.0.0.1:8080", help="where HAProxy listens")
    parser.add_argument("--stats-socket", help="a Unix socket for HAProxy's runtime API")
    parser.add_argument("nodes", nargs="+", metavar="NODE", help="a node's HOST:PORT")
    args = parser.parse_args(argv)
    try:
        sys.stdout.write(render(args.bind, args.nodes, args.stats_socket))
    except ValueError as exc:
        print(f"haproxy_config: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
