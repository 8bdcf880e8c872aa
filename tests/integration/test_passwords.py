"""Password reset by e-mail (30 minutes, once, every session ended), password change (other
sessions ended, a wrong current password throttled like a login), one's sessions and "log out
everywhere". A real SMTP server (aiosmtpd) receives the links."""

from __future__ import annotations

import sqlalchemy as sa

from consult.storage import tables as t
from tests.integration.accounts_support import (  # noqa: F401 (fixtures)
    PASSWORD,
    mail_fixture,
    mail_server_fixture,
)
from tests.mail_server import link_token
from tests.support import count, rows

NEW = "another long passphrase"


async def _hash(database_url: str, email: str) -> str:
    (row,) = await rows(database_url, t.users, t.users.c.email == email)
    return str(row.password_hash)


async def test_reset_by_e_mail_ends_every_session_and_works_once(api, mail, database_url):
    anna = await api("anna@demo.test")
    anonymous = await api()
    for email in ("anna@demo.test", "nobody@example.org"):  # the same answer for both
        answer = await anonymous.call("POST", "/api/password/forgot", {"email": email}, expect=202)
        assert answer == {"status": "check_your_email"}
    message = await mail.wait("anna@demo.test")
    assert message["Subject"] == "Reset your password"
    token = link_token(message)
    assert mail.to("nobody@example.org") == []
    before = await _hash(database_url, "anna@demo.test")

    for weak, code in (("short", "weak_password"), ("iloveyou1234", "common_password")):
        body = {"token": token, "password": weak}
        refused = await anonymous.call("POST", "/api/password/reset", body, expect=400)
        assert refused["error"]["code"] == code
    assert await _hash(database_url, "anna@demo.test") == before  # nothing changed
    await anna.call("GET", "/api/me")  # her session still holds

    reset = {"token": token, "password": NEW}
    await anonymous.call("POST", "/api/password/reset", reset, expect=204)
    assert (await anna.call("GET", "/api/me", expect=401))["error"]["code"] == "session_expired"
    again = await anonymous.call(
        "POST", "/api/password/reset", {"token": token, "password": NEW + "!"}, expect=400
    )
    assert again["error"]["code"] == "token_used"
    await (await api()).login("anna@demo.test", NEW)
    old = {"email": "anna@demo.test", "password": "demo1234"}
    assert (await anonymous.call("POST", "/api/login", old, expect=401))["error"]["code"] == (
        "bad_credentials"
    )


async def test_a_reset_link_expires_after_30_minutes_and_a_newer_one_retires_it(
    api, mail, clock, database_url
):
    anonymous = await api()
    forgot = {"email": "piotr@demo.test"}
    await anonymous.call("POST", "/api/password/forgot", forgot, expect=202)
    first = link_token(await mail.wait("piotr@demo.test"))
    await anonymous.call("POST", "/api/password/forgot", forgot, expect=202)
    second = link_token(await mail.wait("piotr@demo.test", 2))
    body = {"token": first, "password": NEW}
    retired = await anonymous.call("POST", "/api/password/reset", body, expect=400)
    assert retired["error"]["code"] == "token_used"
    clock.advance(30 * 60 + 1)
    body = {"token": second, "password": NEW}
    late = await anonymous.call("POST", "/api/password/reset", body, expect=400)
    assert late["error"]["code"] == "token_expired"
    bogus = {"token": "x" * 43, "password": NEW}
    assert (await anonymous.call("POST", "/api/password/reset", bogus, expect=400))["error"][
        "code"
    ] == "token_invalid"
    await (await api()).login("piotr@demo.test")  # the old password still works


async def test_change_ends_the_other_sessions_and_a_wrong_current_password_is_throttled(
    api, database_url
):
    here = await api("piotr@demo.test")
    elsewhere = await api("piotr@demo.test")
    before = await _hash(database_url, "piotr@demo.test")
    wrong = {"current_password": "not it", "new_password": NEW}
    answer = await here.call("POST", "/api/me/password", wrong, expect=403)
    assert answer["error"]["code"] == "wrong_password"
    weak = {"current_password": "demo1234", "new_password": "short"}
    assert (await here.call("POST", "/api/me/password", weak, expect=400))["error"]["code"] == (
        "weak_password"
    )
    assert await _hash(database_url, "piotr@demo.test") == before
    await elsewhere.call("GET", "/api/me")

    right = {"current_password": "demo1234", "new_password": NEW}
    await here.call("POST", "/api/me/password", right, expect=204)
    await here.call("GET", "/api/me")
    await elsewhere.call("GET", "/api/me", expect=401)

    for _ in range(5):  # the account's free failures (CONSULT_LOGIN_FREE_ATTEMPTS)
        await here.call("POST", "/api/me/password", wrong, expect=403)
    throttled = await here.call("POST", "/api/me/password", wrong, expect=429)
    assert throttled["error"]["code"] == "too_many_attempts"


async def test_sessions_list_and_log_out_everywhere(api, database_url):
    first = await api("basia@demo.test")
    second = await api("basia@demo.test")
    listed = (await second.call("GET", "/api/me/sessions"))["sessions"]
    assert len(listed) == 2 and sorted(s["current"] for s in listed) == [False, True]
    assert all(s["ip"] == "127.0.0.1" for s in listed)
    assert "token" not in str(listed)
    ended = await first.call("POST", "/api/me/sessions/logout-all")
    assert ended == {"ended": 2}
    await first.call("GET", "/api/me", expect=401)
    await second.call("GET", "/api/me", expect=401)
    basia = sa.select(t.users.c.id).where(t.users.c.email == "basia@demo.test").scalar_subquery()
    assert await count(database_url, t.sessions, t.sessions.c.user_id == basia) == 0
