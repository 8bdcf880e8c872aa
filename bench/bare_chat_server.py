"""The baseline for ``bench/chat_bench.py``: a bare python-socketio chat relay, no storage.

It speaks consult's ``chat:send`` and answers and emits what consult does, from memory: the
same ``socketio.AsyncServer`` settings (``consult/signaling/server.py``) and interpreter tuning
(``consult/runtime.py``), a room ``user:<id>``
per user entered on connect, a per-consultation sequence number, an ack
``{"ok": true, "data": message}`` with a message of the same shape, and ``chat:message`` to
both participants' rooms. What it leaves out: authentication (a token is ``"<role>:<user id>"``),
validation, the database, idempotency by client id, audit, limits.

Consultation ``n`` is between patient ``10000 + n`` and doctor ``20000 + n``.

Run: ``python bench/bare_chat_server.py --port 8766``. Only for benchmarks.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
from datetime import UTC, datetime
from typing import Any

import bare_loop_lag  # bench/bare_loop_lag.py (a script's folder is on sys.path)
import socketio
from aiohttp import web

from consult import runtime

PATIENT_BASE = 10_000
DOCTOR_BASE = 20_000


def create_app() -> web.Application:
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins=None,
        max_http_buffer_size=1_000_000,
        ping_interval=25,
        ping_timeout=20,
        logger=False,
        engineio_logger=False,
    )
    app = web.Application(client_max_size=1_000_000)
    sio.attach(app)
    last_seq: dict[int, int] = {}
    ids = itertools.count(1)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        token = str(auth.get("token") if isinstance(auth, dict) else "")
        role, _, uid = token.partition(":")
        if not uid.isdigit():
            raise socketio.exceptions.ConnectionRefusedError("no token")
        await sio.save_session(sid, {"role": role, "user_id": int(uid)})
        await sio.enter_room(sid, f"user:{uid}")

    @sio.on("chat:send")
    async def chat_send(sid: str, payload: Any) -> dict[str, Any]:
        session = await sio.get_session(sid)
        cid = int(payload["consultation_id"])
        seq = last_seq.get(cid, 0) + 1
        last_seq[cid] = seq
        message = {
            "id": next(ids),
            "consultation_id": cid,
            "seq": seq,
            "sender_id": session["user_id"],
            "sender_role": session["role"],
            "client_id": payload["client_id"],
            "body": payload["body"],
            "created_at": datetime.now(UTC).isoformat(),
        }
        rooms = [f"user:{PATIENT_BASE + cid}", f"user:{DOCTOR_BASE + cid}"]
        await sio.emit("chat:message", {"message": message}, to=rooms)
        return {"ok": True, "data": message}

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/healthz", healthz)
    bare_loop_lag.install(app)  # GET /metrics: the loop lag, as consult reports its own
    app.on_shutdown.append(lambda _app: sio.shutdown())
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    runtime.tune()  # the same interpreter tuning as `consult serve`
    app = create_app()
    runtime.started()
    print(f"bare chat relay on http://{args.host}:{args.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
