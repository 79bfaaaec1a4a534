"""`edge serve`: Baidu's face REST API over HTTP, for the official SDKs unchanged.

Request path: size check -> authentication (access_token or bce-auth-v1) -> per-APP_ID
QPS -> body parsing -> the same AipFace method an in-process caller runs, in a worker
thread.  The asyncio loop only parses, routes and writes: models run in the inference
pool (`server.workers` threads), library-only calls - FACE_TOKEN searches included,
chosen per request (routing.py) - in a small pool of their own so a burst of photos
cannot starve them.  Every answer is Baidu's JSON (HTTP 200, as Baidu answers API
errors); nothing a client sends can produce a traceback.  What never reaches a handler
(malformed HTTP, slow clients, too many connections) is answered in protocol.py.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import signal
import ssl
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from aiohttp.http import HttpProcessingError

from edge import __version__
from edge.aip import v2 as aip_v2
from edge.aip import v3 as aip_v3
from edge.aip.calls import error_body
from edge.aip.runtime import get_runtime
from edge.analysis.capabilities import capabilities
from edge.config import AppConfig, Config
from edge.errors import EdgeError
from edge.library.library import graph_loading
from edge.server import auth, feed
from edge.server import push as push_ops
from edge.server.endpoints import ENDPOINTS, MISSING_CODE, PREFIX, Endpoint
from edge.server.limits import body_cap, body_too_long, largest_body, path_cap, path_too_long
from edge.server.metrics import CONTENT_TYPE, ServerMetrics
from edge.server.openapi import openapi
from edge.server.protocol import MALFORMED, EventLog, Guard, GuardedRunner, Limits, error_json, expect_handler
from edge.server.ratelimit import TokenBucket
from edge.service import new_log_id
from edge.server.routing import needs_inference
from edge.sqlite import StorageError
from edge.sync.push import PUSH_MAX_BYTES, PUSH_PATH, PUSH_SIGNATURE_HEADER, parse_body
from edge.sync.protocol import (FEED_PATH, NO_PERMISSION, SIGNATURE_HEADER, SNAPSHOT_PATH, build_page,
                                build_snapshot_page, sign_page, snapshot_needed)

log = logging.getLogger("edge.server")
access_log = logging.getLogger("edge.access")

UNSUPPORTED, QPS_LIMIT, BUSY = 3, 18, 4
CAPABILITIES = PREFIX + "/capabilities"  # edge's own: the detect fields measured and answered null
BAD_PARAM = {"v2": 216100, "v3": 222200}
SDK_QUERY = {"access_token", "aipSdk", "aipVersion"}
IMAGE_ARGS = {"image", "images"}
INLINE_PARSE_BYTES = 256 * 1024
# What aiohttp raises reading a body it cannot make sense of: a malformed multipart form
# (ValueError; LookupError or RuntimeError for a part's unknown charset or encoding;
# BadHttpMessage) or a payload error of the transfer (RequestPayloadError).
UNREADABLE_BODY = (ValueError, LookupError, RuntimeError, HttpProcessingError, web.RequestPayloadError)
_dumps = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


class PoolQueue:
    """A worker pool with the count of calls queued for or running in it (for the bound and /metrics)."""

    def __init__(self, name: str, pool: ThreadPoolExecutor, gauge):
        self.name, self.pool, self.gauge = name, pool, gauge
        self.pending = 0

    def __enter__(self) -> "PoolQueue":
        self.pending += 1
        self.gauge.set(self.pending)
        return self

    def __exit__(self, *exc) -> None:
        self.pending -= 1
        self.gauge.set(self.pending)


class FaceService:
    """What the handlers share, built once at start-up: apps, clients, pools, limits."""

    def __init__(self, config: Config):
        self.config, srv = config, config.server
        self.apps_by_id = {a.app_id: a for a in config.apps}
        # Every credential: the apps' own keys and their feed-only keys (docs/sync.md).
        self.apps_by_key = {a.api_key: a for a in (*config.apps, *config.feed_keys)}
        self.creds_by_id = {a.app_id: (a, *(f for f in config.feed_keys if f.app_id == a.app_id))
                            for a in config.apps}
        self.clients = {}
        for app in config.apps:
            self.clients[app.app_id, "v2"] = aip_v2.AipFace(app.app_id, app.api_key, app.secret_key, config=config)
            self.clients[app.app_id, "v3"] = aip_v3.AipFace(app.app_id, app.api_key, app.secret_key, config=config)
        self.buckets = {a.app_id: TokenBucket(a.qps or srv.qps) for a in config.apps}
        self.infer_pool = ThreadPoolExecutor(srv.workers, thread_name_prefix="edge-infer")
        self.io_pool = ThreadPoolExecutor(2, thread_name_prefix="edge-library")
        self.metrics = ServerMetrics(self.library_sizes)
        self.queues = {"infer": PoolQueue("inference", self.infer_pool, self.metrics.pending),
                       "library": PoolQueue("library", self.io_pool, self.metrics.library_pending)}
        self.started = time.time()
        self.runtime = get_runtime(config)
        self.feed = feed.FeedWatch(self._feed_head)
        self.followers = feed.FollowerLog()   # what the console's Terminals page shows
        self.follower = None          # edge.sync.follower.Follower when `sync:` is set (serve starts it)
        self.metrics.watch_feed(lambda: self.feed.waiting, lambda: self.follower)

    async def _feed_head(self, app_id: str) -> int:
        return await asyncio.get_running_loop().run_in_executor(
            self.io_pool, lambda: self.runtime.library(app_id).store.last_seq())

    def warm_up(self) -> None:
        """Load the models and open every app's library now, not on the first request."""
        self.runtime.analyser  # noqa: B018 - the property loads the models
        for app in self.config.apps:
            try:
                self.runtime.library(app.app_id)
            except StorageError:  # logged by the runtime; that app alone is refused
                pass

    def library_sizes(self) -> dict[str, tuple[int, int]]:
        sizes = {}
        for app in self.config.apps:
            try:
                store = self.runtime.library(app.app_id).store
                sizes[app.app_id] = (store.face_count(), store.user_count())
            except StorageError:
                continue
        return sizes

    @property
    def pending(self) -> int:
        return self.queues["infer"].pending

    def close(self) -> None:
        self.infer_pool.shutdown(wait=True)
        self.io_pool.shutdown(wait=True)


