"""Live view, kiosk page, and enrolment from the camera (a terminal's `edge run`).

Frames travel over one WebSocket per camera and viewer, /console/api/live/<camera>: each
binary message is a 4-byte big-endian header length, the JSON header (overlay, capture
time, explanations of the codes shown) and the JPEG. The browser acknowledges each frame
it has drawn ("next"); the server sends the newest frame only then, so a slow viewer
gets fewer frames and nothing queues (docs/console.md, "Live view").
"""
from __future__ import annotations

import asyncio
import json
import logging
import struct
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from aiohttp import WSMsgType, web

from edge.console.auth import require
from edge.console.context import CTX_KEY
from edge.console.explain import NOT_RECOGNISED, explain, kiosk_text
from edge.console.render import render

log = logging.getLogger("edge.console")

NO_FACE = 222202
BUSY = 4
FRAME_TIMEOUT_S = 1.0          # a viewer's wait for the next frame before checking its socket
CROP_MARGIN = 1.0              # the enrolled crop: the largest face's box grown by this on each side
CAPTURE_FRAMES = 5             # frames taken by a capture enrolment (edge enroll --camera's default)
CAPTURE_TIMEOUT_S = 60.0
GOOD_FRAME_WAIT_S = 3.0        # the one-click enrol tries the next frames this long ...
RETRY_CODES = {NO_FACE, 223113, 223114, 223115, 223116, 223129, *range(223121, 223128)}   # ... refused for these


def _hub(request: web.Request):
    return request.app[CTX_KEY].live


def _camera(request: web.Request) -> str:
    hub, name = _hub(request), request.match_info["camera"]
    if hub is None or name not in hub.cameras:
        raise web.HTTPNotFound(reason=f"no camera {name!r} on this process")
    return name


def _error(code: int, msg: str, status: int = 200, **more) -> web.Response:
    return web.json_response({"error_code": code, "error_msg": msg, **more}, status=status)


def default_group(config) -> str:
    """Where the live view enrols: the loop's first searched group, so the loop finds it."""
    return next((g for g in config.run.groups.split(",") if g), "default")


