"""Property-based fuzzing of `edge serve` over its own OpenAPI description (schemathesis).

The schema is the one the running server serves at /openapi.json, so what is fuzzed is
what clients are told.  Each operation is fuzzed twice, with positive (schema-conforming)
and with negative (schema-violating: wrong types, missing fields, malformed bodies) data.
Every /rest/ case carries a valid access_token of app 1001, so generated bodies reach the
handlers and the AipFace methods behind them, not only authentication; /oauth/2.0/token
is fuzzed as it is.  Random base64 is never a valid photo, so inference is rarely reached:
what this exercises is the parsing and validation in front of it.

Every answer must have: no 5xx, a JSON body (text for /metrics), no traceback, and on
/rest/ no internal-error code (216401 v2, 222915 v3, 2), which would mean an unexpected
exception inside a method.  A deterministic sweep then puts odd values (wrong JSON types,
odd text) in every documented field of every /rest/ operation, and a few hand-written
requests pin the codes of malformed bodies, missing fields and unknown paths or methods.
Last, the process must still be up, /health must answer and its log must hold no traceback.

The cases are the same on every run: each operation's generation has a fixed seed, and
the example database is off.  MAX_EXAMPLES bounds the run (~2 x 34 x MAX_EXAMPLES requests).

schemathesis' own pytest loader for fixture-provided schemas
(`schemathesis.pytest.from_fixture`) does not run under pytest 9 (it uses the removed
`Node._nodeid`), so the operations are parametrized here and each one is fuzzed with
`APIOperation.as_strategy()` under a plain Hypothesis `@given`.
"""
from __future__ import annotations

import json
import time
import zlib

import pytest
import requests

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from edge.server.endpoints import ENDPOINTS  # noqa: E402
from edge.server.openapi import openapi  # noqa: E402

APP_ID = "1001"
MAX_EXAMPLES = 20
SEED = 20240601
INTERNAL_ERRORS = {2, 216401, 222915}    # generic, v2 "internal error", v3 "system busy"
QPS_LIMIT, UNSUPPORTED = 18, 3
TIMEOUT_S = 60
V2, V3 = "/rest/2.0/face/v2/", "/rest/2.0/face/v3/"

# The operations, from the same generator the server serves (the served set is checked below).
OPERATIONS = sorted((method.upper(), path) for path, item in openapi()["paths"].items() for method in item)
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


class Stats:
    """What the run did: requests sent, answers by error_code, operations reached."""

    def __init__(self):
        self.requests = self.fuzz_cases = self.retried = 0
        self.codes: dict[object, int] = {}
        self.fuzzed: set[tuple[str, str, str]] = set()   # (mode, method, path) with >= 1 case
        self.started = time.monotonic()

    def summary(self) -> str:
        top = sorted(self.codes.items(), key=lambda kv: -kv[1])[:12]
        return (f"{self.requests} requests ({self.fuzz_cases} fuzz cases, {len(self.fuzzed)} operation x mode "
                f"runs, {self.retried} retried after error 18) in {time.monotonic() - self.started:.0f} s; "
                f"error codes {top}")


STATS = Stats()


def _error_code(content: bytes):
    try:
        body = json.loads(content)
    except ValueError:
        return None
    return body.get("error_code") if isinstance(body, dict) else None


def _send(send):
    """send() -> requests.Response, counted; retried on the per-app QPS limit (error 18),
    which would stop a case short of its handler."""
    for _attempt in range(20):
        response = send()
        STATS.requests += 1
        code = _error_code(response.content)
        STATS.codes[code] = STATS.codes.get(code, 0) + 1
        if code != QPS_LIMIT:
            return response
        STATS.retried += 1
        time.sleep(0.5)
    return response


# -- fixtures -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def access_token(server) -> str:
    api_key, secret = server.apps[APP_ID][:2]
    r = requests.post(f"{server.url}/oauth/2.0/token", timeout=TIMEOUT_S,
                      data={"grant_type": "client_credentials", "client_id": api_key, "client_secret": secret})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def post(server, token, path: str, body=None, *, raw: bytes | None = None, form: bool = False,
         method: str = "POST", headers: dict | None = None) -> requests.Response:
    """One request to a /rest/2.0/face/ path with app 1001's token (JSON bodies may hold NaN)."""
    if raw is None and not form:
        raw, headers = json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})}
    data = raw if raw is not None else body
    return _send(lambda: requests.request(method, f"{server.url}/rest/2.0/face/{path}", params={"access_token": token},
                                          data=data, headers=headers, timeout=TIMEOUT_S))