# -- small pure helpers -----------------------------------------------------------------
def _version_of(path: str) -> str:
    return "v2" if path.startswith(PREFIX + "/v2/") else "v3"


def _answer(body: Any, request: web.Request, status: int = 200) -> web.Response:
    if isinstance(body, dict) and "error_code" in body:
        request["error_code"] = body["error_code"]
    return web.json_response(body, status=status, dumps=_dumps)


def _error(request: web.Request, version: str, err: EdgeError) -> web.Response:
    log.debug("%s %s -> %s", request.method, request.path, err)
    return _answer(error_body(version, err), request)


async def _read_bounded(request: web.Request, cap: int) -> bytes:
    """The whole body (a chunked one too), or EdgeError 100 past cap bytes."""
    chunks, size = [], 0
    try:
        while True:
            chunk = await request.content.read(64 * 1024)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > cap:
                raise EdgeError(100, f"body over {cap} bytes")
            chunks.append(chunk)
    except UNREADABLE_BODY:
        raise EdgeError(100, "the body cannot be read") from None


def _arguments(ep: Endpoint, payload) -> tuple[list, dict]:
    """(positional arguments, options) of the SDK method for this request body."""
    if ep.body == "list":
        if not isinstance(payload, list):
            raise EdgeError(222200, "the body must be a JSON array of image objects")
        return [payload], {}
    if not isinstance(payload, dict):
        raise EdgeError(BAD_PARAM[ep.version], "the body must be an object")
    # An empty image is sent, not missing: its method answers the empty-image code (v2
    # 216200, v3 222001) as in-process; any other empty field is "not enough param".
    missing = [name for name in ep.args
               if payload.get(name) is None or (payload.get(name) == "" and name not in IMAGE_ARGS)]
    if missing:
        raise EdgeError(MISSING_CODE[ep.version], f"missing {', '.join(missing)}")
    options = {k: v for k, v in payload.items() if k not in ep.args and k not in SDK_QUERY}
    args = [payload[name] for name in ep.args]
    if ep.version == "v2" and ep.method == "match":
        args[0] = args[0].split(",")
    return args, options


def _parse_form(raw: bytes) -> dict:
    """v2's urlencoded body; the first value of a repeated field counts."""
    try:
        pairs = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise EdgeError(216100, "the body is not a valid form") from None
    out: dict[str, str] = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


