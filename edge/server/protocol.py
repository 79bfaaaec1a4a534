"""Below the application: what aiohttp's HTTP protocol does on its own, made Baidu-shaped and safe.

aiohttp answers a message it cannot parse (an over-long line, a bad Content-Length or chunk
size, TLS on the plain port, ...) from `web_protocol.RequestHandler.handle_error` with a
text/plain 400 that echoes the offending bytes, and logs the exception with a traceback
whose message quotes them too (the access_token of an over-long query).  It has no read or
write deadline (a client trickling its headers or body, or never reading its answers, holds
a connection and a handler for as long as it likes) and no connection cap.
`GuardedHandler` fixes those where aiohttp decides them: the protocol object, one per
connection.  `expect_handler` does the same for `Expect:`, which aiohttp handles before
any middleware.

Hooks used (checked on aiohttp 3.14; setup.cfg pins the range, `require_internals` refuses
to start on a version without them): RequestHandler's `handle_error`, `log_exception`,
`data_received`, `connection_made`/`connection_lost`, `pause_writing`/`resume_writing` and
its `_messages`/`_request_in_progress` state; `web.Server.__call__` (which builds the
protocol) and `web.AppRunner._make_server` (which builds the Server).
"""
from __future__ import annotations

import asyncio
import json
import socket
import struct
import traceback
from dataclasses import dataclass
from http import HTTPStatus
from typing import Callable

from aiohttp import web
from aiohttp.http import HttpVersion11, RawRequestMessage

from edge.errors import EdgeError
from edge.server.eventlog import EventLog
from edge.service import new_log_id

MALFORMED = 100        # Baidu's gateway "Invalid parameter": the message is not a usable request
UNAVAILABLE = 2        # "Service temporarily unavailable": a fault of ours below the app, or a timeout
OVER_CAPACITY = 4      # "Open api request limit reached": too many open connections

# Fixed phrases of llhttp (aiohttp's C parser) and of aiohttp's parsers: the one part of a
# parse error's message that never holds client bytes.  Anything else is described by class.
_KNOWN_REASONS = frozenset({
    "Too many headers received", "Received HTTPS traffic on an HTTP port",
    "Invalid character in Content-Length", "Duplicate Content-Length", "Content-Length overflow",
    "Content-Length can't be present with Transfer-Encoding",
    "Transfer-Encoding can't be present with Content-Length",
    "Request has invalid `Transfer-Encoding`", "Invalid `Transfer-Encoding` header value",
    "Invalid character in chunk size", "Chunk size overflow", "Invalid character in chunk extensions",
    "Missing expected CR after chunk size", "Missing expected CR after chunk data",
    "Expected LF after chunk size", "Expected LF after chunk data",
    "Invalid method encountered", "Invalid method for HTTP/x.x request", "Expected space after method",
    "Invalid HTTP version", "Invalid major version", "Invalid minor version", "Expected HTTP/",
    "Invalid char in url path", "Invalid char in url query", "Invalid char in url fragment start",
    "Invalid characters in url", "Unexpected start char in url", "Unexpected space after start line",
    "Invalid header field char", "Invalid header token", "Invalid header value char",
    "Missing expected CR after header value", "Missing expected LF after header value",
    "Unexpected whitespace after header value", "Expected LF after headers", "Expected CRLF after version",
    "Data after `Connection: close`", "Invalid EOF state", "Missing 'Host' header in request",
})
_CLASS_REASONS = (  # most specific first
    ("LineTooLong", "request line or header field too long"),
    ("BadHttpMethod", "bad method"),
    ("BadStatusLine", "bad request line"),
    ("InvalidURLError", "bad URL"),
    ("InvalidHeader", "bad header"),
    ("TransferEncodingError", "bad chunked body"),
    ("ContentLengthError", "body shorter than its Content-Length"),
    ("ContentEncodingError", "bad Content-Encoding"),
    ("HttpProcessingError", "malformed request"),
)


def describe(exc: BaseException | None) -> str:
    """A parse error's reason, from fixed text only (its message quotes the client's bytes)."""
    if exc is None:
        return "no detail"
    message = str(getattr(exc, "message", "") or "")
    if message.startswith("Bad status line:"):
        message = message[len("Bad status line:"):].lstrip()
    head = message.split("\n", 1)[0].split(":", 1)[0].strip().rstrip(".")
    if head in _KNOWN_REASONS:
        return head
    names = {k.__name__ for k in type(exc).__mro__}
    return next((text for name, text in _CLASS_REASONS if name in names), type(exc).__name__)


def fault_site(exc: BaseException | None) -> str:
    """Where an exception that escaped the app was raised (file:line, no values)."""
    frames = traceback.extract_tb(exc.__traceback__) if exc is not None else []
    return f"server fault at {frames[-1].filename}:{frames[-1].lineno}" if frames else "server fault"


