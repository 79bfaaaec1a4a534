"""Each method's own documented image limits, and v3's own image codes: in-process and
through Baidu's real SDKs against a real `edge serve` on its default body caps."""
from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest
import requests

from conftest import SERVER_APPS
from edge.aip import AipFace as V2Face
from edge.aip.v3 import AipFace as V3Face
from edge.bench import memory_mb
from image_bombs import jpeg_claiming, png_claiming
from serving import sdk_client, start_server
from test_aip_v2 import A, photo

MB = 1024 * 1024
APP, KEY, SECRET = "1001", *SERVER_APPS["1001"][:2]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def padded(jpeg: bytes, b64_chars: int) -> bytes:
    """The photo with zeros after its end marker (decoders ignore them): base64 this long."""
    return jpeg + bytes(b64_chars // 4 * 3 - len(jpeg))


def code(answer: dict) -> int:
    return answer.get("error_code", 0)


GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
TINY_PNG = cv2.imencode(".png", np.zeros((10, 10, 3), np.uint8))[1].tobytes()


# -- in-process -------------------------------------------------------------------------------
def test_v2_limits_follow_each_methods_doc(edge_config):
    client = V2Face("limits_v2", "k", "s", config=edge_config)
    big = padded(photo(A, 2), int(5.4 * MB))                 # over 4 MB, under addUser's 10 MB
    assert code(client.addUser("paul", "Paul", "staff", big)) == 0  # was 216202
    assert code(client.updateUser("paul", "Paul", "staff", big)) == 216202  # its row: 4 MB
    assert code(client.identifyUser("staff", big)) == 216202
    assert code(client.addUser("paul", "Paul", "staff", padded(photo(A, 2), 10 * MB + 4))) == 216202
    # match: "单次请求总共最大20M" - 14 MB in two images is fine, 21 MB in three is not.
    seven = [padded(photo(A, 2), 7 * MB), padded(photo(A, 3), 7 * MB)]
    answer = client.match(seven)
    assert answer["result_num"] == 1 and answer["result"][0]["score"] > 80
    assert code(client.match(seven + [seven[0]])) == 216103


def test_v2_keeps_v2_image_codes(edge_config):
    client = V2Face("limits_v2", "k", "s", config=edge_config)
    assert code(client.identifyUser("staff", GIF)) == 216201
    assert code(client.identifyUser("staff", "not base64 !!")) == 216200
    assert code(client.identifyUser("staff", TINY_PNG)) == 216202
    assert code(client.identifyUser("staff", jpeg_claiming())) == 216202


def test_v3_answers_v3_image_codes(edge_config):
    client = V3Face("limits_v3", "k", "s", config=edge_config)
    cases = {                                            # were 216201, 216200, 216202, 216202, 216200
        b64(GIF): 222203,                                 # not a JPEG/PNG/BMP: image check fail
        "not base64 !!": 222013,                          # param[image] format error
        b64(padded(photo(A, 2), 2 * MB + 4)): 222304,     # over 2 MB: image size is too large
        b64(TINY_PNG): 222203,                            # under 15 px
        b64(photo(A, 2)[:300]): 222203,                   # truncated
        b64(jpeg_claiming()): 222304,                     # claims 20000 x 20000
    }
    for image, expected in cases.items():
        assert code(client.detect(image, "BASE64")) == expected
        assert code(client.search(image, "BASE64", "staff")) == expected
        assert code(client.match([{"image": image, "image_type": "BASE64"}] * 2)) == expected
    item = {"image": b64(photo(A, 2)), "image_type": "BASE64"}
    assert code(client.faceverify([item] * 11)) == 222208
    assert code(client.detect(b64(padded(photo(A, 2), 2 * MB)), "BASE64")) == 0


# -- through the real SDKs -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """`edge serve` with the default body caps (server.max_body_mb 0: documented limits)."""
    srv = start_server(tmp_path_factory.mktemp("limits"), {APP: SERVER_APPS[APP]})
    yield srv
    srv.stop()


def test_sdks_get_each_endpoints_documented_cap(wide):
    v2 = sdk_client("2.2.2.0", wide.url, APP, KEY, SECRET)
    v3 = sdk_client("4.16.13", wide.url, APP, KEY, SECRET)
    seven = [padded(photo(A, 2), 7 * MB), padded(photo(A, 3), 7 * MB)]
    answer = v2.match(seven)                            # a 15 MB body: read (was 216103)
    assert answer["result_num"] == 1 and answer["result"][0]["score"] > 80, answer
    assert "error_code" not in v2.addUser("paul", "Paul", "staff", padded(photo(A, 2), int(5.4 * MB)))
    twenty = padded(photo(A, 2), 20 * MB)
    assert v2.detect(twenty)["error_code"] == 216103     # refused from its Content-Length
    assert v2.addUser("paul", "Paul", "staff", twenty)["error_code"] == 216103
    assert v3.detect(b64(twenty), "BASE64")["error_code"] == 222304
    assert v3.search(b64(GIF), "BASE64", "staff")["error_code"] == 222203
    assert v3.search("not base64 !!", "BASE64", "staff")["error_code"] == 222013
    tok = requests.get(f"{wide.url}/oauth/2.0/token", params={
        "grant_type": "client_credentials", "client_id": KEY, "client_secret": SECRET}).json()["access_token"]
    r = requests.post(f"{wide.url}/rest/2.0/face/v3/faceset/user/get", params={"access_token": tok},
                      json={"user_id": "paul", "group_id": "staff", "pad": "x" * (2 * MB)})
    assert r.json()["error_code"] == 222200             # a library call's 1 MB cap, v3's code


def test_bombs_through_the_sdks_cost_the_server_nothing(wide):
    v2 = sdk_client("2.2.2.0", wide.url, APP, KEY, SECRET)
    v3 = sdk_client("4.16.13", wide.url, APP, KEY, SECRET)
    before = memory_mb(wide.proc.pid)["peak"]
    for bomb in (jpeg_claiming(), jpeg_claiming(0xC2, stray=b"\xff\x00junk", progressive=True), png_claiming()):
        assert v2.detect(bomb)["error_code"] == 216202
        assert v2.identifyUser("staff", bomb)["error_code"] == 216202
        assert v3.detect(b64(bomb), "BASE64")["error_code"] == 222304
        assert v3.search(b64(bomb), "BASE64", "staff")["error_code"] == 222304
    assert memory_mb(wide.proc.pid)["peak"] - before < 400


def test_a_chunked_body_is_held_to_its_endpoints_cap(wide):
    tok = requests.get(f"{wide.url}/oauth/2.0/token", params={
        "grant_type": "client_credentials", "client_id": KEY, "client_secret": SECRET}).json()["access_token"]
    image = b64(padded(photo(A, 2), 7 * MB)).encode()

    def chunks(prefix: bytes):  # a generator body: sent chunked, without Content-Length
        yield prefix
        for i in range(0, len(image), MB):
            yield image[i:i + MB].replace(b"+", b"%2B").replace(b"/", b"%2F")

    url = f"{wide.url}/rest/2.0/face/v2/"
    r = requests.post(url + "detect", params={"access_token": tok}, data=chunks(b"image="),
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.json()["error_code"] == 216103                  # 7 MB over detect's 5.4 MB cap
    r = requests.post(url + "faceset/user/add", params={"access_token": tok},
                      data=chunks(b"uid=ann&user_info=Ann&group_id=staff&image="),
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.json() == {"log_id": r.json()["log_id"]}        # within addUser's 12 MB: registered


def test_operator_bound_lowers_caps_and_never_raises_them():
    from edge.server.endpoints import ENDPOINTS, PREFIX
    from edge.server.limits import body_cap, largest_body
    detect, match = ENDPOINTS[PREFIX + "/v2/detect"], ENDPOINTS[PREFIX + "/v2/match"]
    add, get = ENDPOINTS[PREFIX + "/v2/faceset/user/add"], ENDPOINTS[PREFIX + "/v3/faceset/user/get"]
    assert body_cap(detect) == body_cap(detect, 100) == MB + int(4 * MB * 1.1)
    assert body_cap(add) == MB + int(10 * MB * 1.1) and body_cap(get) == MB
    assert body_cap(match) == MB + int(20 * MB * 1.1) == largest_body()
    assert body_cap(match, 6) == body_cap(add, 6) == 6 * MB and largest_body(6) == 6 * MB
    assert body_cap(detect, 6) == body_cap(detect)