def _parse_json(raw: bytes):
    try:
        return json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise EdgeError(222200, "malformed JSON") from None


# -- handlers ---------------------------------------------------------------------------------
class Handlers:
    def __init__(self, service: FaceService):
        self.s = service

    async def health(self, request: web.Request) -> web.Response:
        s = self.s
        refused = s.runtime.availability.refused()
        data_dir = s.config.path(s.config.data_dir)
        return _answer({"status": "degraded" if refused else "ok", "version": __version__, "uptime_s": round(time.time() - s.started, 1),
                        "apps": sorted(s.apps_by_id), "workers": s.config.server.workers,
                        "pending": s.pending, "library_pending": s.queues["library"].pending,
                        "unavailable": refused,
                        "index_loading": [a for a in sorted(s.apps_by_id) if graph_loading(data_dir, a)]}, request)

    async def metrics(self, request: web.Request) -> web.Response:
        body = await asyncio.get_running_loop().run_in_executor(self.s.io_pool, self.s.metrics.render)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def openapi(self, request: web.Request) -> web.Response:
        return _answer(openapi(), request)

    async def capabilities(self, request: web.Request) -> web.Response:
        return _answer(capabilities(), request)

    async def token(self, request: web.Request) -> web.Response:
        """/oauth/2.0/token, GET or POST, parameters in the query or a form body."""
        params = dict(request.query)
        if request.method == "POST":
            try:
                params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
            except (*UNREADABLE_BODY, web.HTTPException):
                pass
        if params.get("grant_type") != "client_credentials":
            request["error_code"] = "unsupported_grant_type"
            return web.json_response({"error": "unsupported_grant_type",
                                      "error_description": "The authorization grant type is not supported"},
                                     status=400)
        client_id, secret = params.get("client_id") or "", params.get("client_secret") or ""
        app = auth.check_credentials(self.s.apps_by_key, client_id, secret)
        if app is None:
            request["error_code"] = "invalid_client"
            reason = "Client authentication failed" if client_id in self.s.apps_by_key else "unknown client id"
            return web.json_response({"error": "invalid_client", "error_description": reason}, status=401)
        request["app_id"] = app.app_id
        return web.json_response(auth.issue_token(app, time.time(), self.s.config.server.token_ttl_s))

    async def face(self, request: web.Request) -> web.Response:
        """Every /rest/2.0/face/... path: route, authenticate, limit, parse, run."""
        version = _version_of(request.path)
        ep = ENDPOINTS.get(request.path.rstrip("/"))
        if ep is None or request.method != "POST":
            return _error(request, version, EdgeError(UNSUPPORTED, request.path))
        cap = body_cap(ep, self.s.config.server.max_body_mb)
        if request.content_length is not None and request.content_length > cap:
            return _error(request, version, body_too_long(ep, cap))
        try:
            payload = await self._payload(request, ep, cap)
        except web.HTTPRequestEntityTooLarge:
            return _error(request, version, body_too_long(ep, cap))
        except EdgeError as err:
            payload = err  # reported after authentication: an anonymous caller learns nothing
        try:
            app = self._authenticate(request, payload)
            request["app_id"] = app.app_id
            if app.scope != "all":
                raise EdgeError(NO_PERMISSION, "a feed key reads the change feed only")
            if not self.s.buckets[app.app_id].allow():
                raise EdgeError(QPS_LIMIT)
            if isinstance(payload, EdgeError):
                raise payload
            args, options = _arguments(ep, payload)
        except EdgeError as err:
            return _error(request, version, err)
        return await self._run(request, app, ep, args, options, needs_inference(ep, payload))

    async def _payload(self, request: web.Request, ep: Endpoint, cap: int):
        multipart = ep.version == "v2" and request.content_type == "multipart/form-data"
        try:
            body = await (request.post() if multipart else request.read())
        except UNREADABLE_BODY:
            raise EdgeError(BAD_PARAM[ep.version], "the body cannot be read") from None
        if not multipart and len(body) > cap:  # chunked: no Content-Length to refuse it by
            raise web.HTTPRequestEntityTooLarge(max_size=cap, actual_size=len(body))
        if multipart:
            if any(not isinstance(v, str) for v in body.values()):
                raise EdgeError(216100, "file uploads are not accepted, send base64 text")
            return {k: body.getone(k) for k in body.keys()}
        parse = _parse_form if ep.version == "v2" else _parse_json
        if len(body) > INLINE_PARSE_BYTES:  # a 4 MB form takes ~70 ms to unquote: not on the loop
            return await asyncio.get_running_loop().run_in_executor(None, parse, body)
        return parse(body)

    def _authenticate(self, request: web.Request, payload) -> AppConfig:
        token = request.query.get("access_token")
        if token is None and isinstance(payload, dict) and isinstance(payload.get("access_token"), str):
            token = payload["access_token"]  # v2 also accepts it as a form field
        header = request.headers.get("Authorization", "")
        if token is None and header.lower().startswith("bce-auth-v1/"):
            return auth.verify_bce(header, method=request.method, path=request.path,
                                   query=list(request.query.items()), headers=request.headers,
                                   apps_by_key=self.s.apps_by_key, now=time.time(),
                                   clock_skew_s=self.s.config.server.clock_skew_s)
        return auth.check_token(token, self.s.creds_by_id, time.time())

    def _sync_request(self, request: web.Request, parse):
        """(app, parsed query) of a feed or snapshot call, authenticated as the API is."""
        app = self._authenticate(request, None)
        request["app_id"] = app.app_id
        return app, parse(request.query, app.app_id)

    async def changes(self, request: web.Request) -> web.Response:
        """The change feed of the caller's app (docs/sync.md): authenticated as the API
        is, not counted against the app's QPS (a long-poll per follower), answered with
        a page signed for the caller's nonce."""
        s = self.s
        try:
            app, req = self._sync_request(request, feed.parse_request)
        except EdgeError as err:
            return _error(request, "v3", err)
        s.followers.record(app.app_id, app.api_key, req, request.remote or "")
        loop = asyncio.get_running_loop()

        def read_page() -> tuple[int, int, bytes]:
            store = s.runtime.library(app.app_id).store
            floor = store.log_floor()
            if req.since < floor:  # what it misses was compacted away: it needs a snapshot
                return floor, 1, snapshot_needed(app.app_id, store.uuid, req.since, floor)
            head, rows = store.feed_rows(req.since, req.limit, list(req.groups) if req.groups else None)
            if req.since > head:  # ahead of this log (the hub's library restored from a backup): rebuild
                return head, 1, snapshot_needed(app.app_id, store.uuid, req.since, floor)
            body = build_page(app.app_id, store.uuid, req.since, head, rows, req.limit)
            return head, len(rows), body

        return await self._signed(request, app.secret_key, req.nonce, feed.long_poll(
            req, app.app_id, lambda: loop.run_in_executor(s.io_pool, read_page), s.feed))

    async def snapshot(self, request: web.Request) -> web.Response:
        """One page of a consistent-after-replay snapshot of the caller's app (docs/sync.md)."""
        s = self.s
        try:
            app, req = self._sync_request(request, feed.parse_snapshot_request)
        except EdgeError as err:
            return _error(request, "v3", err)

        def read_page() -> bytes:
            store = s.runtime.library(app.app_id).store
            head, rows = store.snapshot_rows(req.phase, req.after, req.limit, list(req.groups) if req.groups else None)
            return build_snapshot_page(app.app_id, store.uuid, req.phase, req.after, head, rows, req.limit)

        return await self._signed(request, app.secret_key, req.nonce,
                                  asyncio.get_running_loop().run_in_executor(s.io_pool, read_page))

    async def push(self, request: web.Request) -> web.Response:
        """A terminal's queued operations (docs/sync.md, Up): a feed+push key (or the
        app's own), a signed body; each op applied in order through the library's
        writes, idempotent per op_id; the answer signed for the caller's nonce."""
        s = self.s
        try:
            app = self._authenticate(request, None)
            request["app_id"] = app.app_id
            nonce = push_ops.check_request(request.query, app, request.content_length)
            body = await _read_bounded(request, PUSH_MAX_BYTES)
            push_ops.check_body_signature(app.secret_key, nonce, body, request.headers.get(PUSH_SIGNATURE_HEADER))
            origin, raws = parse_body(body)
        except EdgeError as err:
            return _error(request, "v3", err)

        def apply() -> bytes:
            lib = s.runtime.library(app.app_id)
            results = push_ops.apply_ops(lib, s.runtime.model_id, origin, raws)
            return _dumps({"error_code": 0, "error_msg": "SUCCESS", "log_id": new_log_id(),
                           "timestamp": int(time.time()), "cached": 0,
                           "result": {"results": results, "head": lib.store.last_seq()}}).encode()

        async def applied() -> bytes:
            body = await asyncio.get_running_loop().run_in_executor(s.io_pool, apply)
            s.feed.poke(app.app_id)   # on the loop: the followers' long-polls wake at once
            return body

        return await self._signed(request, app.secret_key, nonce, applied())

    @staticmethod
    async def _signed(request: web.Request, secret: str, nonce: str, pending) -> web.Response:
        """The awaited body signed for the caller's nonce, or its error as v3 JSON (a
        storage failure as 222915: the backend cannot be reached)."""
        try:
            body = await pending
        except EdgeError as err:
            return _error(request, "v3", err)
        except StorageError as err:
            return _error(request, "v3", EdgeError(222915, str(err)))
        return web.Response(body=body, content_type="application/json",
                            headers={SIGNATURE_HEADER: sign_page(secret, nonce, body)})

    async def _run(self, request: web.Request, app: AppConfig, ep: Endpoint, args: list, options: dict,
                   inference: bool):
        """In the inference pool when the request carries pixels, else in the library pool
        (a FACE_TOKEN search never waits behind photos); each pool's queue is bounded."""
        s = self.s
        queue = s.queues["infer" if inference else "library"]
        if queue.pending >= s.config.server.max_pending:
            return _error(request, ep.version, EdgeError(BUSY, f"{queue.name} queue full"))
        method = getattr(s.clients[app.app_id, ep.version], ep.method)
        call = functools.partial(method, *args) if ep.body == "list" else functools.partial(method, *args, options)
        with queue:
            body = await asyncio.get_running_loop().run_in_executor(queue.pool, call)
        s.feed.poke(app.app_id)  # a write wakes the app's followers at once
        return _answer(body, request)