@pytest.fixture(scope="module", autouse=True)
def library_restored(server, access_token):
    """The fuzz creates groups in app 1001's library (groupAdd with random valid ids): delete
    the groups that were not there before, for the other tests sharing the server."""
    def groups() -> set[str]:
        out = post(server, access_token, "v3/faceset/group/getlist", {"start": 0, "length": 1000}).json()
        assert out["error_code"] == 0, out
        return set(out["result"]["group_id_list"])

    before = groups()
    yield
    for group in sorted(groups() - before):
        post(server, access_token, "v3/faceset/group/delete", {"group_id": group})


@pytest.fixture(scope="module")
def api_schema(server):
    config = schemathesis.Config.from_dict({
        "base-url": server.url,
        "generation": {"deterministic": True, "database": "none"},
        "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
    })
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=config, timeout=TIMEOUT_S)


# -- checks on every fuzzed answer ----------------------------------------------------------------------------
def no_traceback(ctx, response, case):
    assert b"Traceback" not in response.content, "a traceback reached the client"


def json_answer(ctx, response, case):
    if case.method == "HEAD":
        return
    content_type = ",".join(response.headers.get("content-type", []))
    if case.path == "/metrics" and response.status_code == 200:
        assert content_type.startswith("text/plain"), content_type
        return
    assert content_type.startswith("application/json"), f"{content_type}: {response.content[:300]!r}"
    json.loads(response.content)


def baidu_answer(ctx, response, case):
    """/rest/: Baidu's JSON object, never an internal error (an unexpected exception in a method)."""
    if case.path.startswith("/rest/") and case.method != "HEAD":
        _assert_baidu(case.path, json.loads(response.content))


def _assert_baidu(path: str, body) -> None:
    assert isinstance(body, dict), body
    if path.startswith(V3):
        assert "error_code" in body, body                        # 0 on success
    else:
        assert "error_code" in body or "log_id" in body, body    # v2: absent on success
    assert body.get("error_code") not in INTERNAL_ERRORS, body


CHECKS = [not_a_server_error, json_answer, no_traceback, baidu_answer]


