"""Sockets live no longer than their session.

A connection is authenticated once, at connect; without this, a socket kept receiving the
user's consultations, chat and record changes after a logout or after the session expired.
A logout disconnects this process's sockets of that session at once (``SessionEnded`` on the
bus); ``check`` disconnects every local socket whose session is gone, whichever process ended
it or however it expired, and deletes expired sessions; it runs every
``CONSULT_SESSION_CHECK_INTERVAL`` seconds.
"""

from __future__ import annotations

import logging

import socketio

from consult.accounts.service import AccountService
from consult.events import Event, SessionEnded

log = logging.getLogger(__name__)

TOKEN_HASH = "token_hash"  # the key in each socket's session


class SessionGuard:
    def __init__(self, sio: socketio.AsyncServer, accounts: AccountService) -> None:
        self._sio = sio
        self._accounts = accounts

    async def __call__(self, event: Event) -> None:
        if isinstance(event, SessionEnded):
            sockets = await self._local_sockets()
            await self._disconnect([sid for sid, h in sockets.items() if h == event.token_hash])

    async def check(self) -> None:
        """Disconnect local sockets whose session has ended; delete expired sessions."""
        sockets = await self._local_sockets()
        if sockets:
            live = await self._accounts.live_sessions(set(sockets.values()))
            await self._disconnect([sid for sid, h in sockets.items() if h not in live])
        purged = await self._accounts.purge_expired()
        if purged:
            log.info("%d expired sessions deleted", purged)

    async def _local_sockets(self) -> dict[str, str]:
        """sid -> session token hash, for the sockets this process holds."""
        found: dict[str, str] = {}
        for sid, _ in list(self._sio.manager.get_participants("/", None)):
            try:
                session = await self._sio.get_session(sid)
            except KeyError:  # gone meanwhile
                continue
            if TOKEN_HASH in session:
                found[sid] = session[TOKEN_HASH]
        return found

    async def _disconnect(self, sids: list[str]) -> None:
        for sid in sids:
            log.info("socket %s disconnected: its session has ended", sid)
            await self._sio.disconnect(sid)
