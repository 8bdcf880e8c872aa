"""The client's address behind reverse proxies (consult/edges/client_address.py): trusted peers,
X-Forwarded-For walked from the right, spoofed entries ignored, garbage never an error."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consult.edges.client_address import TrustedProxies
from consult.settings import Settings

PROXIES = TrustedProxies.parse("127.0.0.1, 10.0.0.0/8, ::1, fd00::/8")


def test_nobody_is_trusted_by_default():
    assert Settings().trusted_proxies == ""
    assert Settings.from_env({"CONSULT_TRUSTED_PROXIES": "10.0.0.1"}).trusted_proxies == "10.0.0.1"
    nobody = TrustedProxies.parse("")
    assert nobody.networks == ()
    assert nobody.client("127.0.0.1", ["203.0.113.7"]) == "127.0.0.1"
    assert nobody.client(None, ["203.0.113.7"]) is None


def test_the_setting_takes_addresses_and_networks():
    parsed = TrustedProxies.parse(" 127.0.0.1 ,10.0.0.0/8,, ::1,2001:db8::/32 ,")
    assert parsed.networks == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("2001:db8::/32"),
    )


@pytest.mark.parametrize("raw", ["localhost", "10.0.0.1/8", "10.0.0.0/33", "1.2.3", "::1/129"])
def test_a_mistake_in_the_setting_stops_start_up(raw: str):
    with pytest.raises(ValueError, match="CONSULT_TRUSTED_PROXIES"):
        TrustedProxies.parse(f"127.0.0.1,{raw}")


def test_an_untrusted_peer_is_the_client_whatever_it_sends():
    assert PROXIES.client("203.0.113.7", ["198.51.100.1"]) == "203.0.113.7"
    assert PROXIES.client("2001:db8::7", ["10.0.0.1"]) == "2001:db8::7"
    assert PROXIES.client("192.0.2.1", []) == "192.0.2.1"


def test_a_trusted_peer_without_a_header_is_the_client():
    assert PROXIES.client("127.0.0.1", []) == "127.0.0.1"
    assert PROXIES.client("127.0.0.1", [""]) == "127.0.0.1"
    assert PROXIES.client("127.0.0.1", [" , "]) == "127.0.0.1"


def test_the_first_untrusted_address_from_the_right_is_the_client():
    assert PROXIES.client("127.0.0.1", ["203.0.113.7"]) == "203.0.113.7"
    # client -> edge proxy 10.1.2.3 -> local nginx 127.0.0.1 -> consult
    assert PROXIES.client("127.0.0.1", ["203.0.113.7, 10.1.2.3"]) == "203.0.113.7"
    # An untrusted hop in the middle is as far as the chain is believed.
    assert PROXIES.client("10.0.0.5", ["203.0.113.7, 198.51.100.9, 10.1.2.3"]) == "198.51.100.9"
    # Several headers are one list, in order.
    assert PROXIES.client("127.0.0.1", ["203.0.113.7", "10.1.2.3"]) == "203.0.113.7"


def test_spoofed_left_most_entries_are_ignored():
    # The client wrote "1.1.1.1, 10.9.9.9" itself; nginx appended the address it saw.
    header = ["1.1.1.1, 10.9.9.9, 203.0.113.7"]
    assert PROXIES.client("127.0.0.1", header) == "203.0.113.7"
    # Garbage on the left is never reached.
    assert PROXIES.client("127.0.0.1", ["<script>, unknown, ,203.0.113.7"]) == "203.0.113.7"


def test_every_hop_trusted_gives_the_left_most():
    assert PROXIES.client("127.0.0.1", ["10.0.0.8, 10.0.0.9"]) == "10.0.0.8"


def test_ipv6_peers_entries_and_networks():
    assert PROXIES.client("::1", ["2001:db8::7"]) == "2001:db8::7"
    assert PROXIES.client("fd00::1", ["2001:DB8:0:0::7, fd12::3"]) == "2001:db8::7"
    assert PROXIES.client("::1", ["[2001:db8::7]:51234"]) == "2001:db8::7"
    assert PROXIES.client("::1", ["[2001:db8::7]"]) == "2001:db8::7"
    # An IPv4 peer seen on a dual-stack socket is still the trusted 127.0.0.1.
    assert PROXIES.client("::ffff:127.0.0.1", ["203.0.113.7"]) == "203.0.113.7"
    # IPv4 networks do not match IPv6 addresses, nor the other way round.
    assert TrustedProxies.parse("::/0").client("127.0.0.1", ["203.0.113.7"]) == "127.0.0.1"
    assert TrustedProxies.parse("0.0.0.0/0").client("::1", ["203.0.113.7"]) == "::1"


def test_cidr_boundaries():
    proxies = TrustedProxies.parse("192.0.2.0/30")
    assert proxies.client("192.0.2.3", ["203.0.113.7"]) == "203.0.113.7"
    assert proxies.client("192.0.2.4", ["203.0.113.7"]) == "192.0.2.4"
    assert proxies.client("192.0.2.1", ["203.0.113.7, 192.0.2.2"]) == "203.0.113.7"
    assert proxies.client("192.0.2.1", ["192.0.2.4, 192.0.2.2"]) == "192.0.2.4"


def test_ports_are_dropped():
    assert PROXIES.client("127.0.0.1", ["203.0.113.7:4711"]) == "203.0.113.7"


@pytest.mark.parametrize(
    "header",
    [
        "unknown",
        "example.org",
        "203.0.113.7,",
        "203.0.113.300",
        "203.0.113.7:http",
        "203.0.113.7:123456",
        "[2001:db8::7",
        "[2001:db8::7]x",
        "[203.0.113.7]",
        "fe80::1%eth0",
        "2001:db8::7:" + "1" * 80,
        "203.0.113.7\x00",
        "२०३.0.113.7",
        "for=203.0.113.7",
        "203.0.113.7;proto=https",
    ],
)
def test_a_malformed_entry_falls_back_to_the_peer(header: str):
    assert PROXIES.client("127.0.0.1", [header]) == "127.0.0.1"
    # Reached after trusted hops, too.
    assert PROXIES.client("127.0.0.1", [f"{header}, 10.0.0.1"]) == "127.0.0.1"


def test_a_peer_that_is_no_address_is_kept_as_it_is():
    assert PROXIES.client("", ["203.0.113.7"]) == ""
    assert PROXIES.client("/run/consult.sock", ["203.0.113.7"]) == "/run/consult.sock"
    assert PROXIES.client(None, ["203.0.113.7"]) is None


ipv4 = st.ip_addresses(v=4).map(str)
untrusted = st.ip_addresses(network="203.0.113.0/24").map(str)
trusted_hops = st.lists(st.ip_addresses(network="10.0.0.0/8").map(str), max_size=4)


@given(
    spoofed=st.lists(st.one_of(ipv4, st.text(max_size=20)), max_size=5),
    real=untrusted,
    hops=trusted_hops,
    split=st.booleans(),
)
def test_whatever_the_client_writes_its_real_address_is_found(
    spoofed: list[str], real: str, hops: list[str], split: bool
):
    """The client controls everything left of the address our first proxy appended."""
    entries = [*spoofed, real, *hops]
    headers = entries if split else [", ".join(entries)]
    assert PROXIES.client("127.0.0.1", headers) == real


@given(peer=st.text(max_size=30), headers=st.lists(st.text(max_size=80), max_size=4))
def test_never_fails_and_answers_the_peer_or_an_address(peer: str, headers: list[str]):
    answer = PROXIES.client(peer, headers)
    assert answer == peer or str(ipaddress.ip_address(answer or "")) == answer
    assert answer is None or answer == peer or len(answer) <= 64
