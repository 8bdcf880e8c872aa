"""One middleware turns every failure into a JSON error body; clients never see a traceback."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from consult.errors import ConsultError

log = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str, **extra: object) -> web.Response:
    error: dict[str, object] = {"code": code, "message": message, **extra}
    return web.json_response({"error": error}, status=status)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ConsultError as exc:
        return web.json_response({"error": exc.to_dict()}, status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "route_not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        response = error_response(
            exc.status, code.get(exc.status, "http_error"), exc.reason or "request refused"
        )
        if "Allow" in exc.headers:  # a 405 names the methods the path takes (RFC 9110)
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "something went wrong on our side")