# -- middleware: one access-log line and the metrics for every request ------------------------
def _route_label(path: str) -> str:
    """Bounded label set: known paths as they are, anything else as 'other'."""
    if path in ENDPOINTS or path in ("/oauth/2.0/token", "/health", "/metrics", "/openapi.json", CAPABILITIES,
                                     FEED_PATH, SNAPSHOT_PATH, PUSH_PATH):
        return path
    return "other"


@web.middleware
async def observe(request: web.Request, handler):
    service: FaceService = request.app["service"]
    started = time.perf_counter()
    service.metrics.in_flight.inc()
    status = 500
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # aiohttp's own 404/405/413 ...: Baidu's code and text, as JSON
            body = error_json(UNSUPPORTED if exc.status in (404, 405) else MALFORMED)
            allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            response = web.json_response(body, status=exc.status, headers=allow, dumps=_dumps)
            request["error_code"] = body["error_code"]
        except ConnectionResetError:  # the client left before its body was read: no one to answer, no bug
            log.info("%s %s: client disconnected", request.method, request.path)
            response = web.Response(status=499)  # nginx's "client closed request", for the log and metrics
        except Exception:  # noqa: BLE001 - a bug must not reach the client as a traceback
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = web.json_response(EdgeError(2).to_dict(), status=500)
            request["error_code"] = 2
        status = response.status
        return response
    finally:
        elapsed = time.perf_counter() - started
        service.metrics.in_flight.dec()
        code = request.get("error_code", 0)
        service.metrics.observe(_route_label(request.path), code, elapsed)
        access_log.info(_dumps({
            "ts": round(time.time(), 3), "remote": request.remote, "method": request.method,
            "path": request.path[:200], "status": status, "error_code": code, "app_id": request.get("app_id"),
            "ms": round(elapsed * 1000, 2), "bytes_in": request.content_length or 0,
            "user_agent": request.headers.get("User-Agent", "")[:100]}))


