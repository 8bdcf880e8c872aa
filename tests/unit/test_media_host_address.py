"""The node's media address: aioice's own gathering (a real UDP socket) on that address only,
the address announced behind a 1:1 NAT written into the candidates, bad settings refused.

The gathering goes through ``aioice.ice.get_host_addresses``, which consult/media/host_address.py
replaces: an aioice upgrade that stops calling it fails here first."""

from __future__ import annotations

import aioice
import aioice.ice
import pytest

from consult.media.host_address import ANY_ADDRESS, MediaAddress

ANSWER = (
    "v=0\r\n"
    "m=audio 40000 UDP/TLS/RTP/SAVPF 96\r\n"
    "c=IN IP4 10.0.0.5\r\n"
    "a=candidate:0a1b 1 udp 2130706431 10.0.0.5 40000 typ host\r\n"
    "a=candidate:0a1c 1 udp 1694498815 198.51.100.7 40000 typ srflx raddr 10.0.0.5 rport 40000\r\n"
)


async def candidates(address: MediaAddress) -> list[str]:
    connection = aioice.Connection(ice_controlling=True)
    try:
        with address.gathering():
            await connection.gather_candidates()
        return [c.host for c in connection.local_candidates]
    finally:
        await connection.close()


async def test_peers_gather_on_the_configured_address_only() -> None:
    assert await candidates(MediaAddress("127.0.0.1")) == ["127.0.0.1"]
    # Outside the block, and without an address, aioice gathers as it always does (never on
    # loopback): the hook answers only for a gathering that asked.
    everywhere = await candidates(ANY_ADDRESS)
    assert "127.0.0.1" not in everywhere
    assert aioice.ice.get_host_addresses(True, False) == [a for a in everywhere if "." in a]


def test_the_public_address_replaces_the_bound_one_in_the_answer() -> None:
    announced = MediaAddress("10.0.0.5", "203.0.113.9").announced(ANSWER)
    assert "a=candidate:0a1b 1 udp 2130706431 203.0.113.9 40000 typ host\r\n" in announced
    assert "c=IN IP4 203.0.113.9\r\n" in announced
    # A server-reflexive candidate (from STUN) keeps its own address; only host lines change.
    assert "198.51.100.7 40000 typ srflx raddr 10.0.0.5" in announced
    assert MediaAddress("10.0.0.5").announced(ANSWER) == ANSWER


@pytest.mark.parametrize(
    ("bind", "public", "problem"),
    [
        ("eth0", "", "CONSULT_MEDIA_ADDRESS must be an IP address"),
        ("10.0.0.5", "consult.example.org", "CONSULT_MEDIA_PUBLIC_ADDRESS must be an IP address"),
        ("", "203.0.113.9", "CONSULT_MEDIA_PUBLIC_ADDRESS needs CONSULT_MEDIA_ADDRESS"),
    ],
)
def test_a_bad_media_address_stops_start_up(bind: str, public: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        MediaAddress(bind, public)
