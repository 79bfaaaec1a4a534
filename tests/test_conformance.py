"""Conformance of `edge serve` to Baidu's documents, driven by Baidu's real SDKs.

Every row of tests/conformance_table.py is one call of baidu-aip 2.2.2.0 (v2) or
4.16.13 (v3) against one real server process, checked against the document line the
row cites: the fields that must be present, their JSON types and ranges, or the error
code. A divergence shows up as one failing row, named by its id.
"""
from __future__ import annotations

import base64
import functools
import json
import re
import socket

import cv2
import numpy as np
import pytest
import requests

import conformance_table as T
from conftest import DATA, LFW, REPO
from edge.server.endpoints import ENDPOINTS
from serving import sdk_client, start_server

APPS = {"5002": ("AK5002conf", "SK5002-conformance", 1000), "5003": ("AK5003conf", "SK5003-conformance", 1000)}
APP_OF = {"v2": "5002", "v3": "5003"}
SDK_OF = {"v2": "2.2.2.0", "v3": "4.16.13"}
DOCS = {"v2": DATA.parent / "docs" / "baidu-face-python-sdk-v2.txt",
        "v3": DATA.parent / "docs" / "baidu-face-v3-search.txt"}


# -- request images, made from the real photos at test time ---------------------------------
@functools.lru_cache(maxsize=None)
def image_bytes(img: T.Img) -> bytes:
    if "/" in img.name:
        raw = (DATA / img.name).read_bytes()
    else:
        raw = sorted((LFW / "images" / img.name).glob("*.jpg"))[img.index - 1].read_bytes()
    if not (img.rotate or img.blur or img.size or img.tile):
        return _grow(raw, img.grow_mb)
    arr = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if img.rotate:
        h, w = arr.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), -img.rotate, 1.0)   # OpenCV: positive = anticlockwise
        cos, sin = abs(m[0, 0]), abs(m[0, 1])
        nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
        m[0, 2] += nw / 2 - w / 2
        m[1, 2] += nh / 2 - h / 2
        arr = cv2.warpAffine(arr, m, (nw, nh), borderMode=cv2.BORDER_REPLICATE)
    if img.tile:
        arr = np.vstack([np.hstack([arr] * img.tile)] * img.tile)
    if img.blur:
        arr = cv2.GaussianBlur(arr, (0, 0), img.blur)
    if img.size:
        arr = cv2.resize(arr, img.size)
    return _grow(cv2.imencode(".jpg", arr, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes(), img.grow_mb)


def _grow(jpeg: bytes, mb: float) -> bytes:
    """The same JPEG with comment segments (skipped by decoders) up to `mb` MB of base64."""
    target = int(mb * 1024 * 1024 * 3 / 4)
    segments, rng = [], np.random.default_rng(0)
    size = len(jpeg)
    while size < target:
        chunk = rng.integers(0, 255, min(65000, target - size + 4), dtype=np.uint8).tobytes()
        segments.append(b"\xff\xfe" + (len(chunk) + 2).to_bytes(2, "big") + chunk)
        size += len(segments[-1])
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


FIXED = {T.GARBAGE: b"this is not a picture at all", T.EMPTY: b"", T.GIF: b"GIF89a\x10\x00\x10\x00" + b"\0" * 64}


def resolve(value, sdk: str, ctx: dict):
    """A table argument as the SDK takes it: v2 raw image bytes, v3 base64 text."""
    if isinstance(value, T.Img) or (isinstance(value, str) and value in FIXED):
        data = FIXED[value] if isinstance(value, str) else image_bytes(value)
        return data if sdk == "v2" else base64.b64encode(data).decode()
    if isinstance(value, T.SeedToken):
        return ctx["seed_token"]
    if isinstance(value, T.SetupToken):
        return ctx["setup_token"]
    if isinstance(value, (list, tuple)):
        return type(value)(resolve(v, sdk, ctx) for v in value)
    if isinstance(value, dict):
        return {k: resolve(v, sdk, ctx) for k, v in value.items()}
    return value


# -- the server and the two SDKs --------------------------------------------------------------
@pytest.fixture(scope="module")
def conf(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("conformance"), APPS)
    clients = {sdk: sdk_client(SDK_OF[sdk], srv.url, APP_OF[sdk], *APPS[APP_OF[sdk]][:2]) for sdk in ("v2", "v3")}
    ctx = {"server": srv, "clients": clients, **seed(clients)}
    yield ctx
    srv.stop()


def seed(clients) -> dict:
    """The library state the table's rows assume (conformance_table.py, above ROWS)."""
    v2, v3 = clients["v2"], clients["v3"]
    for answer in (v2.addUser("paul", "Paul", "c2_staff,c2_all", image_bytes(T.Img(T.A, 1))),
                   v2.addUser("jlo", "Jen", "c2_staff", image_bytes(T.Img(T.B, 1)))):
        assert "error_code" not in answer, answer
    b64 = lambda img: base64.b64encode(image_bytes(img)).decode()  # noqa: E731
    for answer in (v3.groupAdd("c3_staff"), v3.groupAdd("c3_empty"),
                   v3.addUser(b64(T.Img(T.A, 1)), "BASE64", "c3_staff", "paul", {"user_info": "Paul"}),
                   v3.addUser(b64(T.Img(T.B, 1)), "BASE64", "c3_staff", "jlo", {"user_info": "Jen"})):
        assert answer["error_code"] == 0, answer
    detected = v3.detect(b64(T.Img(T.A, 2)), "BASE64")
    return {"seed_token": detected["result"]["face_list"][0]["face_token"]}


def call(ctx: dict, row: T.Row) -> dict:
    if row.sdk == "http":
        return raw_http(ctx, row.args[0])
    client = ctx["clients"][row.sdk]
    for method, args, options in row.setup:
        answer = getattr(client, method)(*resolve(args, row.sdk, ctx), *([options] if options else []))
        assert answer.get("error_code", 0) == 0, f"setup {method}: {answer}"
        ctx["setup_token"] = (answer.get("result") or {}).get("face_token")
    args = resolve(row.args, row.sdk, ctx)
    options = resolve(row.options, row.sdk, ctx)
    return getattr(client, row.method)(*args, *([options] if options is not None else []))


def raw_http(ctx: dict, template: bytes) -> dict:
    """Send bytes as they are; the answer must be a JSON body whatever the bytes were."""
    srv = ctx["server"]
    key, secret = APPS["5003"][:2]
    token = requests.get(f"{srv.url}/oauth/2.0/token", params={
        "grant_type": "client_credentials", "client_id": key, "client_secret": secret}).json()["access_token"]
    host, port = srv.url.split("//", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(template.replace(b"{token}", token.encode()))
        chunks = []
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
                if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                    break
        except socket.timeout:
            pass
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    try:
        return json.loads(body)
    except ValueError:
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        return {"not JSON": f"{status} {body[:200].decode(errors='replace')}"}


def _complete(response: bytes) -> bool:
    head, _, body = response.partition(b"\r\n\r\n")
    m = re.search(rb"content-length:\s*(\d+)", head, re.I)
    return bool(m) and len(body) >= int(m.group(1))


# -- checking an answer against its row -------------------------------------------------------
def values(obj, path: str):
    """(concrete path, value) for a table path; "a[]" walks every element of list a."""
    out = [("", obj)]
    for part in path.split("."):
        key, each = (part[:-2], True) if part.endswith("[]") else (part, False)
        nxt = []
        for where, node in out:
            here = f"{where}.{key}" if where else key
            if key:
                if not isinstance(node, dict) or key not in node:
                    raise LookupError(f"{here} missing")
                node = node[key]
            if each:
                if not isinstance(node, list) or not node:
                    raise LookupError(f"{here} is not a non-empty list: {node!r:.80}")
                nxt += [(f"{here}[{i}]", v) for i, v in enumerate(node)]
            else:
                nxt.append((here, node))
        out = nxt
    return out


TYPES = {T.INT: lambda v: isinstance(v, int) and not isinstance(v, bool),
         T.NUM: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
         T.STR: lambda v: isinstance(v, str), T.LIST: lambda v: isinstance(v, list),
         T.DICT: lambda v: isinstance(v, dict), T.NULL: lambda v: v is None,
         T.NUMSTR: lambda v: isinstance(v, str) and re.fullmatch(r"-?\d+(\.\d+)?(e-?\d+)?", v) is not None}


@functools.lru_cache(maxsize=None)
def doc_messages(doc: str) -> dict[int, set[str]]:
    """code -> error_msg as the document's error tables spell it (the text before the
    Chinese description; 222013 has two). The v3 table's stray bracket in
    "param[face_sort_type] format error]" is dropped (docs/api.md, error-msg)."""
    out: dict[int, set[str]] = {}
    for line in DOCS[doc].read_text(encoding="utf-8").splitlines():
        m = re.match(r"^(\d{1,6}) ([ -~]+?) [^ -~]", line)
        if m and (len(m.group(1)) < 4 or m.group(1).startswith("2")):
            msg = m.group(2).strip()
            out.setdefault(int(m.group(1)), set()).add(msg[:-1] if msg.endswith("error]") else msg)
    return out


# An HTTP message that cannot be parsed has no trustworthy path, so no API version: it is
# answered in the gateway's envelope {error_code, error_msg, log_id} (docs/api.md, malformed-http).
GATEWAY_MALFORMED = 100


def problems(answer: dict, row: T.Row) -> list[str]:
    out = []
    version = row.method.split("/")[0] if row.sdk == "http" else row.sdk
    if not isinstance(answer.get("log_id"), int):
        out.append(f"log_id is not an integer: {answer.get('log_id')!r}")
    if version == "v3" and not (row.sdk == "http" and answer.get("error_code") == GATEWAY_MALFORMED):
        for key, kind in (("error_code", int), ("error_msg", str), ("timestamp", int), ("cached", int)):
            if not isinstance(answer.get(key), kind):
                out.append(f"v3 envelope: {key} is {answer.get(key)!r}")
        if "result" not in answer:
            out.append("v3 envelope: no result")
    if row.error is not None:
        codes = row.error if isinstance(row.error, tuple) else (row.error,)
        if answer.get("error_code") not in codes or not isinstance(answer.get("error_msg"), str):
            out.append(f"expected error {' or '.join(map(str, codes))}, got {_short(answer)}")
        documented = doc_messages(version).get(answer.get("error_code"))
        if documented and answer.get("error_msg") not in documented:
            out.append(f"error_msg {answer.get('error_msg')!r} is not the document's {sorted(documented)}")
        return out
    if answer.get("error_code", 0) != 0:
        return out + [f"expected success, got {_short(answer)}"]
    if row.only is not None and set(answer) != set(row.only):
        out.append(f"keys {sorted(answer)} != {sorted(row.only)}")
    for path, spec in row.fields.items():
        try:
            found = values(answer, path)
        except LookupError as exc:
            out.append(str(exc))
            continue
        bad = [f"{where}: {p}" for where, value in found for p in _field_problems(value, spec)]
        out += bad[:2] + ([f"... and {len(bad) - 2} more under {path}"] if len(bad) > 2 else [])
    return out


def _field_problems(value, spec: T.F) -> list[str]:
    if not TYPES[spec.type](value):
        return [f"{value!r:.60} is not {spec.type}"]
    out = []
    number = float(value) if spec.type in (T.INT, T.NUM, T.NUMSTR) else None
    below = number is not None and spec.lo is not None and number < spec.lo
    if below or (number is not None and spec.hi is not None and number > spec.hi):
        out.append(f"{value!r} outside [{spec.lo}, {spec.hi}]")
    if spec.one_of and value not in spec.one_of:
        out.append(f"{value!r} not one of {spec.one_of}")
    if spec.length is not None and len(value) != spec.length:
        out.append(f"length {len(value)} != {spec.length}")
    return out


def _short(answer: dict) -> str:
    text = json.dumps({k: v for k, v in answer.items() if k not in ("log_id", "timestamp", "cached")},
                      ensure_ascii=False)
    return text if len(text) < 300 else text[:300] + "..."


def _param(row: T.Row):
    marks = [pytest.mark.xfail(strict=True, reason=row.xfail)] if row.xfail else []
    return pytest.param(row, id=row.id, marks=marks)


@pytest.mark.parametrize("row", [_param(r) for r in T.ROWS])
def test_conformance(conf, row):
    answer = call(conf, row)
    found = problems(answer, row)
    assert not found, f"{row.id} ({row.doc}{'; choice ' + row.choice if row.choice else ''}):\n  " + "\n  ".join(found)


# -- the table itself -----------------------------------------------------------------------------------
def test_table_rows_cite_the_documents():
    texts = {k: p.read_text(encoding="utf-8") for k, p in DOCS.items()}
    seen, bad = set(), []
    for row in T.ROWS:
        assert row.id not in seen, f"duplicate row id {row.id}"
        seen.add(row.id)
        doc, _, snippet = row.doc.partition(":")
        if doc in texts and snippet not in texts[doc]:
            bad.append(f"{row.id}: {row.doc!r} is not in {DOCS[doc].name}")
        elif doc not in texts and doc != "v3ref":
            bad.append(f"{row.id}: unknown document {doc!r}")
    assert not bad, "\n".join(bad)


def test_table_choices_are_in_docs_api():
    text = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    table = text.split("## Choices", 1)[1]
    ids = set(re.findall(r"^\| `([a-z0-9-]+)` \|", table, re.M))
    missing = sorted({r.choice for r in T.ROWS if r.choice} - ids)
    assert not missing, f"choices cited by rows but absent from docs/api.md's Choices table: {missing}"


def test_table_covers_every_method_and_option():
    """Every REST method edge serves has rows, and every option its endpoint documents is
    sent by at least one row (v3 match/faceverify: inside the image objects)."""
    missing = []
    for e in ENDPOINTS.values():
        rows = [r for r in T.ROWS if (r.sdk, r.method) == (e.version, e.method)]
        sent = set()
        for r in rows:
            sent |= set(r.options or {})
            for arg in r.args:
                if isinstance(arg, list):
                    sent |= {k for item in arg if isinstance(item, dict) for k in item}
        missing += [f"{e.version} {e.method}: no row"] if not rows else \
            [f"{e.version} {e.method}: option {o} never sent" for o in e.options if o not in sent]
    assert not missing, "\n".join(missing)
