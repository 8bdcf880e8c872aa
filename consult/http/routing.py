"""A small route registry: each route declares its payload models, which validate the request,
shape the response and describe the route in OpenAPI."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from consult.bundle import Services
from consult.domain import Actor, Client
from consult.edges.client_address import FORWARDED_FOR, TrustedProxies
from consult.edges.session_cookie import SESSION_COOKIE
from consult.edges.validation import validate
from consult.errors import Invalid, NotAuthenticated
from consult.http.same_origin import check_same_origin
from consult.json_limits import JsonRefused, loads
from consult.schemas import MAX_ID
from consult.usage_limits import UsageLimits

SERVICES = web.AppKey("services", Services)
TRUSTED_PROXIES = web.AppKey("trusted_proxies", TrustedProxies)
USAGE_LIMITS = web.AppKey("usage_limits", UsageLimits)
# The request's authenticated actor, for the error middleware's audit of a refusal.
REQUEST_ACTOR = web.RequestKey("consult_actor", Actor)

Handler = Callable[..., Awaitable[BaseModel | web.StreamResponse | None]]


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    auth: bool
    errors: tuple[str, ...]
    tag: str
    # Described in OpenAPI only: the handler reads these itself.
    query: type[BaseModel] | None = None
    upload: type[BaseModel] | None = None  # a multipart/form-data body
    # Required request headers, name -> description (OpenAPI only: the handler reads them).
    headers: tuple[tuple[str, str], ...] = ()
    # Other success statuses with the same body (OpenAPI only: the handler answers them).
    also: tuple[int, ...] = ()
    # The success body's media type (OpenAPI only: a handler that answers another type than
    # JSON builds its web.Response itself).
    media_type: str = "application/json"
    # A body in media_type that the handler reads itself (OpenAPI only: FHIR bundles).
    raw_body: type[BaseModel] | None = None
    # Errors answered in media_type as this model rather than consult's error (OpenAPI only).
    error_body: type[BaseModel] | None = None
    # A credential of another kind than a session, which the handler checks itself: its
    # OpenAPI security scheme (consult/http/openapi.py).
    credential: str | None = None


@dataclass
class Api:
    routes: list[RouteSpec] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        body: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        auth: bool = True,
        errors: tuple[str, ...] = (),
        tag: str = "api",
        query: type[BaseModel] | None = None,
        upload: type[BaseModel] | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        also: tuple[int, ...] = (),
        media_type: str = "application/json",
        raw_body: type[BaseModel] | None = None,
        error_body: type[BaseModel] | None = None,
        credential: str | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(
                RouteSpec(
                    method,
                    path,
                    handler,
                    summary,
                    body,
                    response,
                    status,
                    auth,
                    errors,
                    tag,
                    query,
                    upload,
                    headers,
                    also,
                    media_type,
                    raw_body,
                    error_body,
                    credential,
                )
            )
            return handler

        return register

    def install(self, app: web.Application) -> None:
        for spec in self.routes:
            app.router.add_route(spec.method, spec.path, _endpoint(spec))


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def request_token(request: web.Request) -> str | None:
    return request_credentials(request)[0]


def request_credentials(request: web.Request) -> tuple[str | None, Client]:
    """The session token and the kind of client that sent it: a bearer header (checked first)
    is an API client's, the session cookie the pages'."""
    if "Authorization" in request.headers and request.headers["Authorization"].lower().startswith(
        "bearer "
    ):
        return bearer_token(request), Client.API
    return request.cookies.get(SESSION_COOKIE), Client.PAGE


def client_ip(request: web.Request) -> str | None:
    """The client's address for the audit log: the peer, or what a trusted proxy forwarded."""
    return request.app[TRUSTED_PROXIES].client(
        request.remote, request.headers.getall(FORWARDED_FOR, ())
    )


async def request_actor(request: web.Request) -> Actor:
    services = request.app[SERVICES]
    token, client = request_credentials(request)
    return await services.accounts.authenticate(token, client_ip(request), client)


async def parse_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    raw = await request.read()
    try:
        data: Any = loads(raw) if raw else {}
    except JsonRefused as exc:
        raise Invalid(f"the request body is refused: {exc}", code="malformed_json") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("the request body is not valid JSON", code="malformed_json") from exc
    return validate(model, data)


def _endpoint(spec: RouteSpec) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        # Cookie-borne state changes only from the pages' origin, JSON as JSON (CSRF).
        check_same_origin(
            request, SESSION_COOKIE, spec.body is not None, request.app[TRUSTED_PROXIES]
        )
        actor = await request_actor(request) if spec.auth else None
        if actor is not None:
            request[REQUEST_ACTOR] = actor  # for the error middleware's audit of a refusal
            # Clinical reads: a per-user rate limit (consult/usage_limits.py).
            await request.app[USAGE_LIMITS].route(spec.method, spec.path, actor.user_id)
        for name in request.match_info:  # every path parameter is an id: checked before the body
            int_param(request, name)
        kwargs: dict[str, Any] = {}
        if spec.body is not None:
            kwargs["body"] = await parse_body(request, spec.body)
        if spec.auth:
            kwargs["actor"] = actor
        result = await spec.handler(request, **kwargs)
        if isinstance(result, web.StreamResponse):
            return result
        if result is None:
            return web.Response(status=204)
        return web.json_response(result.model_dump(mode="json"), status=spec.status)

    return endpoint


def query_int(
    request: web.Request, name: str, default: int, low: int, high: int, what: str, *, code: str
) -> int:
    """The query parameter ``name``: ASCII digits (str.isdigit() took "²" and "١") from
    ``low`` to ``high``, else refused with ``code``."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and low <= int(raw) <= high):
        raise Invalid(f"{name} must be {what}, {low} to {high}", code=code)
    return int(raw)


# ASCII digits, no sign, no leading zero, no spaces: int() alone read " 1", "+1", "1_0" and the
# full-width "１" as ids. aiohttp matches the percent-decoded path, so "%31" is "1" (RFC 3986
# §2.3: percent-encoded digits are the digits).
_PATH_ID = re.compile(r"[1-9][0-9]{0,9}", re.ASCII)


def query_flag(request: web.Request, name: str, *, code: str) -> bool:
    """The query parameter ``name``: ``true`` or ``false`` (the default), else refused."""
    raw = request.query.get(name, "false")
    if raw not in ("true", "false"):
        raise Invalid(f"{name} must be true or false", code=code)
    return raw == "true"


def int_param(request: web.Request, name: str) -> int:
    """The path id ``name``: 1 … MAX_ID in plain decimal, else ``invalid_id``."""
    raw = request.match_info.get(name, "")
    if _PATH_ID.fullmatch(raw) is None or int(raw) > MAX_ID:
        raise Invalid(f"{name} must be a whole number from 1 to {MAX_ID}", code="invalid_id")
    return int(raw)


__all__ = ["Api", "NotAuthenticated", "SERVICES", "TRUSTED_PROXIES"]
