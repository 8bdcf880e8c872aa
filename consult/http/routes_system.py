"""Health and the API description."""

from __future__ import annotations

import sqlalchemy as sa
from aiohttp import web

from consult.http.routing import SERVICES, Api
from consult.schemas import HealthOut

api = Api()


@api.route(
    "GET",
    "/healthz",
    summary="Liveness and database reachability.",
    response=HealthOut,
    auth=False,
    tag="system",
)
async def healthz(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    try:
        async with services.db.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        database = "ok"
    except Exception:
        database = "unreachable"
    out = HealthOut(
        status="ok" if database == "ok" else "degraded",
        database=database,
        bus="redis" if services.settings.redis_url else "in-process",
    )
    return web.json_response(out.model_dump(), status=200 if database == "ok" else 503)


@api.route(
    "GET", "/api/openapi.json", summary="This API, as OpenAPI 3.1.", auth=False, tag="system"
)
async def openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[OPENAPI])


OPENAPI = web.AppKey("openapi", dict)