# -- the fuzz run ---------------------------------------------------------------------------------------------
def test_served_description_lists_every_operation(api_schema):
    served = sorted((op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations())
    assert served == OPERATIONS
    assert {path for _, path in OPERATIONS} >= set(ENDPOINTS)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzz(api_schema, access_token, method, path, mode):
    operation = api_schema[path][method.lower()]
    query = {"access_token": access_token} if path.startswith("/rest/") else None
    label = f"{mode.value} {method} {path}"

    @seed(zlib.crc32(f"{SEED} {label}".encode()))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, print_blob=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
    @given(case=operation.as_strategy(mode, query=query))
    def fuzz(case):
        response = _send(lambda: case.call(timeout=TIMEOUT_S))
        STATS.fuzz_cases += 1
        STATS.fuzzed.add((mode.value, method, path))
        case.validate_response(response, checks=CHECKS)

    try:
        fuzz()
    except Unsatisfiable:
        # Nothing in the description can be violated: no parameters (/health, /metrics), or
        # only optional text fields of a form (v2 getlist).
        assert mode is GenerationMode.NEGATIVE, label


# -- a deterministic sweep: odd values in every documented field ----------------------------------------------
ODD_JSON = [None, True, 0, -1, 2**63, 1.5, float("nan"), float("inf"), "", " ", "\x00", "é" * 200, "x" * 5000, [], ["a"], {},
            {"a": 1}]
ODD_TEXT = ["", " ", "0", "-1", "1e400", "nan", "inf", "１２", "1_0", "0x10", "\x00", "é" * 200, "x" * 5000, ",", ",,",
            "@ALL", "a,b,c", "BASE64", "FACE_TOKEN", "URL", "APPEND", "replace", "NORMAL"]
PLAIN = {"image": "aGVsbG8=", "image_type": "BASE64", "group_id": "fuzz_g", "group_id_list": "fuzz_g",
         "user_id": "fuzz_u", "uid": "fuzz_u", "src_group_id": "fuzz_g", "dst_group_id": "fuzz_g2",
         "face_token": "0" * 32, "images": "aGVsbG8=,aGVsbG8=", "user_info": "info", "id_card_number": "1",
         "name": "n"}


def _plain_body(schema: dict) -> dict:
    return {name: PLAIN.get(name, "") for name in schema.get("required", [])}


def test_odd_values_in_every_field(server, access_token):
    """Each documented field of each /rest/ operation, alone set to an odd value (a wrong JSON
    type in v3, odd text in v2), the required others plain: never an internal error."""
    description = openapi()
    sent = 0
    for path, item in sorted(description["paths"].items()):
        if not path.startswith("/rest/"):
            continue
        content = item["post"]["requestBody"]["content"]
        (media, spec), = content.items()
        schema = spec["schema"]
        form = media == "application/x-www-form-urlencoded"
        odd = ODD_TEXT if form else ODD_JSON
        listed = schema["type"] == "array"
        fields = schema["items"]["properties"] if listed else schema["properties"]
        plain = _plain_body(schema["items"] if listed else schema)
        bodies = [{**plain, name: value} for name in fields for value in odd]
        if listed:
            bodies = [[body, {**plain}] for body in bodies] + [[value] for value in odd] + [[plain] * 3]
        for body in bodies:
            r = post(server, access_token, path.removeprefix("/rest/2.0/face/"), body, form=form)
            assert r.status_code == 200 and b"Traceback" not in r.content, (path, body, r.text[:300])
            _assert_baidu(path, r.json())
            sent += 1
    assert sent > 1000


# -- hand-written requests ------------------------------------------------------------------------------------
def _code(response: requests.Response) -> int:
    assert response.status_code == 200, response.text
    return response.json()["error_code"]


def test_malformed_bodies(server, access_token):
    json_type = {"Content-Type": "application/json"}
    for raw in (b'{"group_id": ', b"\xff\xfe{}", b"[" * 100_000, b"{'group_id': 'g'}", b"NaN garbage"):
        assert _code(post(server, access_token, "v3/faceset/group/add", raw=raw, headers=json_type)) == 222200, raw
    # a JSON array where an object is expected, and the other way round
    assert _code(post(server, access_token, "v3/detect", [{"image": "aGVsbG8=", "image_type": "BASE64"}])) == 222200
    assert _code(post(server, access_token, "v3/faceset/group/add", ["g"])) == 222200
    assert _code(post(server, access_token, "v3/faceset/group/add", "g")) == 222200
    assert _code(post(server, access_token, "v3/match", {"image": "aGVsbG8=", "image_type": "BASE64"})) == 222200
    assert _code(post(server, access_token, "v3/match", [1, 2])) == 222200
    # v2 takes base64 text, not file uploads
    r = _send(lambda: requests.post(f"{server.url}/rest/2.0/face/v2/detect", params={"access_token": access_token},
                                    files={"image": ("a.jpg", b"\xff\xd8\xff")}, timeout=TIMEOUT_S))
    assert _code(r) == 216100


def test_missing_fields(server, access_token):
    assert _code(post(server, access_token, "v2/detect", {"max_face_num": "1"}, form=True)) == 216101
    assert _code(post(server, access_token, "v2/detect", {"image": ""}, form=True)) == 216101
    assert _code(post(server, access_token, "v2/faceset/user/add",
                      {"uid": "u", "user_info": "i", "group_id": "g"}, form=True)) == 216101
    assert _code(post(server, access_token, "v3/detect", {"image_type": "BASE64"})) == 222001
    assert _code(post(server, access_token, "v3/search", {"image": None, "image_type": "BASE64",
                                                          "group_id_list": "g"})) == 222001
    assert _code(post(server, access_token, "v3/match", [{"image_type": "BASE64"}, {"image_type": "BASE64"}])) == 222001


def test_unknown_paths_and_methods(server, access_token):
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        assert _code(post(server, access_token, "v3/detect", {}, method=method)) == UNSUPPORTED, method
        assert _code(post(server, access_token, "v2/detect", {}, method=method, form=True)) == UNSUPPORTED, method
    for path in ("v3/nope", "v2/faceset/user/nope", "v4/detect", "", "v3", "v3/detect/extra"):
        assert _code(post(server, access_token, path, {})) == UNSUPPORTED, path
    r = requests.request("HEAD", f"{server.url}/rest/2.0/face/v3/detect", timeout=TIMEOUT_S)
    assert r.status_code == 200
    r = requests.put(f"{server.url}/oauth/2.0/token", timeout=TIMEOUT_S)
    assert r.status_code == 405 and r.json()["error_code"] == UNSUPPORTED


# -- afterwards: the service survived -------------------------------------------------------------------------
def test_server_survived_the_fuzz(server, record_property):
    print(f"\nfuzz: {STATS.summary()}")
    record_property("fuzz", STATS.summary())
    assert server.proc.poll() is None, "edge serve died:\n" + "\n".join(server.lines[-50:])
    r = requests.get(f"{server.url}/health", timeout=TIMEOUT_S)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    tracebacks = [i for i, line in enumerate(server.lines) if "Traceback" in line]
    assert not tracebacks, "\n".join(server.lines[tracebacks[0] - 2: tracebacks[0] + 40])
