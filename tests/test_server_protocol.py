"""`edge serve` below the application: malformed HTTP, slow clients, connection limits.

Raw sockets against a real server process (tests/serving.py): what aiohttp's protocol
would answer on its own (a text/plain 400 echoing the request, a traceback quoting the
access_token in the log, a connection held for an hour by a client trickling its headers)
must be Baidu JSON, one secret-free and rate-limited log line per event, and a server that
keeps serving.
"""
from __future__ import annotations

import json
import logging
import re
import socket
import time

import pytest
import requests

from conftest import SERVER_APPS
from edge.server.eventlog import EventLog
from serving import start_server, wait_until

APP, KEY, SECRET = "1001", *SERVER_APPS["1001"][:2]
LOG_PER_MIN = 40
LIMITS = {"workers": 1, "header_timeout_s": 1, "body_timeout_s": 3, "keepalive_s": 4, "send_timeout_s": 2,
          "max_connections": 16, "max_body_mb": 1, "http_log_per_min": LOG_PER_MIN}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("protocol"), {APP: SERVER_APPS[APP]}, server=LIMITS)
    r = requests.get(f"{server.url}/oauth/2.0/token", params={
        "grant_type": "client_credentials", "client_id": KEY, "client_secret": SECRET})
    server.token = r.json()["access_token"]
    host, port = server.url.split("//")[1].rsplit(":", 1)
    server.addr = (host, int(port))
    yield server
    server.stop()


def exchange(srv, data: bytes, *, then: bytes = b"", pause: float = 0.0, timeout: float = 15.0) -> bytes:
    """Send data (and `then` after `pause` s), read until the server closes."""
    with socket.create_connection(srv.addr, timeout=timeout) as s:
        s.sendall(data)
        if then:
            time.sleep(pause)
            s.sendall(then)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                return out
            out += chunk
    return out


def answer(raw: bytes) -> tuple[int, dict, dict]:
    """(status, headers, JSON body) of the last response in raw."""
    head, _, body = raw[raw.rfind(b"HTTP/1."):].partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(body)


def path(srv, route: str = "v3/faceset/group/getlist") -> bytes:
    return f"/rest/2.0/face/{route}?access_token={srv.token}".encode()


def log_since(srv, mark: int) -> list[str]:
    return srv.lines[mark:]


