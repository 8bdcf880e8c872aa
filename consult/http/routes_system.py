"""Health and the API description."""

from __future__ import annotations

import redis.asyncio
import redis.exceptions
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

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
    also=(503,),  # degraded: the same body names what cannot be reached
    auth=False,
    tag="system",
)
async def healthz(request: web.Request) -> web.StreamResponse:
    if request.app[DRAIN].draining:  # SIGTERM: the load balancer takes this process out
        out = HealthOut(status="draining", database="not checked", bus="not checked")
        return web.json_response(out.model_dump(), status=503)
    services = request.app[SERVICES]
    database = "ok" if await database_reachable(services.db.engine) else "unreachable"
    bus = "in-process"
    if services.settings.redis_url:
        bus = "redis" if await redis_reachable(services.settings.redis_url) else "unreachable"
    healthy = database == "ok" and bus != "unreachable"
    out = HealthOut(status="ok" if healthy else "degraded", database=database, bus=bus)
    return web.json_response(out.model_dump(), status=200 if healthy else 503)


async def database_reachable(engine: AsyncEngine) -> bool:
    """Whether a ``SELECT 1`` is answered. Not bounded here: a database out of reach fails at
    the connect timeout (5 s, storage/engine.py), and a balancer gives up on a slow check by
    its own timeout; a bound of our own counted a busy pool (many requests at once) as down."""
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except Exception:  # refused, lost, timed out: a failure of any kind is "unreachable"
        return False
    return True


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