def make_app(service: FaceService, console=None) -> web.Application:
    """The API's application; with `console` (an edge.console.context.ConsoleContext)
    also the web console at /console/ (docs/console.md)."""
    srv = service.config.server
    app = web.Application(middlewares=[observe], client_max_size=largest_body(srv.max_body_mb))
    app["service"] = service
    h = Handlers(service)

    def cap_of(request: web.Request) -> int:  # what face() reads of this path
        return path_cap(request.path, srv.max_body_mb)

    def too_long(request: web.Request, cap: int) -> web.Response:  # what face() answers from Content-Length
        return _error(request, _version_of(request.path), path_too_long(request.path, cap))
    expect = {"expect_handler": expect_handler(cap_of, too_long)}
    app.router.add_get("/health", h.health, **expect)
    app.router.add_get("/metrics", h.metrics, **expect)
    app.router.add_get("/openapi.json", h.openapi, **expect)
    app.router.add_get(CAPABILITIES, h.capabilities, **expect)
    app.router.add_route("GET", "/oauth/2.0/token", h.token, **expect)
    app.router.add_route("POST", "/oauth/2.0/token", h.token, **expect)
    app.router.add_route("*", PREFIX + "/{tail:.*}", h.face, **expect)
    app.router.add_get(FEED_PATH, h.changes, **expect)
    app.router.add_get(SNAPSHOT_PATH, h.snapshot, **expect)
    app.router.add_post(PUSH_PATH, h.push, **expect)
    if console is not None:
        from edge.console.app import mount
        mount(app, console)
    return app


