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
exception inside a method.  Then, deterministically: odd values (wrong JSON types, odd
text, values that pass) in every documented field of every /rest/ operation, once with a
photo without a face and once with a face, so the methods also run to their end;
hand-written requests for malformed and unreadable bodies, missing fields, unknown paths
and methods, a client leaving mid-body.  Fuzzed again, with Hypothesis alone: raw bodies
(bytes, broken multipart forms, odd Content-Types and -Encodings), forged access_tokens and
bce-auth-v1 signatures.  Last, the process must still be up, /health must answer and its
log must hold no traceback.

The cases are the same on every run: each generation has a fixed seed, and the example
database is off.  MAX_EXAMPLES bounds the fuzz (~2 x 34 x MAX_EXAMPLES requests).

schemathesis' own pytest loader for fixture-provided schemas
(`schemathesis.pytest.from_fixture`) does not run under pytest 9 (it uses the removed
`Node._nodeid`), so the operations are parametrized here and each one is fuzzed with
`APIOperation.as_strategy()` under a plain Hypothesis `@given`.
"""
from __future__ import annotations

import gzip
import json
import re
import socket
import string
import time
import zlib

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from edge.analysis.baidu import FACE_FIELDS, V3_FACE_FIELDS
from edge.server.endpoints import ENDPOINTS
from edge.server.openapi import openapi
from serving import wait_until

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
    data, url = raw if raw is not None else body, f"{server.url}/rest/2.0/face/{path}"
    return _send(lambda: requests.request(method, url, params={"access_token": token}, data=data, headers=headers,
                                          timeout=TIMEOUT_S))


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
# Wrong JSON types and odd text, then values that pass validation, so that with a face in
# the photo the methods run to the end (liveness, quality gates, every face field, paging).
ODD_JSON = [None, True, 0, -1, 2**63, 1.5, float("nan"), float("inf"), "", " ", "\x00", "é" * 200, "x" * 5000, [],
            ["a"], {}, {"a": 1},
            1, 10, 100, "1", "HIGH", "NORMAL", "REPLACE", "UPDATE", "FACE_TOKEN", "URL", "IDCARD", "@ALL",
            ",".join(V3_FACE_FIELDS)]
ODD_TEXT = ["", " ", "0", "-1", "1e400", "nan", "inf", "１２", "1_0", "0x10", "\x00", "é" * 200, "x" * 5000, ",",
            ",,", "a,b,c", "1", "5", "20", "@ALL", "BASE64", "FACE_TOKEN", "URL", "APPEND", "replace",
            "faceliveness", "faceliveness,faceliveness", ",".join(FACE_FIELDS)]
PLAIN = {"image_type": "BASE64", "group_id": "fuzz_g", "group_id_list": "fuzz_g", "user_id": "fuzz_u",
         "uid": "fuzz_u", "src_group_id": "fuzz_g", "dst_group_id": "fuzz_g2", "face_token": "0" * 32,
         "user_info": "info", "id_card_number": "1", "name": "n"}


def _images() -> dict[str, str]:
    """Base64 photos the sweep sends: one that decodes but has no face (cheap, stops after
    detection) and an LFW face (runs the whole method: register, search, compare)."""
    import base64

    import cv2
    import numpy as np

    from conftest import LFW
    blank = cv2.imencode(".png", np.full((64, 64, 3), 128, np.uint8))[1].tobytes()
    face = sorted((LFW / "images" / "Paul_Wolfowitz").glob("*.jpg"))[0].read_bytes()
    return {"no_face": base64.b64encode(blank).decode(), "face": base64.b64encode(face).decode()}


@pytest.mark.parametrize("photo", ["no_face", "face"])
def test_odd_values_in_every_field(server, access_token, photo):
    """Each documented field of each /rest/ operation, alone set to an odd value (a wrong JSON
    type in v3, odd text in v2), the required others plain: never an internal error."""
    image = _images()[photo]
    plain_values = {**PLAIN, "image": image, "images": f"{image},{image}"}
    sent = 0
    for path, item in sorted(openapi()["paths"].items()):
        if not path.startswith("/rest/"):
            continue
        (media, spec), = item["post"]["requestBody"]["content"].items()
        schema, form = spec["schema"], media == "application/x-www-form-urlencoded"
        listed = schema["type"] == "array"
        obj = schema["items"] if listed else schema
        plain = {name: plain_values.get(name, "") for name in obj["required"]}
        cases = [("plain", plain)] + [(f"{name}={value!r:.60}", {**plain, name: value})
                                      for name in obj["properties"] for value in (ODD_TEXT if form else ODD_JSON)]
        if listed:
            cases = ([(what, [body, plain]) for what, body in cases] + [(f"[{value!r:.60}]", [value])
                                                                         for value in ODD_JSON]
                     + [("three images", [plain] * 3)])
        for what, body in cases:
            r = post(server, access_token, path.removeprefix("/rest/2.0/face/"), body, form=form)
            assert r.status_code == 200 and b"Traceback" not in r.content, (path, what, r.text[:300])
            try:
                _assert_baidu(path, r.json())
            except AssertionError as exc:
                raise AssertionError(f"{path} {what}: {exc}") from None
            sent += 1
    assert sent > 1000


# -- hand-written requests ------------------------------------------------------------------------------------
MULTIPART = "multipart/form-data; boundary=xx"
IMAGE_PART = 'Content-Disposition: form-data; name="image"'


def _code(response: requests.Response) -> int:
    assert response.status_code == 200, response.text
    return response.json()["error_code"]


def _part(headers: str, value: bytes = b"abc") -> bytes:
    return b"--xx\r\n" + headers.encode() + b"\r\n\r\n" + value + b"\r\n--xx--\r\n"


def _token_answer(server, body: bytes, headers: dict) -> requests.Response:
    return _send(lambda: requests.post(f"{server.url}/oauth/2.0/token", data=body, headers=headers,
                                       timeout=TIMEOUT_S))


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


def test_unreadable_bodies(server, access_token):
    """Multipart forms aiohttp cannot parse are the caller's bad parameter (216100), and the
    token endpoint ignores them; bodies are taken as sent, whatever their Content-Encoding
    says. Never a 500."""
    broken_forms = [
        ("multipart/form-data", b"image=abc"),                                  # no boundary
        (MULTIPART, b"garbage"),                                                # no starting boundary
        (MULTIPART, b"--xx\r\n" + IMAGE_PART.encode() + b"\r\n\r\nabc\r\n"),   # ends inside a part
        (MULTIPART, _part(IMAGE_PART + "\r\nContent-Type: text/plain; charset=nope")),
        (MULTIPART, _part(IMAGE_PART + "\r\nContent-Transfer-Encoding: nope")),
        (MULTIPART, _part(IMAGE_PART, b"\xff\xfe")),                             # not UTF-8
        (MULTIPART, _part("Content-Disposition: form-data")),                   # no field name
        (MULTIPART, b"--xx\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(200)) + _part(IMAGE_PART)[6:]),
    ]
    for content_type, body in broken_forms:
        r = post(server, access_token, "v2/detect", raw=body, headers={"Content-Type": content_type})
        assert _code(r) == 216100, body[:80]
    key, secret = server.apps[APP_ID][:2]
    grant = f"grant_type=client_credentials&client_id={key}&client_secret={secret}".encode()
    unknown_charset = _part(IMAGE_PART + "\r\nContent-Type: text/plain; charset=x")
    for headers, body in [({"Content-Type": MULTIPART}, b"garbage"), ({"Content-Type": MULTIPART}, unknown_charset),
                          ({"Content-Type": "application/x-www-form-urlencoded; charset=nope"}, grant)]:
        r = _token_answer(server, body, headers)
        assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type", (headers, r.text)
    # no decompression: a body claiming gzip/deflate/br is read as it is, a compressed one is not JSON
    for encoding in ("gzip", "deflate", "br", "zstd", "nope"):
        r = post(server, access_token, "v3/faceset/group/getlist", {}, headers={"Content-Encoding": encoding})
        assert _code(r) == 0, encoding
        for compressed in (gzip.compress(b"{}"), zlib.compress(b"{}"), gzip.compress(b"{}")[:12]):
            r = post(server, access_token, "v3/faceset/group/getlist", raw=compressed,
                     headers={"Content-Encoding": encoding, "Content-Type": "application/json"})
            assert _code(r) == 222200, (encoding, compressed)
    form_type = "application/x-www-form-urlencoded"
    r = _token_answer(server, grant, {"Content-Type": form_type, "Content-Encoding": "gzip"})
    assert r.status_code == 200 and "access_token" in r.json(), r.text


def test_missing_fields(server, access_token):
    assert _code(post(server, access_token, "v2/detect", {"max_face_num": "1"}, form=True)) == 216101
    # an empty image is sent, not missing: "empty image", as the in-process call answers
    assert _code(post(server, access_token, "v2/detect", {"image": ""}, form=True)) == 216200
    assert _code(post(server, access_token, "v2/faceset/user/add",
                      {"uid": "", "user_info": "i", "group_id": "g", "image": "x"}, form=True)) == 216101
    assert _code(post(server, access_token, "v2/faceset/user/add",
                      {"uid": "u", "user_info": "i", "group_id": "g"}, form=True)) == 216101
    assert _code(post(server, access_token, "v3/detect", {"image_type": "BASE64"})) == 222001
    assert _code(post(server, access_token, "v3/search", {"image": None, "image_type": "BASE64",
                                                          "group_id_list": "g"})) == 222001
    assert _code(post(server, access_token, "v3/match", [{"image_type": "BASE64"}] * 2)) == 222001


def test_unknown_paths_and_methods(server, access_token):
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        assert _code(post(server, access_token, "v3/detect", {}, method=method)) == UNSUPPORTED, method
        assert _code(post(server, access_token, "v2/detect", {}, method=method, form=True)) == UNSUPPORTED, method
    for path in ("v3/nope", "v2/faceset/user/nope", "v4/detect", "", "v3", "v3/detect/extra"):
        assert _code(post(server, access_token, path, {})) == UNSUPPORTED, path
    r = _send(lambda: requests.head(f"{server.url}/rest/2.0/face/v3/detect", timeout=TIMEOUT_S))
    assert r.status_code == 200
    r = _send(lambda: requests.put(f"{server.url}/oauth/2.0/token", timeout=TIMEOUT_S))
    assert r.status_code == 405 and r.json()["error_code"] == UNSUPPORTED


def test_client_leaving_mid_body(server, access_token):
    """A client that disconnects before sending its whole body is logged, not a traceback."""
    def left() -> int:
        return sum("client disconnected" in line for line in server.lines)

    host, port = server.url.split("//")[1].rsplit(":", 1)
    head = (f"POST /rest/2.0/face/v3/faceset/group/add?access_token={access_token} HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n").encode()
    before = left()
    for _ in range(3):
        with socket.create_connection((host, int(port)), timeout=TIMEOUT_S) as conn:
            conn.sendall(head + b'{"group_id": ')
    assert wait_until(lambda: left() >= before + 3), server.lines[-5:]


# -- raw bodies and forged credentials, fuzzed --------------------------------------------------------------------
def _multipart(parts: list, cut: int) -> bytes:
    body = b"".join(b"--xx\r\n" + "\r\n".join(headers).encode() + b"\r\n\r\n" + value + b"\r\n"
                    for headers, value in parts) + b"--xx--\r\n"
    return body[:cut] if cut else body


def test_fuzz_raw_bodies(server, access_token):
    """Arbitrary bytes and multipart forms of assorted part headers (cut short at random),
    under assorted Content-Types and Content-Encodings (gzip bodies compressed or not), to
    v2, v3 and token paths: Baidu's JSON every time, never an internal error."""
    part_header = st.sampled_from([
        IMAGE_PART, 'Content-Disposition: form-data; name="group_id"', 'Content-Disposition: form-data; name="x"; '
        'filename="a.jpg"', "Content-Disposition: form-data", 'Content-Disposition: attachment; name="image"',
        "Content-Type: text/plain; charset=utf-8", "Content-Type: text/plain; charset=nope",
        "Content-Type: application/octet-stream", "Content-Type: multipart/mixed; boundary=yy",
        "Content-Transfer-Encoding: base64", "Content-Transfer-Encoding: quoted-printable",
        "Content-Transfer-Encoding: nope", "Content-Encoding: gzip", "Content-Length: 1", "X: y"])
    value = st.binary(max_size=24) | st.sampled_from([b"aGVsbG8=", b"g1", b"=\xff", b"--xx"])
    multipart = st.builds(_multipart, st.lists(st.tuples(st.lists(part_header, max_size=4), value), max_size=3),
                          st.integers(0, 300))
    body = st.binary(max_size=120) | multipart | st.sampled_from([b"{}", b"[{}]", b"image=abc&group_id=g&uid=u"])
    content_type = st.sampled_from([None, "application/json", "application/x-www-form-urlencoded", MULTIPART,
                                    "multipart/form-data", "multipart/form-data; boundary=", "text/plain",
                                    "application/json; charset=nope", "multipart/mixed; boundary=xx"])
    encoding = st.sampled_from([None, "identity", "gzip", "deflate"])
    paths = st.sampled_from(["v2/detect", "v2/faceset/user/get", "v3/faceset/group/add", "v3/match", "token"])

    @seed(SEED)
    @settings(max_examples=120, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(path=paths, body=body, content_type=content_type, encoding=encoding, compress=st.booleans())
    def raw(path, body, content_type, encoding, compress):
        headers = {k: v for k, v in (("Content-Type", content_type), ("Content-Encoding", encoding)) if v}
        if encoding in ("gzip", "deflate") and compress:
            body = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
        sent = f"{path} {headers} {body[:300]!r}"
        if path == "token":
            r = _token_answer(server, body, headers)
            assert r.status_code in (200, 400, 401), (sent, r.text[:300])
            assert "error" in r.json() or "access_token" in r.json(), (sent, r.text[:300])
            return
        r = post(server, access_token, path, raw=body, headers=headers)
        assert r.status_code == 200 and b"Traceback" not in r.content, (sent, r.text[:300])
        try:
            _assert_baidu(f"/rest/2.0/face/{path}", r.json())
        except AssertionError as exc:
            raise AssertionError(f"{sent}: {exc}") from None

    raw()


_ID = string.ascii_letters + string.digits + "-_.:;"


def test_forged_credentials(server):
    """access_tokens of Baidu's shape with random parts, and bce-auth-v1 signatures with
    random parts (valid key and a current timestamp included, so the signature itself is
    compared): answered 100/110/111 and 14, never anything else."""
    url = f"{server.url}/rest/2.0/face/v3/faceset/group/getlist"
    digits = st.integers(0, 10**12 - 1).map(str)
    tokens = st.one_of(
        st.builds("24.{}.{}.{}.{}-{}".format, st.from_regex(r"\A[0-9a-f]{32}\Z"), digits, digits, digits,
                  st.sampled_from([APP_ID, "2002", "9", "x" * 64])),
        st.text(string.printable, max_size=120))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    stamps = st.sampled_from([now, "2024-02-30T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
    signed = st.lists(st.sampled_from(["host", "content-type", "content-length", "x-bce-date", "nope", ""]))
    signatures = st.builds("bce-auth-v1/{}/{}/{}/{}/{}".format,
                           st.sampled_from([server.apps[APP_ID][0], "AK"]) | st.text(_ID, min_size=1, max_size=20),
                           stamps | st.text(_ID, min_size=1, max_size=25), st.integers(0, 999_999).map(str),
                           signed.map(";".join), st.from_regex(r"\A[0-9a-f]{64}\Z"))

    @seed(SEED)
    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(token=tokens, signature=signatures)
    def forged(token, signature):
        r = _send(lambda: requests.post(url, params={"access_token": token}, json={}, timeout=TIMEOUT_S))
        assert r.status_code == 200 and r.json()["error_code"] in (100, 110, 111), (token, r.text)
        r = _send(lambda: requests.post(url, headers={"Authorization": signature}, json={}, timeout=TIMEOUT_S))
        assert r.status_code == 200 and r.json()["error_code"] == 14, (signature, r.text)

    forged()


# -- afterwards: the service survived -------------------------------------------------------------------------
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


def _log_records(lines: list[str]) -> list[str]:
    """The log as records: a timestamped line and the lines (a traceback) that follow it."""
    records: list[list[str]] = []
    for line in lines:
        if LOG_RECORD.match(line) or not records:
            records.append([line])
        else:
            records[-1].append(line)
    return ["\n".join(r) for r in records]


def test_server_survived_the_fuzz(server, record_property):
    print(f"\nfuzz: {STATS.summary()}")
    record_property("fuzz", STATS.summary())
    assert server.proc.poll() is None, "edge serve died:\n" + "\n".join(server.lines[-50:])
    r = requests.get(f"{server.url}/health", timeout=TIMEOUT_S)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    tracebacks = [record for record in _log_records(server.lines) if "Traceback" in record]
    assert not tracebacks, "\n\n".join(tracebacks[:3])
