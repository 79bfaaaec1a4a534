"""Status: what this process serves and how it runs (the /health counts, the loop's
snapshot on a terminal, the sync follower's state), with links to /metrics and /health."""
from __future__ import annotations

import time

from aiohttp import web

from edge import __version__
from edge.console.auth import require
from edge.console.context import CTX_KEY
from edge.console.render import render


def health(ctx) -> dict:
    """The counts /health answers, from the same service."""
    s = ctx.service
    if s is None:
        return {}
    refused = s.runtime.availability.refused()
    return {"status": "degraded" if refused else "ok", "version": __version__,
            "uptime_s": round(time.time() - s.started, 1), "apps": sorted(s.apps_by_id),
            "workers": s.config.server.workers, "pending": s.pending,
            "library_pending": s.queues["library"].pending, "unavailable": refused}


@require("viewer")
async def page(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    return render(request, "status.html", health=health(ctx))


def setup(app: web.Application, ctx) -> None:
    app.router.add_get("/status", page, name="status")
