"""Log in and out, who am I, the specialty catalogue."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from consult.accounts.schemas import LoginOut, TotpIn, TotpSetupOut
from consult.accounts.two_factor import Challenge
from consult.domain import Actor
from consult.edges.session_cookie import SESSION_COOKIE
from consult.errors import NotAuthenticated
from consult.http.routing import (
    SERVICES,
    Api,
    client_ip,
    request_actor,
    request_token,
)
from consult.schemas import LoginIn, SessionOut, SpecialtiesOut, UserOut

api = Api()


@api.route(
    "POST",
    "/api/login",
    summary="Log in with email and password. Sets an HttpOnly session cookie for the pages and "
    "returns a bearer token for API and Socket.IO clients. Staff (and patients who turned it "
    "on) get no session yet but totp_required with a challenge for POST /api/login/totp. "
    "Failed logins lock the account (by default after 5) and the client address (after 20) "
    "for a delay that doubles from 1 s up to 30 s: 429 too_many_attempts with Retry-After.",
    body=LoginIn,
    response=LoginOut,
    auth=False,
    errors=("invalid_payload", "bad_credentials", "too_many_attempts"),
    tag="accounts",
)
async def login(request: web.Request, body: LoginIn) -> web.StreamResponse:
    services = request.app[SERVICES]
    ip = client_ip(request)
    step = await services.accounts.login(body.email, body.password, ip)
    if isinstance(step, Challenge):
        setup = step.setup
        out = LoginOut(
            token=None,
            expires_at=None,
            user=None,
            totp_required=True,
            challenge=step.challenge,
            totp_setup=TotpSetupOut(secret=setup.secret, uri=setup.uri) if setup else None,
        )
        return web.json_response(out.model_dump(mode="json"))
    token, expires = step
    return await _session_response(request, token, expires, None)


@api.route(
    "POST",
    "/api/login/totp",
    summary="The login's second step: the 6-digit TOTP code (or a recovery code, once) with "
    "the challenge of POST /api/login. Answers as a login does; the first code of a member of "
    "staff setting TOTP up turns it on and returns their recovery codes (shown once). A wrong "
    "code counts as a failed login.",
    body=TotpIn,
    response=LoginOut,
    auth=False,
    errors=(
        "invalid_payload",
        "bad_totp_code",
        "too_many_attempts",
        "token_invalid",
        "token_used",
        "token_expired",
    ),
    tag="accounts",
)
async def login_totp(request: web.Request, body: TotpIn) -> web.StreamResponse:
    accounts = request.app[SERVICES].accounts
    token, expires, codes = await accounts.login_totp(body.challenge, body.code, client_ip(request))
    return await _session_response(request, token, expires, codes or None)


async def _session_response(
    request: web.Request, token: str, expires: datetime, codes: list[str] | None
) -> web.StreamResponse:
    services = request.app[SERVICES]
    actor = await services.accounts.authenticate(token, client_ip(request))
    out = LoginOut(
        token=token,
        expires_at=expires,
        user=await services.accounts.user(actor.user_id),
        recovery_codes=codes,
    )
    response = web.json_response(out.model_dump(mode="json"))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=services.settings.secure_cookies,
        max_age=services.settings.session_hours * 3600,
        path="/",
    )
    return response


@api.route(
    "POST",
    "/api/logout",
    summary="End the session (cookie or bearer token).",
    status=204,
    tag="accounts",
    errors=("not_authenticated",),
)
async def logout(request: web.Request, actor: Actor) -> web.StreamResponse:
    token = request_token(request)
    if token:
        await request.app[SERVICES].accounts.logout(token)
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@api.route(
    "GET",
    "/api/me",
    summary="The logged-in user.",
    response=UserOut,
    tag="accounts",
    errors=("not_authenticated",),
)
async def me(request: web.Request, actor: Actor) -> UserOut:
    return await request.app[SERVICES].accounts.user(actor.user_id)


@api.route(
    "GET",
    "/api/session",
    summary="The session probe for pages: the logged-in user, or null without a valid session "
    "(200 either way, so a page's first load logs no error).",
    response=SessionOut,
    auth=False,
    tag="accounts",
)
async def session(request: web.Request) -> SessionOut:
    services = request.app[SERVICES]
    try:
        actor = await request_actor(request)
    except NotAuthenticated:
        return SessionOut(user=None)
    return SessionOut(user=await services.accounts.user(actor.user_id))


@api.route(
    "GET",
    "/api/specialties",
    summary="All specialties; for a patient, whether their plan covers each.",
    response=SpecialtiesOut,
    tag="accounts",
    errors=("not_authenticated",),
)
async def specialties(request: web.Request, actor: Actor) -> SpecialtiesOut:
    return SpecialtiesOut(specialties=await request.app[SERVICES].accounts.specialties(actor))
