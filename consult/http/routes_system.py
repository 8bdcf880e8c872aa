"""Health and the API description."""

from __future__ import annotations

import redis.asyncio
import redis.exceptions
import sqlalchemy as sa
from aiohttp import web

from consult.edges.draining import DRAIN
from consult.http.openapi import with_specialties
from consult.http.routing import SERVICES, Api
from consult.schemas import HealthOut
from consult.storage import tables as t

api = Api()


@api.route(
    "GET",
    "/healthz",
    summary="Liveness, database and (when configured) Redis reachability.",
    response=HealthOut,
    auth=False,
    tag="system",
)
async def healthz(request: web.Request) -> web.StreamResponse:
    if request.app[DRAIN].draining:  # SIGTERM: the load balancer takes this process out
        out = HealthOut(status="draining", database="not checked", bus="not checked")
        return web.json_response(out.model_dump(), status=503)
    services = request.app[SERVICES]
    try:
        async with services.db.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        database = "ok"
    except Exception:
        database = "unreachable"
    bus = "in-process"
    if services.settings.redis_url:
        bus = "redis" if await redis_reachable(services.settings.redis_url) else "unreachable"
    healthy = database == "ok" and bus != "unreachable"
    out = HealthOut(status="ok" if healthy else "degraded", database=database, bus=bus)
    return web.json_response(out.model_dump(), status=200 if healthy else 503)


async def redis_reachable(url: str, timeout: float = 1.0) -> bool:
    """Whether Redis answers a PING: with several processes, no Redis means no notifications
    across them, so the process is not healthy."""
    client = redis.asyncio.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(await client.ping())
    except (redis.exceptions.RedisError, OSError):
        return False
    finally:
        await client.aclose()


@api.route(
    "GET", "/api/openapi.json", summary="This API, as OpenAPI 3.1.", auth=False, tag="system"
)
async def openapi(request: web.Request) -> web.StreamResponse:
    # Specialty fields list the specialties on record now (data, not code).
    async with request.app[SERVICES].db.uow() as uow:
        query = sa.select(t.specialties.c.code).order_by(t.specialties.c.code)
        codes = list((await uow.conn.execute(query)).scalars())
    return web.json_response(with_specialties(request.app[OPENAPI], codes))


OPENAPI = web.AppKey("openapi", dict)
