"""One middleware turns every failure into a JSON error body; clients never see a traceback."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

from aiohttp import web

from consult.audit import audit_id, refusals_watched
from consult.errors import ConsultError, LimitReached, Unavailable
from consult.http.routing import REQUEST_ACTOR, SERVICES

log = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str, **extra: object) -> web.Response:
    error: dict[str, object] = {"code": code, "message": message, **extra}
    return web.json_response({"error": error}, status=status)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    with refusals_watched() as noted:
        try:
            return await handler(request)
        except ConsultError as exc:
            await _audit_refusal(request, noted, exc.status, exc.code)
            response = web.json_response({"error": exc.to_dict()}, status=exc.status)
            retry_after = exc.details.get("retry_after")
            if isinstance(exc, LimitReached | Unavailable) and isinstance(retry_after, int | float):
                # Whole seconds (RFC 9110), rounded up: retrying at once would be refused again.
                response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
            return response
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = {404: "route_not_found", 405: "method_not_allowed", 413: "payload_too_large"}
            status, code_ = exc.status, code.get(exc.status, "http_error")
            await _audit_refusal(request, noted, status, code_)
            response = error_response(status, code_, exc.reason or "request refused")
            if "Allow" in exc.headers:  # a 405 names the methods the path takes (RFC 9110)
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return error_response(500, "internal", "something went wrong on our side")


async def _audit_refusal(request: web.Request, noted: list[str], status: int, code: str) -> None:
    """Every refusal (4xx) to a known user leaves an audit row (docs/architecture.md, Audit):
    the service's own, or this one. Before the session is known there is nobody to name."""
    actor = request.get(REQUEST_ACTOR)
    if actor is None or status >= 500:
        return
    await request.app[SERVICES].audit.refused_at_edge(
        actor,
        noted,
        f"{status} {code}: {request.method} {request.path}",
        patient_id=audit_id(request.match_info.get("patient_id")),
        consultation_id=audit_id(request.match_info.get("consultation_id")),
        rate_limited=status == 429,
    )