# The malformed messages of the issue, each with the caller's access_token in it.
CASES = {
    "long_query": lambda p: b"POST " + p + b"&x=" + b"A" * 9000 + b" HTTP/1.1\r\nHost: x\r\n"
                            b"Content-Length: 2\r\n\r\n{}",
    "long_header": lambda p: b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nX-Big: " + b"B" * 9000 + b"\r\n\r\n",
    "many_headers": lambda p: b"POST " + p + b" HTTP/1.1\r\nHost: x\r\n"
                              + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n",
    "bad_content_length": lambda p: b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
    "duplicate_content_length": lambda p: b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                          b"Content-Length: 3\r\n\r\n{}",
    "bad_chunk_size": lambda p: b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                b"zz\r\n{}\r\n0\r\n\r\n",
    "chunked_and_length": lambda p: b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                    b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "garbage_method": lambda p: b"G@T " + p + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "tls_on_plain_port": lambda p: bytes.fromhex("16030100f8010000f40303") + b"\x00" * 32 + p,
    "bad_version": lambda p: b"GET " + p + b" HTTP/9.x\r\nHost: x\r\n\r\n",
    "non_utf8_path": lambda p: b"GET /rest/2.0/face/v3/\xff\xfe" + p[p.index(b"?"):] + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "huge_content_length": lambda p: b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nContent-Length: "
                                     + b"9" * 30 + b"\r\n\r\n",
    "missing_host": lambda p: b"GET " + p + b" HTTP/1.1\r\n\r\n",
    "http2_preface": lambda p: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + p,
    "body_longer_than_declared": lambda p: b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"
                                           b"{}" + p + b" junk\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_http_gets_baidu_json(srv, case):
    raw = exchange(srv, CASES[case](path(srv)))
    status, headers, body = answer(raw)
    assert status == 400 and headers["content-type"].startswith("application/json"), raw[:300]
    assert body["error_code"] == 100 and body["error_msg"] == "Invalid parameter" and body["log_id"] > 0
    assert srv.token.encode() not in raw  # aiohttp's text answer echoed the request line


def test_malformed_http_logs_one_safe_line_each(srv):
    mark = len(srv.lines)
    for case in sorted(CASES):
        exchange(srv, CASES[case](path(srv)))
    assert wait_until(lambda: sum("HTTP-layer" in line for line in log_since(srv, mark)) >= len(CASES))
    time.sleep(0.3)
    lines = log_since(srv, mark)
    events = [line for line in lines if "HTTP-layer" in line]
    assert len(events) == len(CASES), "\n".join(lines)
    assert all("answered 400 error_code 100 log_id" in line for line in events), "\n".join(events)
    assert not [line for line in lines if "edge.access" not in line and "edge.http" not in line], "\n".join(lines)
    text = srv.log_text()
    assert "Traceback" not in text and srv.token not in text and srv.token.split(".")[1] not in text


def test_slow_headers_are_cut_off(srv):
    """Slowloris: a header line every 0.3 s would hold the connection until keep-alive
    (an hour by aiohttp's default); header_timeout_s (1 s) ends it with a JSON 408."""
    started = time.monotonic()
    with socket.create_connection(srv.addr, timeout=15) as s:
        s.sendall(b"POST " + path(srv) + b" HTTP/1.1\r\nHost: x\r\n")
        raw = b""
        for i in range(30):
            time.sleep(0.3)
            try:
                s.sendall(b"X-Slow-%d: 1\r\n" % i)
            except OSError:
                break
        s.settimeout(5)
        try:
            while chunk := s.recv(65536):
                raw += chunk
        except ConnectionResetError:
            pass
    status, _, body = answer(raw)
    assert status == 408 and body["error_code"] == 100
    assert time.monotonic() - started < 8  # generous: the point is "not held open"


def test_idle_connection_is_closed_after_keepalive(srv):
    started = time.monotonic()
    with socket.create_connection(srv.addr, timeout=20) as s:
        assert s.recv(100) == b""  # closed by the server, with nothing sent
    assert time.monotonic() - started < 15


def test_slow_body_is_cut_off(srv):
    mark = len(srv.lines)
    head = (b"POST " + path(srv) + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{")
    status, _, body = answer(exchange(srv, head, timeout=20))
    assert status == 200 and body["error_code"] == 222200  # "the body cannot be read", as a broken body
    assert wait_until(lambda: any("body_timeout" in line for line in log_since(srv, mark)))


def test_bad_chunk_after_the_headers_is_answered_at_once(srv):
    """The chunk size arrives in a later segment: aiohttp queued its 400 behind a handler
    that waited for the body for ever; now the read fails and the handler answers."""
    mark = len(srv.lines)
    head = (b"POST " + path(srv) + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    status, _, body = answer(exchange(srv, head, then=b"zz\r\n{}\r\n0\r\n\r\n", pause=0.3, timeout=20))
    assert status == 200 and body["error_code"] == 222200
    assert wait_until(lambda: any("Invalid character in chunk size" in line for line in log_since(srv, mark)))
    assert not any("body_timeout" in line for line in log_since(srv, mark))  # not the 3 s deadline


def test_a_client_that_stops_reading_is_dropped(srv):
    """Pipelined requests whose answers are never read fill the server's buffers; it held
    the connection (one of max_connections) for as long as the client liked."""
    mark = len(srv.lines)
    with socket.create_connection(srv.addr, timeout=20) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * 600)  # ~16 MB of answers
        assert wait_until(lambda: any("send_timeout" in line for line in log_since(srv, mark)), timeout=20)
        got, ended = b"", False
        try:
            while chunk := s.recv(1 << 20):
                got += chunk
            ended = True
        except ConnectionResetError:
            ended = True
    assert ended and got.count(b"HTTP/1.1 200") < 600


def test_connections_over_the_cap_get_error_4(srv):
    socks = [socket.create_connection(srv.addr, timeout=5) for _ in range(LIMITS["max_connections"] + 8)]
    try:
        refused = 0
        for s in socks:
            s.settimeout(0.5)
            try:
                data = s.recv(4096)
            except socket.timeout:
                continue
            if data:
                status, _, body = answer(data)
                assert status == 503 and body["error_code"] == 4
                refused += 1
        assert refused >= 8
    finally:
        for s in socks:
            s.close()
    assert wait_until(lambda: requests.get(f"{srv.url}/health", timeout=5).status_code == 200)


def test_http_layer_flood_is_rate_limited(srv):
    mark = len(srv.lines)
    started = time.monotonic()
    flood = 300
    for _ in range(flood):
        exchange(srv, CASES["long_query"](path(srv)))
    time.sleep(0.5)
    events = [line for line in log_since(srv, mark) if "edge.http" in line]
    windows = 2 + int((time.monotonic() - started) // 60)  # the flood may straddle a window's end
    assert len(events) <= windows * (LOG_PER_MIN + 1) < flood, len(events)
    metrics = requests.get(f"{srv.url}/metrics").text
    counted = re.search(r'^edge_http_rejected_total\{kind="LineTooLong"\} (\S+)$', metrics, re.M)
    assert counted and float(counted.group(1)) >= flood  # suppressed lines are still counted
    r = requests.post(f"{srv.url}/rest/2.0/face/v3/faceset/group/getlist", params={"access_token": srv.token},
                      json={})
    assert r.json()["error_code"] == 0  # still serving
    assert "Traceback" not in srv.log_text()


def test_aiohttp_routing_errors_use_baidu_text(srv):
    """404/405 raised by aiohttp's router: Baidu's code with the table's text (it was
    aiohttp's reason, "Not Found"), counted under that code, not under the HTTP status."""
    for method, url, status in (("GET", "/nothing/here", 404), ("POST", "/health", 405)):
        r = requests.request(method, srv.url + url)
        assert r.status_code == status and r.json()["error_code"] == 3, r.text
        assert r.json()["error_msg"] == "Unsupported openapi method" and r.json()["log_id"] > 0
    assert requests.post(f"{srv.url}/health").headers["Allow"] == "GET,HEAD"
    metrics = requests.get(f"{srv.url}/metrics").text
    assert re.search(r'^edge_http_requests_total\{error_code="3",path="other"\} ', metrics, re.M)
    assert not re.search(r'error_code="40[45]"', metrics)


def test_expect_header_answered_in_json_before_the_body(srv):
    """aiohttp runs Expect handling before any middleware: an unknown expectation was a
    text/plain 417, and a body over the cap got "100 Continue" (so it was uploaded in full
    only to be refused)."""
    raw = exchange(srv, b"GET /health HTTP/1.1\r\nHost: x\r\nExpect: fast\r\nConnection: close\r\n\r\n")
    status, headers, body = answer(raw)
    assert status == 417 and headers["content-type"].startswith("application/json") and body["error_code"] == 100
    with socket.create_connection(srv.addr, timeout=10) as s:
        s.sendall(b"POST " + path(srv, "v3/detect") + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (5 * 1024 * 1024))
        raw = s.recv(65536)  # the final answer, at once, with the body never sent
    assert b"100 Continue" not in raw
    assert answer(raw)[0] == 200 and answer(raw)[2]["error_code"] == 222304  # v3 photo endpoint over its cap


def test_http_details_that_were_already_right(srv):
    """Guards, not regressions (they passed before): HEAD, OPTIONS, Expect: 100-continue,
    a chunked body over the cap, a percent-encoded non-UTF-8 path."""
    h = requests.head(f"{srv.url}/health")
    assert h.status_code == 200 and h.content == b""
    raw = exchange(srv, b"OPTIONS " + path(srv) + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer(raw)[2]["error_code"] == 3
    raw = exchange(srv, b"POST " + path(srv) + b" HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                   b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    assert raw.startswith(b"HTTP/1.1 100 Continue") and answer(raw)[2]["error_code"] == 0
    chunks = b"".join(b"10000\r\n" + b"A" * 0x10000 + b"\r\n" for _ in range(24)) + b"0\r\n\r\n"  # 1.5 MB
    raw = exchange(srv, b"POST " + path(srv, "v3/detect") + b" HTTP/1.1\r\nHost: x\r\nContent-Type: "
                   b"application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n", then=chunks)
    assert answer(raw)[2]["error_code"] == 222304  # v3 photo endpoint over its cap
    r = requests.post(f"{srv.url}/rest/2.0/face/v3/%FF%FE", params={"access_token": srv.token}, json={})
    assert r.status_code == 200 and r.json()["error_code"] == 3


def test_event_log_sums_up_what_it_suppressed(caplog):
    now = [0.0]
    events = EventLog(logging.getLogger("edge.http.test"), limit=3, window_s=60.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="edge.http.test"):
        for i in range(10):
            events.note("LineTooLong" if i % 2 else "BadHttpMethod", "event %d", i)
        assert [r.getMessage() for r in caplog.records] == ["event 0", "event 1", "event 2"]
        now[0] = 61.0
        events.note("LineTooLong", "event %d", 10)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[3] == ("suppressed 7 similar HTTP-layer events in the last 60 s "
                           "(LineTooLong 4, BadHttpMethod 3)")
    assert messages[4] == "event 10"
