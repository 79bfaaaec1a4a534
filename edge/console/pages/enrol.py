"""Enrol by upload: one person's photos, each through the same v3 addUser an application
calls (edge.enroll.Enroller: quality control, duplicate warning), each photo's outcome
shown; a rejected one with its Baidu code and message."""
from __future__ import annotations

import asyncio

from aiohttp import web

from edge.config import ConfigError
from edge.console.auth import require
from edge.console.context import CTX_KEY
from edge.console.faces import app_ids
from edge.console.pages.library import field, url
from edge.console.render import render
from edge.enroll import Enroller, Outcome
from edge.sqlite import StorageError

QUALITY = ("NORMAL", "LOW", "HIGH", "NONE")   # the first is the default, as `edge enroll`
MAX_PHOTOS = 20


def _form(request, status=200, **values):
    ctx = request.app[CTX_KEY]
    base = {"apps": app_ids(ctx), "app_id": None, "group_id": "", "user_id": "", "user_info": "",
            "quality": QUALITY[0], "qualities": QUALITY, "outcomes": None, "error": None, "url": url,
            "max_photos": MAX_PHOTOS}
    return render(request, "enrol.html", status=status, **{**base, **values})


@require("viewer")
async def page(request: web.Request) -> web.Response:
    return _form(request)


def _enrol_all(ctx, app_id, quality, group_id, user_id, user_info, photos) -> list[Outcome]:
    enroller = Enroller(ctx.config, app_id, quality=quality)   # as `edge enroll --quality`
    outcomes = []
    for name, data in photos:
        if not data:
            outcomes.append(Outcome(name, group_id, user_id, "error", error_msg="the file is empty"))
            continue
        outcomes.append(enroller.enroll(group_id, user_id, data, name, user_info or None))
    return outcomes


@require("admin")
async def upload(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    form = await request.post()
    quality = field(form, "quality")
    values = {"app_id": field(form, "app"), "group_id": field(form, "group"), "user_id": field(form, "user"),
              "user_info": field(form, "user_info"), "quality": quality if quality in QUALITY else QUALITY[0]}
    photos = [(f.filename or "photo", f.file.read()) for f in form.getall("photos", []) if hasattr(f, "file")]
    if values["app_id"] not in app_ids(ctx):
        return _form(request, 400, error={"error_code": 216110, "error_msg": "no such library (APP_ID)"}, **values)
    if not photos:
        return _form(request, 400, error={"error_code": 222001, "error_msg": "choose at least one photo"}, **values)
    if len(photos) > MAX_PHOTOS:
        return _form(request, 400, error={"error_code": 222200, "error_msg": f"at most {MAX_PHOTOS} photos at once"},
                     **values)
    pool = ctx.service.infer_pool if ctx.service is not None else None
    try:
        outcomes = await asyncio.get_running_loop().run_in_executor(
            pool, _enrol_all, ctx, values["app_id"], values["quality"], values["group_id"], values["user_id"],
            values["user_info"], photos)
    except ConfigError as err:   # a replica: enrol at its hub
        return _form(request, 409, error={"error_code": 6, "error_msg": str(err)}, **values)
    except StorageError as err:
        return _form(request, 503, error={"error_code": 222915, "error_msg": str(err)}, **values)
    if any(o.status == "enrolled" for o in outcomes) and ctx.service is not None:
        ctx.service.feed.poke(values["app_id"])
    return _form(request, outcomes=outcomes, **values)


def setup(app: web.Application, ctx) -> None:
    app.router.add_get("/enrol", page, name="enrol")
    app.router.add_post("/enrol", upload)
