"""Server-side pages: one Jinja2 environment (autoescape on) and `render`, which adds
what every page shows (the user, the role of this process, the CSRF token, the nav).

The nav lists only pages whose route is registered, so a slice's page appears in it
as soon as its module is in app.PAGES; "Terminals" only on a hub.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import jinja2
from aiohttp import web

from edge import __version__
from edge.console.context import CTX_KEY

TEMPLATES = Path(__file__).with_name("templates")
# (route name, label): the order of the nav bar; pages register routes with these names.
NAV = (("live", "Live"), ("kiosk", "Kiosk"), ("events", "Events"), ("enrol", "Enrol"),
       ("library", "Library"), ("status", "Status"), ("terminals", "Terminals"))
HUB_ONLY = ("terminals",)
FLASH_MAX = 20   # notices kept per session until its next page (in memory: lost on restart, harmless)
FLASH_KEY = web.AppKey("console_flash", dict)

ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                         trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)


def _when(ts) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(float(ts)).strftime("%Y-%m-%d %H:%M:%S")


def _ago(seconds) -> str:
    if seconds is None:
        return "-"
    s = float(seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h" if s < 172800 else f"{s / 86400:.0f} d"


ENV.filters["when"] = _when
ENV.filters["ago"] = _ago


def nav(request: web.Request) -> list[dict]:
    router, role = request.app.router, request.app[CTX_KEY].role
    names = router.named_resources()
    current = request.match_info.route.name if request.match_info.route else None
    return [{"name": name, "label": label, "url": str(names[name].url_for()), "current": current is not None and (current == name or current.startswith(name + "_"))}
            for name, label in NAV if name in names and (role == "hub" or name not in HUB_ONLY)]


def flash(request: web.Request, text: str, error_code: int = 0) -> None:
    """A notice for the session's next page (after a POST's redirect): ok, or Baidu's code."""
    session = request.get("user")
    if session is not None:
        box = request.app[FLASH_KEY].setdefault(session.key, [])
        box.append({"error_code": error_code, "text": text})
        del box[:-FLASH_MAX]


def render(request: web.Request, template: str, status: int = 200, **values) -> web.Response:
    session = request.get("user")
    ctx = request.app[CTX_KEY]
    notices = request.app[FLASH_KEY].pop(session.key, []) if session else []
    page = ENV.get_template(template).render(
        user=session, role=ctx.role, server_kind=ctx.badge, csrf_token=session.csrf if session else "",
        nav=nav(request) if session else [], version=__version__, path=request.path, notices=notices,
        **values)
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


def redirect(location: str) -> web.Response:
    """303 See Other (a form's POST becomes a GET of `location`)."""
    return web.Response(status=303, headers={"Location": location})
