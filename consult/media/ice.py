"""STUN / TURN configuration: what the pages and the server's peers use to find each other.

TURN credentials are short-lived, as coturn's ``use-auth-secret`` (the "TURN REST API"):
the username is ``"<expiry unix time>:<user id>"`` and the password is
``base64(HMAC-SHA1(secret, username))``. The page is handed them per consultation; the secret
itself never leaves the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer

from consult.settings import Settings


@dataclass(frozen=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """As the page's ``RTCPeerConnection({iceServers: [...]})`` takes it."""
        body: dict[str, Any] = {"urls": list(self.urls)}
        if self.username is not None:
            body["username"] = self.username
            body["credential"] = self.credential
        return body


def turn_credentials(secret: str, user_id: str, now: float, ttl: int) -> tuple[str, str]:
    if ":" in user_id:
        raise ValueError("a TURN user id may not contain ':'")
    username = f"{int(now) + ttl}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def _urls(raw: str) -> tuple[str, ...]:
    return tuple(url.strip() for url in raw.split(",") if url.strip())


@dataclass(frozen=True)
class IceConfig:
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str = field(default="", repr=False)
    turn_ttl: int = 3600

    def __post_init__(self) -> None:
        for url in self.stun_urls:
            if not url.startswith(("stun:", "stuns:")):
                raise ValueError(f"not a STUN URL: {url!r}")
        for url in self.turn_urls:
            if not url.startswith(("turn:", "turns:")):
                raise ValueError(f"not a TURN URL: {url!r}")
        if self.turn_urls and not self.turn_secret:
            raise ValueError("TURN URLs need CONSULT_TURN_SECRET")
        if self.turn_ttl <= 0:
            raise ValueError("CONSULT_TURN_TTL must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> IceConfig:
        return cls(
            stun_urls=_urls(settings.stun_urls),
            turn_urls=_urls(settings.turn_urls),
            turn_secret=settings.turn_secret,
            turn_ttl=settings.turn_ttl,
        )

    def servers_for(self, user_id: str, now: float) -> list[IceServer]:
        """The ICE servers handed to one participant's page (TURN valid for ``turn_ttl`` s)."""
        servers = [IceServer(self.stun_urls)] if self.stun_urls else []
        if self.turn_urls:
            username, password = turn_credentials(self.turn_secret, user_id, now, self.turn_ttl)
            servers.append(IceServer(self.turn_urls, username, password))
        return servers

    def server_configuration(self) -> RTCConfiguration:
        """The server's own peers: STUN only (the server is reachable; it relays for TURN
        users through their TURN server). An empty list, not None: aiortc would otherwise
        add Google's STUN server."""
        servers = [RTCIceServer(urls=list(self.stun_urls))] if self.stun_urls else []
        return RTCConfiguration(iceServers=servers)
