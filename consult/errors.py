"""Domain errors, mapped to HTTP statuses and Socket.IO error acks at the edges.

    ConsultError                 500 internal (never raised on purpose)
    ├── Invalid                  400 a payload or value is malformed
    ├── NotAuthenticated         401 no valid session
    ├── NotAllowed               403 the actor may not do this
    ├── NotFound                 404 no such thing (or not visible to the actor)
    ├── Conflict                 409 the state does not allow it now
    ├── Unprocessable            422 well-formed, but at odds with an earlier request
    ├── LimitReached             429 a quota or rate limit is reached
    └── Unavailable              503 a part the answer needs (the database, another node) is
                                 not there now

Each error carries a stable machine ``code`` and a human ``message``; ``details``
is an optional JSON-able dict (e.g. the failing fields of a payload).
"""

from __future__ import annotations

from typing import Any


class ConsultError(Exception):
    status = 500
    default_code = "internal"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class Invalid(ConsultError):
    status = 400
    default_code = "invalid"


class NotAuthenticated(ConsultError):
    status = 401
    default_code = "not_authenticated"


class NotAllowed(ConsultError):
    status = 403
    default_code = "not_allowed"


class NotFound(ConsultError):
    status = 404
    default_code = "not_found"


class Conflict(ConsultError):
    status = 409
    default_code = "conflict"


class Unprocessable(ConsultError):
    status = 422
    default_code = "unprocessable"


class LimitReached(ConsultError):
    status = 429
    default_code = "limit_reached"


class Unavailable(ConsultError):
    """Not the request's fault, nor a bug: try again later (``details.retry_after`` when the
    server knows when)."""

    status = 503
    default_code = "unavailable"


# Every class above by its status: an error another node sent back (``calls/node_link.py``) is
# raised here as the same class.
BY_STATUS: dict[int, type[ConsultError]] = {
    cls.status: cls
    for cls in (
        Invalid,
        NotAuthenticated,
        NotAllowed,
        NotFound,
        Conflict,
        Unprocessable,
        LimitReached,
        Unavailable,
    )
}
