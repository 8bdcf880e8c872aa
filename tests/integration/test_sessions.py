"""A socket lives no longer than its session: a logout or an expiry disconnects it, and it
receives nothing of the user's consultations afterwards."""

from __future__ import annotations

import asyncio

import pytest
import socketio

from consult.app import SESSION_GUARD
from consult.storage import tables as t
from tests.support import SocketClient, count


async def disconnected(client: SocketClient, within: float = 3.0) -> bool:
    for _ in range(int(within / 0.02)):
        if not client.sio.connected:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_a_logout_disconnects_that_sessions_sockets_at_once(api, sockets, base_url):
    anna = await api("anna@demo.test")
    anna_ws = await sockets(anna.token)
    other_tab = await api("anna@demo.test")  # another login: another session
    other_ws = await sockets(other_tab.token)
    piotr = await api("piotr@demo.test")
    piotr_ws = await sockets(piotr.token)

    await anna.call("POST", "/api/logout", expect=204)

    assert await disconnected(anna_ws)
    # The session is gone for good: the same token cannot connect again.
    with pytest.raises(socketio.exceptions.ConnectionError):
        await SocketClient().connect(base_url, anna.token)
    # Anna's other session and other users keep their sockets.
    assert other_ws.sio.connected and piotr_ws.sio.connected


async def test_an_expired_session_is_disconnected_at_the_next_check(
    api, sockets, server, clock, database_url
):
    anna = await api("anna@demo.test")
    anna_id = (await anna.call("GET", "/api/me"))["id"]
    anna_ws = await sockets(anna.token)
    guard = server.app[SESSION_GUARD]
    await guard.check()
    assert anna_ws.sio.connected  # still valid: nothing happens
    clock.advance(13 * 3600)  # CONSULT_SESSION_HOURS is 12
    await guard.check()
    assert await disconnected(anna_ws)
    # The expired session is deleted, not just refused.
    assert await count(database_url, t.sessions, t.sessions.c.user_id == anna_id) == 0
