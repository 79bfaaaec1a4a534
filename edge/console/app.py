"""The console's aiohttp application, mounted at /console by edge.server.app.make_app.

Every page is a module of edge/console/pages with `setup(app, ctx)`; PAGES is the list
console_app walks (other slices append theirs). Off loopback the console is served only
with TLS: a password must never cross a network in clear (`refusal`).
"""
from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

from aiohttp import web

from edge.config import Config
from edge.console import auth
from edge.console.context import CTX_KEY, ConsoleContext
from edge.console.pages import account, enrol, events, library, live, status, terminals
from edge.console.render import FLASH_KEY, redirect

log = logging.getLogger("edge.console")

STATIC = Path(__file__).with_name("static")
PAGES = [account, live, status, library, terminals, enrol, events]   # each: setup(app, ctx); append yours
HOME_ORDER = ("live", "status")                          # /console/ opens the first of these that exists
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refusal(config: Config) -> str | None:
    """Why the console must not be served by this process, or None."""
    srv = config.server
    if not is_loopback(srv.host) and not srv.tls_cert:
        return (f"the console is not served: server.host {srv.host} is not a loopback address and no TLS is "
                f"configured (set server.tls_cert and server.tls_key, or serve on 127.0.0.1)")
    return None


@web.middleware
async def headers(request: web.Request, handler):
    """Security headers on every console answer; aiohttp's own 404/405 as console errors."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = auth.error_response(request, exc.status, 3 if exc.status in (404, 405) else 100,
                                       "no such page" if exc.status == 404 else exc.reason)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


async def home(request: web.Request) -> web.Response:
    names = request.app.router.named_resources()
    first = next(n for n in HOME_ORDER if n in names)
    return redirect(str(names[first].url_for()))


def console_app(ctx: ConsoleContext) -> web.Application:
    upload = int(ctx.config.console.upload_max_mb * 1024 * 1024)
    app = web.Application(middlewares=[headers, auth.middleware], client_max_size=upload)
    app[CTX_KEY] = ctx
    app[auth.AUTH_KEY] = auth.ConsoleAuth(ctx.config)
    app[FLASH_KEY] = {}
    app.router.add_get("/", home, name="home")
    app.router.add_static("/static/", STATIC, name="static")
    for page in PAGES:
        page.setup(app, ctx)

    async def close(_app):
        _app[auth.AUTH_KEY].close()
    app.on_cleanup.append(close)
    return app


def refused_app(reason: str) -> web.Application:
    """What /console/ answers when the console is not served: 403 and the reason."""
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"error_code": auth.NOT_ALLOWED, "error_msg": reason}, status=403)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    return app


def mount(app: web.Application, ctx: ConsoleContext) -> None:
    """The console at /console/, or, when refused, a 403 there (one log line)."""
    reason = refusal(ctx.config)
    if reason:
        log.warning("%s", reason)

    async def bare(request: web.Request) -> web.Response:   # /console -> /console/
        return redirect("/console/")
    app.router.add_get("/console", bare)                     # before the sub-app: routes match in order
    app.add_subapp("/console/", refused_app(reason) if reason else console_app(ctx))