# -- pages ------------------------------------------------------------------------------
@require("viewer")
async def live_page(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    cameras = list(ctx.live.cameras)
    return render(request, "live.html", cameras=cameras, group=default_group(ctx.config),
                  app_id=ctx.config.run.app_id, liveness=ctx.config.run.liveness_control)


@require("viewer")
async def kiosk_page(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    cameras = list(ctx.live.cameras)
    camera = request.query.get("camera") or (cameras[0] if cameras else "")
    if cameras and camera not in cameras:
        raise web.HTTPNotFound(reason=f"no camera {camera!r} on this process")
    return render(request, "kiosk.html", camera=camera, cameras=cameras, not_recognised=NOT_RECOGNISED)


# -- the frames -------------------------------------------------------------------------
def why(overlay: dict) -> dict:
    """The explanations of the codes this overlay shows (installer's and kiosk's words)."""
    codes = {t["error_code"] for t in overlay.get("tracks", ()) if t.get("error_code")}
    return {str(c): {"explain": explain(c), "kiosk": kiosk_text(c)} for c in codes}


def message(frame) -> bytes:
    header = json.dumps({"camera": frame.camera, "seq": frame.seq, "captured": frame.captured,
                         "encoded": frame.encoded, "sent": time.time(), "overlay": frame.overlay,
                         "why": why(frame.overlay)}, separators=(",", ":")).encode()
    return struct.pack(">I", len(header)) + header + frame.jpeg


@require("viewer")
async def socket(request: web.Request) -> web.StreamResponse:
    camera, hub = _camera(request), _hub(request)
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096)
    await ws.prepare(request)
    sockets = request.app[SOCKETS]
    sockets.add(ws)
    acked = asyncio.Event()
    acked.set()                                   # one frame in flight at most

    async def read() -> None:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and msg.data == "next":
                acked.set()
    reader = asyncio.create_task(read())
    try:
        async with hub.viewer(camera) as viewer:
            while not ws.closed and not reader.done():
                try:
                    await asyncio.wait_for(acked.wait(), FRAME_TIMEOUT_S)
                except asyncio.TimeoutError:
                    continue
                frame = await viewer.next(FRAME_TIMEOUT_S)
                if frame is None or ws.closed:
                    continue
                acked.clear()
                await ws.send_bytes(message(frame))
    except (ConnectionResetError, RuntimeError):   # the viewer went away mid-send
        pass
    finally:
        reader.cancel()
        sockets.discard(ws)
        await ws.close()
    return ws


# -- enrolment from the camera ----------------------------------------------------------
def largest_face_crop(image: np.ndarray, overlay: dict) -> bytes | None:
    """The largest face of the frame with room around it, as a JPEG (None: no face)."""
    import cv2
    tracks = overlay.get("tracks") or []
    if not tracks:
        return None
    x1, y1, x2, y2 = max((t["box"] for t in tracks), key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    mx, my = CROP_MARGIN * (x2 - x1), CROP_MARGIN * (y2 - y1)
    h, w = image.shape[:2]
    crop = image[max(0, int(y1 - my)):min(h, int(y2 + my)), max(0, int(x1 - mx)):min(w, int(x2 + mx))]
    ok, jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return jpeg.tobytes() if ok else None


async def _fields(request: web.Request) -> dict:
    try:
        body = await request.json() if request.content_type == "application/json" else dict(await request.post())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(reason="expected a JSON object or a form")
    return {k: str(v).strip() for k, v in body.items() if isinstance(v, (str, int))}


def _enroller(config):
    from edge.enroll import Enroller
    return Enroller(config, config.run.app_id)


def _outcome(o) -> dict:
    d = {"status": o.status, "group_id": o.group_id, "user_id": o.user_id, "error_code": o.error_code,
         "error_msg": o.error_msg, "source": o.source, "face_token": o.face_token,
         "duplicates": [asdict(x) for x in o.duplicates]}
    if o.error_code:
        d["explain"] = explain(o.error_code, o.error_msg)
    return d


async def _run(request: web.Request, fn, *args):
    ctx = request.app[CTX_KEY]
    pool = ctx.service.infer_pool if ctx.service is not None else None
    return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)


async def enrol_frames(request: web.Request, enroller, camera: str, group: str, user: str, info: str):
    """addUser of the largest face in the newest frames, for up to GOOD_FRAME_WAIT_S while
    a frame is refused for what the next may not have (no face, blur, a hand over the
    chin...): an installer clicks once. The last Outcome; NO_FACE (an int) when no frame
    had a face; None when the camera gave no frame."""
    hub, loop = _hub(request), asyncio.get_running_loop()
    end, seq, outcome = loop.time() + GOOD_FRAME_WAIT_S, 0, None
    while True:
        got = await loop.run_in_executor(None, hub.grab, camera, seq, max(0.5, end - loop.time()))
        if got is None:
            return outcome if outcome is not None or seq else None
        seq, image, overlay = got
        jpeg = largest_face_crop(image, overlay)
        if jpeg is not None:
            outcome = await _run(request, enroller.enroll, group, user, jpeg, f"live:{camera}#{seq}", info)
            if outcome.error_code not in RETRY_CODES:
                return outcome
        if loop.time() >= end:
            return outcome if outcome is not None else NO_FACE


@require("admin")
async def enrol_in_view(request: web.Request) -> web.Response:
    """The largest face of the camera's current frame into run.app_id's library (v3
    addUser, its codes), then the camera's open tracks are decided afresh."""
    from edge.config import ConfigError
    camera, hub, ctx = _camera(request), _hub(request), request.app[CTX_KEY]
    f = await _fields(request)
    group, user = f.get("group_id") or default_group(ctx.config), f.get("user_id", "")
    try:
        enroller = await _run(request, _enroller, ctx.config)
    except ConfigError as exc:
        return _error(6, str(exc), 403)
    outcome = await enrol_frames(request, enroller, camera, group, user, f.get("user_info") or user)
    if outcome is None:
        return _error(NO_FACE, "no frame from this camera: is it streaming? (Status page)", 409)
    if isinstance(outcome, int):
        return _error(NO_FACE, "pic not has face", explain=explain(NO_FACE))
    if outcome.status == "enrolled" and camera in hub.redecide:
        hub.redecide[camera]()
    log.info("console: %s enrolled the face in view of %s: %s", request["user"].user, camera, outcome.line())
    body = _outcome(outcome)
    if outcome.status != "enrolled":
        return _error(outcome.error_code, outcome.error_msg, result=body, explain=body.get("explain", ""))
    return web.json_response({"error_code": 0, "error_msg": "", "result": body})


@dataclass
class Capture:
    """One capture enrolment running on a thread: Enroller.enroll_camera on the loop's frames."""
    camera: str
    group_id: str
    user_id: str
    frames: int
    hints: list[str] = field(default_factory=list)
    outcomes: list[dict] = field(default_factory=list)
    running: bool = True
    error: str = ""

    def state(self) -> dict:
        return {"camera": self.camera, "group_id": self.group_id, "user_id": self.user_id, "frames": self.frames,
                "running": self.running, "hint": self.hints[-1] if self.hints else "", "hints": self.hints[-20:],
                "enrolled": sum(o["status"] == "enrolled" for o in self.outcomes), "outcomes": self.outcomes,
                "error": self.error}

    def run(self, config, hub, user_info: str) -> None:
        try:
            enroller = _enroller(config)
            with hub.watch(self.camera):
                outcomes = enroller.enroll_camera(hub.camera(self.camera), self.group_id, self.user_id,
                                                  frames=self.frames, timeout_s=CAPTURE_TIMEOUT_S,
                                                  say=self.hints.append)
            self.outcomes = [_outcome(o) for o in outcomes]
            if any(o.status == "enrolled" for o in outcomes) and self.camera in hub.redecide:
                hub.redecide[self.camera]()
        except Exception as exc:  # noqa: BLE001 - shown on the page, logged with its traceback
            log.exception("console: capture enrolment on %s failed", self.camera)
            self.error = str(exc)
        finally:
            self.running = False


@require("admin")
async def capture_start(request: web.Request) -> web.Response:
    """Start taking good frames of the person in front of the camera, with the guidance
    of `edge enroll --camera` (GET the same path for its progress)."""
    camera, hub, ctx = _camera(request), _hub(request), request.app[CTX_KEY]
    captures = request.app[CAPTURES]
    if camera in captures and captures[camera].running:
        return _error(BUSY, "a capture enrolment is already running on this camera", 409)
    f = await _fields(request)
    try:
        frames = max(1, min(10, int(f.get("frames") or CAPTURE_FRAMES)))
    except ValueError:
        return _error(222200, "frames: a number from 1 to 10", 400)
    job = Capture(camera, f.get("group_id") or default_group(ctx.config), f.get("user_id", ""), frames)
    if not job.user_id:
        return _error(222200, "user_id is needed", 400, explain=explain(222200))
    captures[camera] = job
    threading.Thread(target=job.run, args=(ctx.config, hub, f.get("user_info") or job.user_id),
                     name=f"edge-console-capture-{camera}", daemon=True).start()
    return web.json_response({"error_code": 0, "error_msg": "", "result": job.state()})


@require("admin")
async def capture_state(request: web.Request) -> web.Response:
    job = request.app[CAPTURES].get(_camera(request))
    if job is None:
        return _error(3, "no capture enrolment on this camera", 404)
    return web.json_response({"error_code": 0, "error_msg": "", "result": job.state()})


SOCKETS = web.AppKey("live_sockets", set)
CAPTURES = web.AppKey("live_captures", dict)


async def _close_sockets(app: web.Application) -> None:
    """Open live views end with the server (they would hold its shutdown)."""
    for ws in list(app[SOCKETS]):
        await ws.close(code=1001, message=b"server stopping")


def setup(app: web.Application, ctx) -> None:
    """Only where there are cameras (`edge run`): a hub's console has no Live or Kiosk."""
    if ctx.live is None:
        return
    app[SOCKETS] = set()
    app[CAPTURES] = {}
    app.on_shutdown.append(_close_sockets)
    app.router.add_get("/live", live_page, name="live")
    app.router.add_get("/kiosk", kiosk_page, name="kiosk")
    app.router.add_get("/api/live/{camera}", socket)
    app.router.add_post("/api/live/{camera}/enrol", enrol_in_view)
    app.router.add_post("/api/live/{camera}/capture", capture_start)
    app.router.add_get("/api/live/{camera}/capture", capture_state)
