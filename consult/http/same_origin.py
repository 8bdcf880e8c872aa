"""Cross-site request forgery: a request that rides on the session cookie and changes state
must come from the pages' own origin, and send JSON where the route takes JSON.

A browser attaches the cookie to a request another site makes it send (a form, a ``fetch``
with ``mode: "no-cors"``); such a site cannot set ``Authorization`` or a JSON content type
without a CORS preflight, which this server never grants. So the check applies to POST, PUT,
PATCH and DELETE requests that carry the session cookie and no bearer token:

- ``Origin`` (or, when a browser sends none, the scheme, host and port of ``Referer``) must be
  one of the allowed origins, compared without case and with default ports (80, 443) dropped;
  a foreign, missing, ``null`` or unreadable one is refused with 403 ``cross_origin``.
- A route that takes a JSON body refuses a body of any other ``Content-Type`` with 415
  ``unsupported_media_type`` (``text/plain`` and form bodies are what forms can send); an
  empty body says nothing and is read as ``{}``, as for every client.

The allowed origins are ``CONSULT_PUBLIC_ORIGIN`` when it is set. Otherwise they are the
request's own ``scheme://Host``; when the TCP peer is a trusted proxy
(``CONSULT_TRUSTED_PROXIES``), also ``X-Forwarded-Proto://X-Forwarded-Host`` (each header's
first value; the proto defaulting to the request's scheme, the host to ``Host``), which is the
origin the browser saw in front of a proxy that terminates TLS.

Requests with a bearer token, requests without the cookie (login included) and safe methods
are not checked: nothing a forged request could ride on is there.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from aiohttp import web

from consult.edges.client_address import TrustedProxies
from consult.errors import Invalid, NotAllowed

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}


class UnsupportedMediaType(Invalid):
    status = 415
    default_code = "unsupported_media_type"


def normalize(origin: str) -> str | None:
    """``scheme://host[:port]`` in lower case, the scheme's default port dropped; None for
    anything that is not an http(s) origin (``null``, a path, garbage)."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is not None and str(port) != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


def parse_public_origins(raw: str) -> frozenset[str]:
    """``CONSULT_PUBLIC_ORIGIN``: comma-separated origins; a mistake stops start-up."""
    origins = set()
    for item in raw.split(","):
        if not item.strip():
            continue
        origin = normalize(item)
        if origin is None or urlsplit(item.strip()).path not in ("", "/"):
            raise ValueError(
                f"CONSULT_PUBLIC_ORIGIN: {item.strip()!r} is not an origin like https://host[:port]"
            )
        origins.add(origin)
    return frozenset(origins)


def allowed_origins(
    request: web.Request, public: frozenset[str], proxies: TrustedProxies
) -> set[str]:
    if public:
        return set(public)
    host = request.headers.get("Host", "")
    allowed = {request.scheme + "://" + host}
    if request.remote and _trusted(proxies, request.remote):
        proto = _first(request.headers.get("X-Forwarded-Proto")) or request.scheme
        forwarded_host = _first(request.headers.get("X-Forwarded-Host")) or host
        allowed.add(proto + "://" + forwarded_host)
    return {o for o in (normalize(a) for a in allowed) if o is not None}


def client_origin(request: web.Request, public: frozenset[str], proxies: TrustedProxies) -> str:
    """The origin the client reached, for absolute URLs in an answer: the one configured (of
    several, the request's own if it is one), else what a trusted proxy forwarded, else the
    request's own ``scheme://Host``."""
    own = normalize(request.scheme + "://" + request.host) or f"{request.scheme}://localhost"
    if public:
        return own if own in public else sorted(public)[0]
    if request.remote and _trusted(proxies, request.remote):
        proto = _first(request.headers.get("X-Forwarded-Proto")) or request.scheme
        host = _first(request.headers.get("X-Forwarded-Host")) or request.host
        return normalize(proto + "://" + host) or own
    return own


PUBLIC_ORIGINS = web.AppKey("public_origins", frozenset)


def check_same_origin(
    request: web.Request, cookie: str, takes_json: bool, proxies: TrustedProxies
) -> None:
    """Raise ``cross_origin`` (403) or ``unsupported_media_type`` (415) for a cookie-borne
    state change from elsewhere; return for everything else."""
    if request.method not in UNSAFE_METHODS or cookie not in request.cookies:
        return
    if request.headers.get("Authorization", "").lower().startswith("bearer "):
        return
    claimed = request.headers.get("Origin") or request.headers.get("Referer") or ""
    origin = normalize(claimed)
    public = request.app[PUBLIC_ORIGINS]
    if origin is None or origin not in allowed_origins(request, public, proxies):
        raise NotAllowed(
            "this request must come from the pages' own origin (Origin or Referer); "
            "API clients send a bearer token instead of the cookie",
            code="cross_origin",
        )
    content_type = request.content_type if "Content-Type" in request.headers else "none"
    if takes_json and request.body_exists and content_type != "application/json":
        raise UnsupportedMediaType(
            f"this route takes a JSON body (Content-Type: application/json), not {content_type}"
        )


def _first(value: str | None) -> str:
    return (value or "").split(",")[0].strip()


def _trusted(proxies: TrustedProxies, peer: str) -> bool:
    try:
        return proxies.trusts(ipaddress.ip_address(peer))
    except ValueError:
        return False
