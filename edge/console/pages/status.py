"""Status: how this process runs. The /health counts and library sizes; on a terminal
the loop's snapshot (cameras, capture and processed fps, frame and event latencies,
recent errors, the library's match threshold); the sync follower's state; links to
/metrics and /health. Read from the same objects /health and `edge status` use."""
from __future__ import annotations

import asyncio
import time

from aiohttp import web

from edge import __version__
from edge.console.auth import require
from edge.console.context import CTX_KEY
from edge.console.render import render
from edge.sqlite import StorageError


def health(ctx) -> dict:
    """What /health answers, from the same service (empty without one)."""
    s = ctx.service
    if s is None:
        return {}
    refused = s.runtime.availability.refused()
    return {"status": "degraded" if refused else "ok", "version": __version__,
            "uptime_s": round(time.time() - s.started, 1), "apps": sorted(s.apps_by_id),
            "workers": s.config.server.workers, "pending": s.pending,
            "library_pending": s.queues["library"].pending, "unavailable": refused,
            "followers_waiting": s.feed.waiting}


def snapshot(ctx) -> dict:
    """Everything the page shows, read in a worker thread (library sizes touch SQLite)."""
    s = ctx.service
    runner = ctx.status() if ctx.status is not None else None
    sizes = {}
    if s is not None:
        try:
            sizes = s.library_sizes()
        except StorageError:
            sizes = {}
    sync = dict((runner or {}).get("sync") or {})
    if not sync and s is not None and s.follower is not None:
        sync = {s.follower.sync.app_id: s.follower.status()}
    return {"health": health(ctx), "runner": runner, "sizes": sizes, "sync": sync, "now": time.time()}


@require("viewer")
async def page(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    pool = ctx.service.io_pool if ctx.service is not None else None
    snap = await asyncio.get_running_loop().run_in_executor(pool, snapshot, ctx)
    return render(request, "status.html", **snap)


def setup(app: web.Application, ctx) -> None:
    app.router.add_get("/status", page, name="status")
