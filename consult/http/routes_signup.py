"""Sign-up and e-mail confirmation, password reset and change, one's sessions."""

from __future__ import annotations

from aiohttp import web

from consult.accounts.schemas import (
    AcceptedOut,
    CodeIn,
    ForgotIn,
    LoggedOutOut,
    PasswordChangeIn,
    PasswordIn,
    RecoveryCodesOut,
    ResetIn,
    SessionsOut,
    SignUpIn,
    TokenIn,
    TotpSetupOut,
)
from consult.accounts.service import token_hash
from consult.domain import Actor
from consult.edges.session_cookie import SESSION_COOKIE
from consult.http.routing import SERVICES, Api, client_ip, request_token

api = Api()

_NEW_PASSWORD = ("weak_password", "common_password")
_TOKEN = ("token_invalid", "token_used", "token_expired")


@api.route(
    "POST",
    "/api/signup",
    summary="Sign up as a basic patient account. 202 whether or not the address has an "
    "account (no account enumeration): a new address gets a confirmation link by e-mail, one "
    "with an account an e-mail saying so. Passwords: at least 12 characters, not a common one.",
    body=SignUpIn,
    response=AcceptedOut,
    status=202,
    auth=False,
    errors=("invalid_payload", "invalid_email", "terms_not_accepted") + _NEW_PASSWORD,
    tag="accounts",
)
async def sign_up(request: web.Request, body: SignUpIn) -> AcceptedOut:
    await request.app[SERVICES].signup.sign_up(
        body.email, body.name, body.password, body.accept_terms, client_ip(request)
    )
    return AcceptedOut()


@api.route(
    "POST",
    "/api/signup/confirm",
    summary="Confirm the e-mail address with the token of the link sent at sign-up (once, "
    "within 48 hours). An account books visits only once its address is confirmed.",
    body=TokenIn,
    status=204,
    auth=False,
    errors=("invalid_payload",) + _TOKEN,
    tag="accounts",
)
async def confirm(request: web.Request, body: TokenIn) -> None:
    await request.app[SERVICES].signup.confirm(body.token, client_ip(request))


@api.route(
    "POST",
    "/api/password/forgot",
    summary="Ask for a password reset link by e-mail (valid 30 minutes, once). 202 whether or "
    "not the address has an account (no account enumeration).",
    body=ForgotIn,
    response=AcceptedOut,
    status=202,
    auth=False,
    errors=("invalid_payload", "invalid_email"),
    tag="accounts",
)
async def forgot(request: web.Request, body: ForgotIn) -> AcceptedOut:
    await request.app[SERVICES].passwords.forgot(body.email)
    return AcceptedOut()


@api.route(
    "POST",
    "/api/password/reset",
    summary="Set a new password with a reset link's token (or the set-password link of an "
    "account made by `consult create-user`). Every session of the account ends; the e-mail "
    "counts as confirmed. A refused password leaves the token usable.",
    body=ResetIn,
    status=204,
    auth=False,
    errors=("invalid_payload",) + _TOKEN + _NEW_PASSWORD,
    tag="accounts",
)
async def reset(request: web.Request, body: ResetIn) -> None:
    await request.app[SERVICES].passwords.reset(body.token, body.password, client_ip(request))


@api.route(
    "POST",
    "/api/me/password",
    summary="Change one's password (the current one first); every other session ends. A "
    "wrong current password counts as a failed login (too_many_attempts after several).",
    body=PasswordChangeIn,
    status=204,
    errors=("not_authenticated", "invalid_payload", "wrong_password", "too_many_attempts")
    + _NEW_PASSWORD,
    tag="accounts",
)
async def change_password(request: web.Request, actor: Actor, body: PasswordChangeIn) -> None:
    token = request_token(request)
    await request.app[SERVICES].passwords.change(
        actor, body.current_password, body.new_password, token_hash(token) if token else None
    )


@api.route(
    "GET",
    "/api/me/sessions",
    summary="One's live sessions, newest first: when each began and ends, from which address, "
    "and which is this one.",
    response=SessionsOut,
    errors=("not_authenticated",),
    tag="accounts",
)
async def sessions(request: web.Request, actor: Actor) -> SessionsOut:
    token = request_token(request)
    current = token_hash(token) if token else None
    return SessionsOut(sessions=await request.app[SERVICES].accounts.sessions(actor, current))


@api.route(
    "POST",
    "/api/me/sessions/logout-all",
    summary="Log out everywhere: every session of the account ends, this one too (its "
    "sockets are closed).",
    response=LoggedOutOut,
    errors=("not_authenticated",),
    tag="accounts",
)
async def logout_all(request: web.Request, actor: Actor) -> web.StreamResponse:
    ended = await request.app[SERVICES].accounts.logout_everywhere(actor)
    response = web.json_response(LoggedOutOut(ended=ended).model_dump(mode="json"))
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@api.route(
    "POST",
    "/api/me/totp/setup",
    summary="Two-factor login for a patient: a new TOTP secret (and its otpauth:// URI), in "
    "force once POST /api/me/totp/enable gets a code from it. (Staff set TOTP up at login.)",
    response=TotpSetupOut,
    errors=("not_authenticated", "totp_already_on"),
    tag="accounts",
)
async def totp_setup(request: web.Request, actor: Actor) -> TotpSetupOut:
    made = await request.app[SERVICES].accounts.two_factor.setup(actor)
    return TotpSetupOut(secret=made.secret, uri=made.uri)


@api.route(
    "POST",
    "/api/me/totp/enable",
    summary="Turn two-factor login on with a code from the new secret; returns ten recovery "
    "codes, each usable once instead of a code (shown this time only).",
    body=CodeIn,
    response=RecoveryCodesOut,
    errors=(
        "not_authenticated",
        "invalid_payload",
        "totp_already_on",
        "totp_not_set_up",
        "bad_totp_code",
    ),
    tag="accounts",
)
async def totp_enable(request: web.Request, actor: Actor, body: CodeIn) -> RecoveryCodesOut:
    codes = await request.app[SERVICES].accounts.two_factor.enable(actor, body.code)
    return RecoveryCodesOut(recovery_codes=codes)


@api.route(
    "POST",
    "/api/me/totp/disable",
    summary="A patient turns two-factor login off (their password first). Staff cannot.",
    body=PasswordIn,
    status=204,
    errors=("not_authenticated", "invalid_payload", "totp_required_for_staff", "wrong_password"),
    tag="accounts",
)
async def totp_disable(request: web.Request, actor: Actor, body: PasswordIn) -> None:
    await request.app[SERVICES].accounts.two_factor.disable(actor, body.password)
