"""The web pages (plain ES modules under web/) and the socket.io-client bundle from npm."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from consult.http.errors import error_response

_PAGES = {
    "/": "index.html",
    "/patient/": "patient/index.html",
    "/doctor/": "doctor/index.html",
    "/scheduler/": "scheduler/index.html",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SOCKET_IO_BUNDLE = Path("node_modules/socket.io-client/dist/socket.io.esm.min.js")


def install_pages(app: web.Application, web_dir: Path) -> None:
    for path, file in _PAGES.items():
        app.router.add_get(path, _file_handler(web_dir / file))
    app.router.add_get("/vendor/socket.io.esm.min.js", _socket_io_bundle(web_dir))
    app.router.add_static("/static/", web_dir / "common", follow_symlinks=False)
    for page in ("patient", "doctor", "scheduler", "account"):
        app.router.add_static(f"/{page}/", web_dir / page, follow_symlinks=False)


def _file_handler(path: Path) -> Handler:
    # The content type is set here rather than guessed by FileResponse when it is sent: the
    # security middleware adds the Content-Security-Policy only to responses it sees as text/html.
    headers = {"Cache-Control": "no-cache", "Content-Type": "text/html; charset=utf-8"}

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers=headers)

    return handler


def _socket_io_bundle(web_dir: Path) -> Handler:
    bundle = web_dir / SOCKET_IO_BUNDLE

    async def handler(request: web.Request) -> web.StreamResponse:
        if not bundle.exists():
            return error_response(
                503,
                "client_not_installed",
                "socket.io-client is not installed: run the README's run command "
                "(it runs npm ci in web/)",
            )
        return web.FileResponse(bundle, headers={"Content-Type": "text/javascript"})

    return handler
