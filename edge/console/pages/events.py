"""Events: the terminal's events as they happen (a Server-Sent Events stream), its history
searched by time, camera, person, kind and code, and the attendance export (the CSV
`edge attendance` writes). On a hub there is no loop: the page says where events are.

Routes: /console/events (the page: the history server-rendered, so it works without
JavaScript), /console/events/attendance.csv, /console/api/events (the search as JSON),
/console/api/events/stream (text/event-stream; ids "<boot>-<seq>", a reconnect's
Last-Event-ID gets what it missed from the feed's ring, or an event `gap`).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging

from aiohttp import web

from edge.console.auth import error_response, require
from edge.console.context import CTX_KEY
from edge.console.events import END, EventFeed
from edge.console.render import render
from edge.events.event import KINDS, Event
from edge.events.history import Query, QueryError
from edge.sqlite import StorageError

log = logging.getLogger("edge.console")

INVALID = 216100          # Baidu's "invalid param"
NOT_HERE = 216102         # "service not support": not served here (a hub; events.history off; no attendance)
UNAVAILABLE = 2           # "Service temporarily unavailable": a history or attendance file unreadable now
KEEPALIVE_S = 15.0        # a comment line this often keeps proxies and the browser's timer from closing the stream
RETRY_MS = 2000           # the browser's reconnect delay
PAGE_ROWS = 50
ON_HUB = "Events live on the terminals: open a terminal's console (its edge run) for its events, their history " \
         "and the attendance export."


def row(event: Event, sid: str = "") -> dict:
    """One event as the page shows it (the table and the live list, the same columns)."""
    if event.kind == "recognised":
        why = f"score {event.score:.1f}" if event.score is not None else ""
    elif event.kind == "rejected":
        why = event.error_msg + (f": {event.reason}" if event.reason and event.reason != event.error_msg else "")
    else:
        why = event.reason or (f"best score {event.score:.1f}, below the threshold" if event.score is not None else "")
    return {"id": sid, "event_id": event.event_id, "ts": event.ts,
            "time": dt.datetime.fromtimestamp(event.ts).strftime("%Y-%m-%d %H:%M:%S"),
            "camera": event.camera, "user_id": event.user_id, "user_info": event.user_info,
            "group_id": event.group_id, "kind": event.kind, "error_code": event.error_code or "",
            "reason": why, "liveness": event.liveness, "track_id": event.track_id}


def _when(text: str, name: str) -> float | None:
    """A datetime-local or a date field ("2026-12-01T08:30", "2026-12-01"), local time."""
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise QueryError(f"{name} is not a date and time (YYYY-MM-DDTHH:MM)") from None


def query(params) -> Query:
    """The search of the page's form (or the JSON API's query string)."""
    code = params.get("code", "").strip()
    if code and not code.isdigit():
        raise QueryError("code is a Baidu error code: digits only")
    limit = params.get("limit", "")
    if limit and not limit.isdigit():
        raise QueryError("limit is a number")
    return Query(since=_when(params.get("from", ""), "from"), until=_when(params.get("to", ""), "to"),
                 camera=params.get("camera", "").strip(), person=params.get("person", "").strip()[:128],
                 kind=params.get("kind", ""), error_code=int(code) if code else None,
                 cursor=params.get("cursor", ""), limit=int(limit) if limit else PAGE_ROWS)


def _feed(request: web.Request) -> EventFeed | None:
    ctx = request.app[CTX_KEY]
    return ctx.events if ctx.role == "terminal" else None


async def _search(feed: EventFeed, q: Query):
    return await asyncio.get_running_loop().run_in_executor(None, feed.history.search, q)


@require("viewer")
async def page(request: web.Request) -> web.Response:
    feed = _feed(request)
    if feed is None:
        return render(request, "events.html", on_hub=ON_HUB)
    form = {k: request.query.get(k, "") for k in ("from", "to", "camera", "person", "kind", "code")}
    values = dict(on_hub="", form=form, kinds=KINDS, after=feed.last_id, rows=[], next="", error="",
                  cameras=[], history=feed.history is not None, dropped=0,
                  attendance=request.app[CTX_KEY].config.events.attendance, today=dt.date.today().isoformat(),
                  searched=any(form.values()), cursor=request.query.get("cursor", ""))
    status = 200
    if feed.history is not None:
        def read(q: Query):
            h = feed.history
            return h.search(q), h.cameras(), h.dropped()
        try:
            q = query(request.query)
            result, cameras, dropped = await asyncio.get_running_loop().run_in_executor(None, read, q)
            values.update(rows=[row(r.event, str(r.id)) for r in result.rows], next=result.next,
                          cameras=cameras, dropped=dropped)
        except QueryError as exc:
            values["error"], status = f"{INVALID}: {exc}", 400
        except StorageError as exc:
            values["error"], status = f"the event history cannot be read: {exc}", 503
    return render(request, "events.html", status=status, **values)


@require("viewer")
async def api_search(request: web.Request) -> web.Response:
    feed = _feed(request)
    if feed is None or feed.history is None:
        return error_response(request, 404, NOT_HERE, ON_HUB if feed is None else "events.history is off")
    try:
        result = await _search(feed, query(request.query))
    except QueryError as exc:
        return error_response(request, 400, INVALID, str(exc))
    except StorageError as exc:
        return error_response(request, 503, UNAVAILABLE, str(exc))
    return web.json_response({"events": [row(r.event, str(r.id)) for r in result.rows], "next": result.next})


def _sse(kind: str, data: dict, sid: str = "") -> bytes:
    head = (f"id: {sid}\n" if sid else "") + (f"event: {kind}\n" if kind != "message" else "")
    return (head + "data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n\n").encode()


@require("viewer")
async def stream(request: web.Request) -> web.StreamResponse:
    feed = _feed(request)
    if feed is None:
        return error_response(request, 404, NOT_HERE, ON_HUB)
    last = request.headers.get("Last-Event-ID") or request.query.get("after") or None
    sub, resume = feed.subscribe(last)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store",
                                       "X-Accel-Buffering": "no"})
    try:
        await resp.prepare(request)
        await resp.write(f"retry: {RETRY_MS}\n\n".encode())
        if resume.gap:
            await resp.write(_sse("gap", {"message": "some events were not streamed (a restart, or a long "
                                                     "disconnection): the history below has them"}))
        for item in resume.missed:
            await resp.write(_sse("message", row(item.event, feed.stream_id(item.seq)), feed.stream_id(item.seq)))
        while True:
            item = await sub.get(KEEPALIVE_S)
            if item is END:
                break
            if item is None:
                await resp.write(b": keepalive\n\n")
                continue
            sid = feed.stream_id(item.seq)
            await resp.write(_sse("message", row(item.event, sid), sid))
    except (ConnectionResetError, ConnectionError):
        pass   # the viewer left
    finally:
        feed.unsubscribe(sub)
    return resp


def _day(text: str, name: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise QueryError(f"{name} is a date, YYYY-MM-DD") from None


@require("viewer")
async def attendance_csv(request: web.Request) -> web.Response:
    """The attendance records as `edge attendance --since --until` writes them (until inclusive)."""
    ctx = request.app[CTX_KEY]
    if _feed(request) is None:
        return error_response(request, 404, NOT_HERE, ON_HUB)
    try:
        since, until = _day(request.query.get("since", ""), "since"), _day(request.query.get("until", ""), "until")
    except QueryError as exc:
        return error_response(request, 400, INVALID, str(exc))
    path = ctx.config.path(ctx.config.data_dir) / "attendance.db"
    if not path.exists():
        return error_response(request, 404, NOT_HERE, "no attendance recorded on this terminal "
                                                         "(events.attendance is off, or nobody was recognised yet)")

    def export() -> tuple[str, int]:
        from edge.events.attendance import AttendanceStore
        store = AttendanceStore(path)
        try:
            out = io.StringIO()
            n = store.export_csv(out, since, until and until + dt.timedelta(days=1))
            return out.getvalue(), n
        finally:
            store.close()
    try:
        text, n = await asyncio.get_running_loop().run_in_executor(None, export)
    except StorageError as exc:
        return error_response(request, 503, UNAVAILABLE, str(exc))
    span = "-".join(d.isoformat() for d in (since, until) if d) or "all"
    return web.Response(body=text.encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="attendance-{span}.csv"',
                                 "Cache-Control": "no-store", "X-Record-Count": str(n)})


def setup(app: web.Application, ctx) -> None:
    app.router.add_get("/events", page, name="events")
    app.router.add_get("/events/attendance.csv", attendance_csv, name="attendance_csv")
    app.router.add_get("/api/events", api_search, name="api_events")
    app.router.add_get("/api/events/stream", stream, name="api_events_stream")

    async def end_streams(_app):    # open streams end at shutdown, not after the server's timeout
        feed = ctx.events
        if feed is not None:
            feed.end_streams()
    app.on_shutdown.append(end_streams)
