"""Status: how this process runs. The /health counts and library sizes; on a terminal
the loop's snapshot (cameras, capture and processed fps, frame and event latencies,
recent errors, the library's match threshold); the sync follower's state; links to
/metrics and /health. Read from the same objects /health and `edge status` use."""
from __future__ import annotations

import asyncio
import json
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


STALE_S = 90.0   # a status file older than this: its loop is not running (it is rewritten every 30 s)


def loop_status_file(config) -> dict | None:
    """The snapshot `edge run` writes (the one `edge status` reads), for a console served
    by `edge serve` beside the loop on the same terminal; None when absent or unreadable."""
    path = config.runtime_path / "status.json"
    try:
        snap = json.loads(path.read_text(encoding="utf-8"))
        float(snap["time"]), snap["cameras"].items()
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return snap


def snapshot(ctx) -> dict:
    """Everything the page shows, read in a worker thread (library sizes touch SQLite)."""
    s, now = ctx.service, time.time()
    runner = ctx.status() if ctx.status is not None else None
    from_file = runner is None and (runner := loop_status_file(ctx.config)) is not None
    sizes = {}
    if s is not None:
        try:
            sizes = s.library_sizes()
        except StorageError:
            sizes = {}
    sync = dict((runner or {}).get("sync") or {})
    if not sync and s is not None and s.follower is not None:
        sync = {s.follower.sync.app_id: s.follower.status()}
    age = now - float(runner["time"]) if runner and "time" in runner else None
    return {"health": health(ctx), "runner": runner, "sizes": sizes, "sync": sync, "now": now,
            "from_file": from_file, "runner_age_s": age, "stale": bool(from_file and age is not None and age > STALE_S),
            "status_path": str(ctx.config.runtime_path / "status.json")}


async def _snapshot(request: web.Request) -> dict:
    ctx = request.app[CTX_KEY]
    pool = ctx.service.io_pool if ctx.service is not None else None
    return await asyncio.get_running_loop().run_in_executor(pool, snapshot, ctx)


@require("viewer")
async def page(request: web.Request) -> web.Response:
    return render(request, "status.html", **await _snapshot(request))


@require("viewer")
async def api(request: web.Request) -> web.Response:
    """The same as JSON (for a page's script or a monitoring probe with a session)."""
    snap = await _snapshot(request)
    snap["sizes"] = {app: {"faces": f, "users": u} for app, (f, u) in snap["sizes"].items()}
    return web.json_response({"error_code": 0, "error_msg": "SUCCESS", "result": snap})


def setup(app: web.Application, ctx) -> None:
    app.router.add_get("/status", page, name="status")
    app.router.add_get("/api/status", api, name="api_status")
