"""Terminals (a hub): the followers of its change feed and how far behind each is.

The hub learns of a follower from its feed requests (edge.server.feed.FollowerLog, in
memory): the `since` it asks from is the last hub seq it applied, so head - cursor is
the changes it lacks. A follower silent for longer than two long-polls is "silent"."""
from __future__ import annotations

import asyncio
import time

from aiohttp import web

from edge.console.auth import require
from edge.console.context import CTX_KEY
from edge.console.render import render
from edge.sqlite import StorageError
from edge.sync.protocol import WAIT_MAX_S

SILENT_AFTER_S = 2 * WAIT_MAX_S + 10


def rows(ctx, now: float) -> list[dict]:
    s = ctx.service
    if s is None:
        return []
    heads: dict[str, int | None] = {}
    out = []
    for f in s.followers.followers():
        if f.app_id not in heads:
            try:
                heads[f.app_id] = s.runtime.library(f.app_id).store.last_seq()
            except StorageError:
                heads[f.app_id] = None
        head = heads[f.app_id]
        age = now - f.at
        out.append({"app_id": f.app_id, "api_key": f.api_key, "remote": f.remote, "groups": f.groups,
                    "cursor": f.cursor, "head": head, "lag": None if head is None else max(0, head - f.cursor),
                    "age_s": age, "state": "silent" if age > SILENT_AFTER_S else "following"})
    return out


@require("viewer")
async def page(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    pool = ctx.service.io_pool if ctx.service is not None else None
    found = await asyncio.get_running_loop().run_in_executor(pool, rows, ctx, time.time())
    return render(request, "terminals.html", terminals=found, silent_after_s=SILENT_AFTER_S)


def setup(app: web.Application, ctx) -> None:
    if ctx.role == "hub":
        app.router.add_get("/terminals", page, name="terminals")
