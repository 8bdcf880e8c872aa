"""The session cookie: set by the login route, read by every route and the Socket.IO handshake."""

from __future__ import annotations

SESSION_COOKIE = "consult_session"
