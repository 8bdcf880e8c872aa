"""Where a node's media peers are reached: the address their ICE host candidates carry.

By default aioice gathers a host candidate on every address of every interface but loopback,
and the answer lists them all. A node of a cluster says which one the pages should use
(``CONSULT_MEDIA_ADDRESS``): its peers then gather on that address only, so every answer the
node makes (also to an offer another node forwarded to it) carries that node's own address.
Behind a 1:1 NAT (a cloud machine with a public IP that is on no interface),
``CONSULT_MEDIA_PUBLIC_ADDRESS`` is written into the answer's candidates instead; the packets
sent to it reach the bound address through the NAT.

aioice has no per-connection setting for the addresses: it calls the module function
``aioice.ice.get_host_addresses`` while gathering. :meth:`MediaAddress.gathering` replaces that
function once (only when an address is configured) with one that answers the address set for
the gathering in progress (a context variable, so rooms of differently configured registries in
one process, as in tests, do not mix) and asks the original otherwise. aiortc gathers inside
``setLocalDescription``, in tasks that inherit the context.
``tests/unit/test_media_host_address.py`` drives aioice's gathering through it, so an upgrade
that moves the call fails there.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import aioice.ice

from consult.settings import Settings

_GATHER_ON: ContextVar[str | None] = ContextVar("consult_media_address", default=None)
_original: Callable[[bool, bool], list[str]] | None = None


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    address = _GATHER_ON.get()
    if address is not None:
        return [address]
    assert _original is not None
    return _original(use_ipv4, use_ipv6)


def _install() -> None:
    """Put :func:`_host_addresses` in aioice's place (again, if something replaced it since)."""
    global _original
    if aioice.ice.get_host_addresses is not _host_addresses:
        _original = aioice.ice.get_host_addresses
        aioice.ice.get_host_addresses = _host_addresses


def _ip(value: str, setting: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError(f"{setting} must be an IP address, not {value!r}") from None


@dataclass(frozen=True)
class MediaAddress:
    """The node's media address (``bind``) and the one announced for it (``public``)."""

    bind: str = ""
    public: str = ""

    def __post_init__(self) -> None:
        if self.bind:
            object.__setattr__(self, "bind", _ip(self.bind, "CONSULT_MEDIA_ADDRESS"))
        if self.public:
            if not self.bind:
                raise ValueError("CONSULT_MEDIA_PUBLIC_ADDRESS needs CONSULT_MEDIA_ADDRESS")
            object.__setattr__(self, "public", _ip(self.public, "CONSULT_MEDIA_PUBLIC_ADDRESS"))

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaAddress:
        return cls(settings.media_address, settings.media_public_address)

    @contextlib.contextmanager
    def gathering(self) -> Iterator[None]:
        """Host candidates gathered inside this block are on ``bind`` only (when set)."""
        if not self.bind:
            yield
            return
        _install()
        token = _GATHER_ON.set(self.bind)
        try:
            yield
        finally:
            _GATHER_ON.reset(token)

    def announced(self, sdp: str) -> str:
        """``sdp`` as the pages get it: ``bind`` replaced by ``public`` in its candidates and
        connection lines (unchanged without a public address)."""
        if not self.public:
            return sdp
        bind = re.escape(self.bind)
        sdp = re.sub(rf"(a=candidate:\S+ \d+ \S+ \d+ ){bind}( )", rf"\g<1>{self.public}\2", sdp)
        version = "IP6" if ":" in self.public else "IP4"
        return re.sub(rf"c=IN IP[46] {bind}(\r?\n)", rf"c=IN {version} {self.public}\1", sdp)


# No address configured: every interface but loopback, as aioice gathers by default.
ANY_ADDRESS = MediaAddress()
