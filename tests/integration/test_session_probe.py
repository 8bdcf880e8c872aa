"""The pages' session probe, ``GET /api/session``: 200 with the user, or with ``null`` when there
is no valid session, so that loading a page logged out logs no error; ``/api/me`` and every
route that needs a session still answer 401."""

from __future__ import annotations

import aiohttp


async def test_the_probe_answers_null_without_a_session_and_me_still_401(api):
    anonymous = await api()
    assert await anonymous.call("GET", "/api/session") == {"user": None}
    assert (await anonymous.call("GET", "/api/me", expect=401))["error"]["code"] == (
        "not_authenticated"
    )
    # A forged or ended session is nobody too, not an error.
    anonymous.token = "forged-token"
    assert await anonymous.call("GET", "/api/session") == {"user": None}
    anna = await api("anna@demo.test")
    await anna.call("POST", "/api/logout", expect=204)
    assert await anna.call("GET", "/api/session") == {"user": None}
    assert (await anna.call("GET", "/api/me", expect=401))["error"]["code"] == "session_expired"


async def test_the_probe_names_the_user_of_a_bearer_token_or_a_cookie(api, base_url):
    anna = await api("anna@demo.test")
    me = await anna.call("GET", "/api/me")
    assert await anna.call("GET", "/api/session") == {"user": me}
    # The pages' way: the HttpOnly cookie set by the login, no bearer token.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as page:
        async with page.get(base_url + "/api/session") as response:
            assert (response.status, await response.json()) == (200, {"user": None})
        login = {"email": "anna@demo.test", "password": "demo1234"}
        async with page.post(base_url + "/api/login", json=login) as response:
            assert response.status == 200
        async with page.get(base_url + "/api/session") as response:
            assert (response.status, await response.json()) == (200, {"user": me})
