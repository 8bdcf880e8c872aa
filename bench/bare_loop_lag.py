"""The bare servers' own event-loop lag, measured as consult measures its own.

``install(app)`` gives a bare server consult's loop-lag histogram (``Metrics``: the same
metric, buckets and sampler as ``consult serve``) on ``GET /metrics``, so that the benches
(bench/loop_lag.py) report the bare server's lag beside consult's, phase by phase: a lag that
the bare server shows too comes from the load, not from what consult adds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from consult.http.metrics import Metrics


def install(app: web.Application) -> None:
    metrics = Metrics()

    async def sampling(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(metrics.sample_loop_lag())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def scrape(_request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(metrics.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app.cleanup_ctx.append(sampling)
    app.router.add_get("/metrics", scrape)
