"""Who the client is when reverse proxies stand in front: the direct peer and its
``X-Forwarded-For`` header in, the address written to the audit log out.

Pure (strings in, a string out). The HTTP routes and the Socket.IO handshake both call it.

The rule (docs/operations.md, "Client addresses behind a proxy"):

- A peer that is not a trusted proxy is the client, whatever headers it sends.
- A trusted peer's ``X-Forwarded-For`` is read from the right. Each proxy appends the address
  it got the request from, so the right-most entries come from our own proxies. Trusted
  addresses are skipped, and the first untrusted one is the client. The entries to its left
  were written by that untrusted client (or its proxies) and are never read.
- If every entry is trusted, the left-most one is the client: a request made on a proxy's own
  machine.
- The peer is the answer, and nothing is refused, when the header is missing or empty, or when
  the walk reaches an entry that is not an IP address (``unknown``, a name, an empty item, a
  zone id).

``Forwarded`` (RFC 7239) is not read. A proxy that appends only to ``X-Forwarded-For`` (nginx,
HAProxy, Caddy, Traefik, Envoy) passes a client's ``Forwarded`` header through unchanged. If
both headers were read, a client could choose its own address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

FORWARDED_FOR = "X-Forwarded-For"
# Either header means that a proxy relayed the request (the /metrics loopback rule).
FORWARDING_HEADERS = (FORWARDED_FOR, "Forwarded")

# Longer than any address with a port (audit_log.ip holds 64 characters).
_MAX_ENTRY = 64


@dataclass(frozen=True)
class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` entries are believed (``CONSULT_TRUSTED_PROXIES``).
    With none (the default), the peer is always the client."""

    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, raw: str) -> TrustedProxies:
        """Comma-separated IP addresses and CIDR networks (``10.0.0.0/8``, ``::1``). A
        mistake stops start-up: a network with host bits set (``10.0.0.1/8``) is refused
        instead of being widened quietly."""
        networks = []
        for item in raw.split(","):
            entry = item.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=True))
            except ValueError as exc:
                raise ValueError(
                    f"CONSULT_TRUSTED_PROXIES: {entry!r} is not an IP address or network ({exc})"
                ) from None
        return cls(tuple(networks))

    def trusts(self, address: IPAddress) -> bool:
        # An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d.
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        candidates = (address,) if mapped is None else (address, mapped)
        return any(candidate in net for candidate in candidates for net in self.networks)

    def client(self, peer: str | None, forwarded_for: Iterable[str] = ()) -> str | None:
        """The client's address. ``peer`` is the TCP peer (aiohttp's ``request.remote``);
        ``forwarded_for`` holds the values of every ``X-Forwarded-For`` header, in order."""
        if not self.networks or peer is None:
            return peer
        peer_address = _address(peer)
        if peer_address is None or not self.trusts(peer_address):
            return peer
        entries = ",".join(forwarded_for).split(",")
        if not "".join(entries).strip():
            return peer  # no header, or an empty one: the proxy spoke for itself
        candidate: IPAddress | None = None
        for entry in reversed(entries):
            candidate = _address(entry)
            if candidate is None:
                return peer  # malformed: believe only what we saw ourselves
            if not self.trusts(candidate):
                return str(candidate)
        return str(candidate)  # every hop trusted: the left-most is the origin


def _address(entry: str) -> IPAddress | None:
    """An address as proxies write it: ``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``,
    ``[2001:db8::1]`` or ``[2001:db8::1]:443``; None for anything else."""
    text = entry.strip()
    if not text or len(text) > _MAX_ENTRY or "%" in text:  # a zone id means nothing here
        return None
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not (rest.startswith(":") and _is_port(rest[1:]))):
            return None
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    if text.count(":") == 1:  # IPv4 with a port
        host, _, port = text.partition(":")
        if not _is_port(port):
            return None
        text = host
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 5