@dataclass(frozen=True)
class Limits:
    header_timeout_s: float = 10.0   # from a request's first byte to its last header line
    body_timeout_s: float = 60.0     # from the headers to the body's last byte
    max_connections: int = 256
    send_timeout_s: float = 60.0     # an answer the client stopped reading, from the moment it stalled


def raw_response(status: int, body: dict) -> bytes:
    """A complete HTTP/1.1 answer for moments with no request object (timeout, refusal)."""
    payload = json.dumps(body, separators=(",", ":")).encode("ascii")
    phrase = HTTPStatus(status).phrase
    head = (f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n")
    return head.encode("ascii") + payload


BODY_FAILED = "the body's read failed (216100 / 222200), connection closed"


def answered(status: int, body: dict) -> str:
    return f"answered {status} error_code {body['error_code']} log_id {body['log_id']}"


def error_json(code: int) -> dict:
    """The gateway envelope: error_code, error_msg, log_id (no version is known here)."""
    return {**EdgeError(code).to_dict(), "log_id": new_log_id()}


def _compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


class BodyAborted(web.RequestPayloadError):
    """Set on a request's body stream that is late or broken: the handler's read fails at once."""


class GuardedHandler(web.RequestHandler):
    """aiohttp's per-connection protocol with Baidu JSON errors, one-line logs, deadlines and a cap."""

    def __init__(self, manager: "GuardedServer", **kwargs):
        super().__init__(manager, **kwargs)
        self.guard = manager.guard
        self._header_timer: asyncio.TimerHandle | None = None
        self._body = None  # the body stream of the last request read
        self._body_timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None

    # -- connection cap ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        guard = self.guard
        if guard.open_connections() > guard.limits.max_connections:
            body = error_json(OVER_CAPACITY)
            guard.event("connection_limit", self.peer(), f"over {guard.limits.max_connections} open connections",
                        answered(503, body))
            transport.write(raw_response(503, body))
            self.force_close()

    def peer(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        return str(peer[0]) if isinstance(peer, (tuple, list)) and peer else "-"

    # -- read deadlines ----------------------------------------------------------------------
    def _idle(self) -> bool:
        """Between requests: none queued or being handled, and the last one's body is complete."""
        body = self._body
        return not self._messages and not self._request_in_progress and (body is None or body.is_eof())

    def data_received(self, data: bytes) -> None:
        if data and self._header_timer is None and self._idle():
            self._header_timer = self._loop.call_later(self.guard.limits.header_timeout_s, self._headers_late)
        queued = len(self._messages)
        super().data_received(data)
        fresh = list(self._messages)[queued:] if len(self._messages) > queued else []
        if fresh and self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        for message, payload in fresh:
            if not isinstance(message, RawRequestMessage):  # a parse error, queued for handle_error
                self._body_broken(getattr(message, "exc", None))
                continue
            self._body = payload
            if not payload.is_eof():
                self._body_timer = self._loop.call_later(self.guard.limits.body_timeout_s, self._body_late, payload)
                payload.on_eof(self._body_timer.cancel)

    def _body_broken(self, exc: BaseException | None) -> None:
        """A parse error inside the body being read (a bad chunk size in a later segment):
        aiohttp would queue its 400 behind a handler that waits for the body for ever;
        fail that read now instead (the handler answers 216100/222200, the connection closes)."""
        body = self._body
        if body is None or body.is_eof() or body.exception() is not None:
            return
        self.guard.event(type(exc).__name__ if exc else "body_error", self.peer(), describe(exc), BODY_FAILED)
        body.set_exception(BodyAborted("malformed body"))
        self.close()

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self._idle() or self.transport is None or self._force_close:
            return
        body = error_json(MALFORMED)
        self.guard.event("header_timeout", self.peer(),
                         f"headers not complete within {self.guard.limits.header_timeout_s:g} s", answered(408, body))
        self.transport.write(raw_response(408, body))
        self.force_close()

    def _body_late(self, payload) -> None:
        if payload.is_eof() or payload.exception() is not None:
            return
        self.guard.event("body_timeout", self.peer(),
                         f"body not complete within {self.guard.limits.body_timeout_s:g} s", BODY_FAILED)
        payload.set_exception(BodyAborted(f"body not received within {self.guard.limits.body_timeout_s:g} s"))
        self.close()  # no keep-alive after a body that never ended

    def pause_writing(self) -> None:
        """The transport's buffer is full: the client stopped reading its answers (a slow
        reader would hold a connection - and one of max_connections - for ever)."""
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self._loop.call_later(self.guard.limits.send_timeout_s, self._send_late)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _send_late(self) -> None:
        self._send_timer = None
        if self.transport is None:
            return
        self.guard.event("send_timeout", self.peer(),
                         f"answer not taken within {self.guard.limits.send_timeout_s:g} s", "connection reset")
        sock = self.transport.get_extra_info("socket")
        if sock is not None:  # reset at once: the kernel drops what is queued instead of trickling it out
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.transport.abort()

    def connection_lost(self, exc: BaseException | None) -> None:
        for timer in (self._header_timer, self._body_timer, self._send_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = self._send_timer = None
        super().connection_lost(exc)

    # -- answers and logs --------------------------------------------------------------------
    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """aiohttp's answer to an unparsable message (400) or a fault that escaped the app
        (500/504): Baidu JSON, one log line, never the client's bytes."""
        code = MALFORMED if status < 500 else UNAVAILABLE
        body = error_json(code)
        kind = type(exc).__name__ if exc is not None else f"http_{status}"
        self.guard.event(kind, self.peer(), describe(exc) if status < 500 else fault_site(exc),
                         answered(status, body))
        if request.writer.output_size > 0:  # as aiohttp: an answer is already on its way
            raise ConnectionError("Response is sent already, cannot send another response with the error")
        resp = web.json_response(body, status=status, dumps=_compact)
        resp.force_close()
        return resp

    def log_exception(self, *args, **kw) -> None:
        """aiohttp's own tracebacks (a handler task that failed outside the app): one line."""
        exc = kw.get("exc_info")
        if isinstance(exc, BodyAborted):
            return  # aiohttp reading the rest of an aborted body: already logged
        kind = type(exc).__name__ if isinstance(exc, BaseException) else "aiohttp"
        what = str(args[0])[:80] if args else "error"
        self.guard.event(kind, self.peer(), what, "connection closed")


class Guard:
    """What every connection's protocol shares: the limits, the event log, a metrics hook."""

    def __init__(self, limits: Limits, events: EventLog | None = None,
                 count: Callable[[str], None] | None = None):
        self.limits, self.events = limits, events or EventLog()
        self.count = count or (lambda kind: None)
        self.server: GuardedServer | None = None

    def open_connections(self) -> int:
        return len(self.server.connections) if self.server is not None else 0

    def event(self, kind: str, remote: str, reason: str, outcome: str) -> None:
        self.count(kind)
        self.events.note(kind, "HTTP-layer %s from %s: %s; %s", kind, remote, reason, outcome)


class GuardedServer(web.Server):
    def __init__(self, *args, guard: Guard, **kwargs):
        super().__init__(*args, **kwargs)
        self.guard = guard
        guard.server = self

    def __call__(self) -> GuardedHandler:
        return GuardedHandler(self, loop=self._loop, **self._kwargs)


def expect_handler(cap_of: Callable[[web.Request], int],
                   too_long: Callable[[web.Request, int], web.StreamResponse]):
    """The routes' `Expect:` handling, which aiohttp runs before any middleware: an unknown
    expectation was a text/plain 417; a body over the cap got "100 Continue" and was sent
    in full only to be refused.  Now: a JSON 417, and the cap's refusal (`too_long`, the
    answer the handler would give) instead of "100 Continue"."""
    async def expect(request: web.Request):
        if request.version != HttpVersion11:
            return None  # HTTP/1.0 has no interim answers: read the body as usual
        if request.headers.get("Expect", "").lower() != "100-continue":
            resp = web.json_response(error_json(MALFORMED), status=417, dumps=_compact)
        elif request.content_length is not None and request.content_length > cap_of(request):
            resp = too_long(request, cap_of(request))
        else:
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0  # as aiohttp's own handler: the answer proper has not started
            return None
        resp.force_close()  # the body that was held back is never read
        return resp
    return expect


_HANDLER_INTERNALS = ("_messages", "_request_in_progress", "_force_close", "_loop")


def require_internals() -> None:
    """Refuse to start, naming the version, on an aiohttp whose internals moved."""
    import aiohttp
    slots = {name for klass in web.RequestHandler.__mro__ for name in getattr(klass, "__slots__", ())}
    missing = [name for name in _HANDLER_INTERNALS if name not in slots]
    missing += [name for name in ("handle_error", "log_exception", "data_received", "connection_made")
                if not callable(getattr(web.RequestHandler, name, None))]
    if not callable(getattr(web.AppRunner, "_make_server", None)):
        missing.append("AppRunner._make_server")
    if missing:
        raise RuntimeError(f"aiohttp {aiohttp.__version__} lacks {', '.join(missing)}: edge serve's protocol "
                           "guard (edge/server/protocol.py) needs the range pinned in setup.cfg")


class GuardedRunner(web.AppRunner):
    """web.AppRunner whose connections use GuardedHandler."""

    def __init__(self, app: web.Application, guard: Guard, **kwargs):
        require_internals()
        super().__init__(app, **kwargs)
        self._guard = guard

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return GuardedServer(plain.request_handler, request_factory=plain.request_factory,
                             handler_cancellation=plain.handler_cancellation, loop=plain._loop,
                             guard=self._guard, **plain._kwargs)