def tls_context(config: Config) -> ssl.SSLContext | None:
    srv = config.server
    if not srv.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(config.path(srv.tls_cert), config.path(srv.tls_key))
    return ctx


async def start_site(service: FaceService, app: web.Application) -> tuple[GuardedRunner, str]:
    """`app` listening on server.host:server.port behind the protocol guard (`edge serve`,
    and `edge run` hosting the console); OSError when the address is taken."""
    config, srv = service.config, service.config.server
    guard = Guard(Limits(srv.header_timeout_s, srv.body_timeout_s, srv.max_connections, srv.send_timeout_s),
                  EventLog(limit=srv.http_log_per_min), count=service.metrics.count_rejected)
    runner = GuardedRunner(app, guard, access_log=None, handle_signals=False, auto_decompress=False,
                           keepalive_timeout=srv.keepalive_s)
    await runner.setup()
    ctx = tls_context(config)
    site = web.TCPSite(runner, srv.host, srv.port, ssl_context=ctx, backlog=256)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    host, port = runner.addresses[0][:2]
    return runner, f"{'https' if ctx else 'http'}://{host}:{port}"


async def _serve(config: Config, ready=None) -> None:
    service = FaceService(config)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, service.warm_up)
    # Request bodies are taken as sent, never decompressed: Baidu's SDKs compress none, and
    # aiohttp decoding a broken gzip/deflate body fails outside any handler (a text 400,
    # a traceback in the log, at times a hung or reset connection).
    # Malformed HTTP, read deadlines and the connection cap are handled below the app, in
    # the protocol (edge/server/protocol.py); keepalive_timeout also bounds the wait for a
    # first request on a new connection.
    console = None
    if config.console.enabled:
        from edge.console.context import ConsoleContext
        console = ConsoleContext(config, service.runtime, role="hub", service=service)
    runner, url = await start_site(service, make_app(service, console=console))
    if console is not None:
        announce_console(config, url)
    log.info("edge serve %s listening on %s (%d app(s), %d inference worker(s))",
             __version__, url, len(config.apps), config.server.workers)
    if config.sync.enabled:  # a terminal: follow the hub's library (docs/sync.md)
        from edge.sync.follower import start_follower
        service.follower = start_follower(config, service.runtime)
    if ready:
        ready(url)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("edge serve stopping: finishing in-flight requests")
    service.feed.close()
    if service.follower is not None:
        await loop.run_in_executor(None, service.follower.stop)
    await runner.cleanup()
    await loop.run_in_executor(None, service.close)


def announce_console(config: Config, url: str) -> str | None:
    """The console's address, and on the first start the admin password (shown once;
    returned too, for `edge run` to print it beside the address)."""
    from edge.console.app import refusal
    from edge.console.auth import ensure_admin
    if refusal(config):
        return None
    log.info("console at %s/console/", url)
    password = ensure_admin(config)
    if password:
        log.warning("console: first start: created user admin with password %s (shown only now; "
                    "`edge console user passwd admin` sets another)", password)
    return password


def serve(config: Config, ready=None) -> int:
    """Run until SIGTERM/SIGINT; in-flight requests finish before the process exits."""
    asyncio.run(_serve(config, ready))
    return 0
