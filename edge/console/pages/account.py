"""Log in and log out (edge/console/auth.py holds the rules)."""
from __future__ import annotations

import secrets

from aiohttp import web

from edge.console import auth
from edge.console.render import FLASH_KEY, redirect, render

LOGIN_FORM_TTL_S = 3600


def _next(value: str | None) -> str:
    """Where to go after login: only a path of the console (no open redirect)."""
    if value and value.startswith("/console/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console/"


def _form(request: web.Request, status: int = 200, **values) -> web.Response:
    a = request.app[auth.AUTH_KEY]
    token = request.cookies.get(auth.LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = render(request, "login.html", status=status, login_token=token,
                      next=_next(request.query.get("next")), **{"error": None, "username": "", **values})
    a.set_cookie(response, auth.LOGIN_CSRF_COOKIE, token, "/console/login", LOGIN_FORM_TTL_S)
    return response


async def login_page(request: web.Request) -> web.Response:
    if request.get("user") is not None:
        return redirect(_next(request.query.get("next")))
    return _form(request)


async def login(request: web.Request) -> web.Response:
    a = request.app[auth.AUTH_KEY]
    form = await request.post()
    name, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
    role, wait = await a.login(request.remote or "", name, password)
    if wait is not None:
        return _form(request, 429, username=name,
                     error=f"Too many failed logins: try again in {max(1, round(wait / 60))} min.")
    if role is None:
        return _form(request, 401, username=name, error="Wrong user name or password.")
    old = request.cookies.get(auth.SESSION_COOKIE)        # rotated: a planted id never becomes a session
    token, _csrf = await a.run(a.db.new_session, name, request.remote or "", old)
    response = redirect(_next(str(form.get("next", ""))))
    a.set_cookie(response, auth.SESSION_COOKIE, token, "/console", a.limits.session_max_s)
    response.del_cookie(auth.LOGIN_CSRF_COOKIE, path="/console/login")
    return response


async def logout(request: web.Request) -> web.Response:
    a = request.app[auth.AUTH_KEY]
    token = request.cookies.get(auth.SESSION_COOKIE)
    if request.get("user") is not None:
        request.app[FLASH_KEY].pop(request["user"].key, None)
    if token:
        await a.run(a.db.end_session, token)
    response = redirect("/console/login")
    response.del_cookie(auth.SESSION_COOKIE, path="/console")
    return response


def setup(app: web.Application, ctx) -> None:
    app.router.add_get("/login", login_page, name="login")
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout, name="logout")
