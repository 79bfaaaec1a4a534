"""Property-based fuzzing of `edge serve` over its own OpenAPI description (schemathesis).

The schema is the one the running server serves at /openapi.json, so what is fuzzed is
what clients are told.  Every /rest/ operation carries a valid access_token of app 1001,
so generated bodies reach the handlers and the AipFace methods behind them, not just
authentication; /oauth/2.0/token is fuzzed as it is.  Both positive (schema-conforming)
and negative (schema-violating) data are generated, plus schemathesis' deterministic
coverage cases (boundary values, missing fields, wrong types, unexpected methods).

What must hold for every answer: no 5xx, a JSON body (text for /metrics), never a
traceback, and for /rest/ no internal-error code (216401 v2, 222915 v3, 2): those mean
an unexpected exception inside a method.  Afterwards the process must still be up, with
no traceback in its log.  Random base64 is never a valid photo, so inference is rarely
reached; the parsing and validation in front of it is what this exercises.

Generation is derandomized (the same cases every run) and bounded per operation.  App
1001 has a high QPS limit in conftest.SERVER_APPS; should a request still meet error 18,
it is retried, so that every case reaches its handler.
"""
from __future__ import annotations

import json
import time

import pytest
import requests

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

APP_ID = "1001"
MAX_EXAMPLES = 20
SEED = 20240601
INTERNAL_ERRORS = {2, 216401, 222915}   # generic, v2 "internal error", v3 "system busy"
QPS_LIMIT = 18
TIMEOUT_S = 60


class Stats:
    """What the fuzz run did, for the checks after it (and a line in -v output)."""

    def __init__(self):
        self.requests = 0
        self.operations: set[str] = set()
        self.codes: dict[object, int] = {}
        self.retried = 0
        self.started = time.monotonic()


STATS = Stats()


def _token(server) -> str:
    api_key, secret = server.apps[APP_ID][:2]
    r = requests.post(f"{server.url}/oauth/2.0/token", timeout=TIMEOUT_S,
                      data={"grant_type": "client_credentials", "client_id": api_key, "client_secret": secret})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@pytest.fixture(scope="module")
def access_token(server) -> str:
    return _token(server)


def _v3(server, token, path, body):
    return requests.post(f"{server.url}/rest/2.0/face/v3/{path}", params={"access_token": token},
                         json=body, timeout=TIMEOUT_S).json()


@pytest.fixture(scope="module", autouse=True)
def library_restored(server, access_token):
    """The fuzz creates groups in app 1001's library (groupAdd with random valid ids):
    delete every group that was not there before, for the tests that share the server."""
    def groups():
        out = _v3(server, access_token, "faceset/group/getlist", {"start": 0, "length": 1000})
        assert out["error_code"] == 0, out
        return set(out["result"]["group_id_list"])

    before = groups()
    yield
    for group in sorted(groups() - before):
        _v3(server, access_token, "faceset/group/delete", {"group_id": group})


@pytest.fixture(scope="module")
def api_schema(server):
    config = schemathesis.Config.from_dict({
        "seed": SEED,
        "base-url": server.url,
        "generation": {"mode": "all", "deterministic": True, "max-examples": MAX_EXAMPLES,
                       "database": "none"},
        "suppress-health-check": ["too_slow", "filter_too_much"],
    })
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=config, timeout=TIMEOUT_S)


# -- checks run on every fuzzed answer ---------------------------------------------------------------
def _body(response) -> str:
    return response.content.decode("utf-8", "replace")


def no_traceback(ctx, response, case):
    assert "Traceback" not in _body(response), "a traceback reached the client"


def json_answer(ctx, response, case):
    if case.method == "HEAD":
        return
    content_type = ",".join(response.headers.get("content-type", []))
    if case.path == "/metrics" and response.status_code == 200:
        assert content_type.startswith("text/plain"), content_type
        return
    assert content_type.startswith("application/json"), f"{content_type}: {_body(response)[:200]}"
    json.loads(response.content)


def baidu_answer(ctx, response, case):
    """/rest/: Baidu's JSON, and never an internal error (an unexpected exception in a method)."""
    if not case.path.startswith("/rest/") or case.method == "HEAD":
        return
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    if case.path.startswith("/rest/2.0/face/v3/"):
        assert "error_code" in body, body          # v3 always carries it, 0 on success
    else:
        assert "error_code" in body or "log_id" in body, body   # v2: absent on success
    assert body.get("error_code") not in INTERNAL_ERRORS, body


CHECKS = [not_a_server_error, json_answer, no_traceback, baidu_answer]

schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_fuzz(case, access_token):
    if case.path.startswith("/rest/"):
        query = case.query if isinstance(case.query, dict) else {}
        case.query = {**query, "access_token": access_token}
    for _attempt in range(10):
        response = case.call(timeout=TIMEOUT_S)
        STATS.requests += 1
        code = _error_code(response)
        if code != QPS_LIMIT:
            break
        STATS.retried += 1
        time.sleep(1.0)
    STATS.operations.add(f"{case.operation.method.upper()} {case.operation.path}")
    STATS.codes[code] = STATS.codes.get(code, 0) + 1
    case.validate_response(response, checks=CHECKS)


def _error_code(response):
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    return body.get("error_code") if isinstance(body, dict) else None
