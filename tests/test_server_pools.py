"""Requests that need no inference never wait for it (a real `edge serve`, 1 inference worker).

The inference pool is saturated with large photos (every slot of server.max_pending taken)
and FACE_TOKEN requests are sent meanwhile: they must be answered with their own results,
not error 4, while photos are still queued - order, not milliseconds.
"""
from __future__ import annotations

import base64
import concurrent.futures as cf
import json

import pytest
import requests

from conftest import PEERS, SERVER_APPS
from serving import start_server, wait_until

EXAMPLES = PEERS / "examples"
APP, KEY, SECRET = "1001", *SERVER_APPS["1001"][:2]
PHOTOS = 6  # = server.max_pending: the inference queue is full
BURSTS = 3


def b64(path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("pools"), {APP: SERVER_APPS[APP]},
                          server={"workers": 1, "max_pending": PHOTOS})
    server.token = requests.get(f"{server.url}/oauth/2.0/token", params={
        "grant_type": "client_credentials", "client_id": KEY, "client_secret": SECRET}).json()["access_token"]
    yield server
    server.stop()


def call(srv, route: str, body) -> dict:
    return requests.post(f"{srv.url}/rest/2.0/face/v3/{route}", params={"access_token": srv.token},
                         data=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=120).json()


def test_face_token_requests_overtake_queued_photos(srv):
    added = call(srv, "faceset/user/add", {"image": b64(EXAMPLES / "obama.jpg"), "image_type": "BASE64",
                                           "group_id": "staff", "user_id": "obama"})
    assert added["error_code"] == 0, added
    face = added["result"]["face_token"]
    big = {"image": b64(EXAMPLES / "obama-1080p.jpg"), "image_type": "BASE64", "face_field": "age,quality,landmark"}
    token = {"image": face, "image_type": "FACE_TOKEN"}
    with cf.ThreadPoolExecutor(PHOTOS * BURSTS) as pool:
        pending = lambda: requests.get(f"{srv.url}/health").json()["pending"]  # noqa: E731
        photos = []
        for _ in range(BURSTS):  # on a busy machine one burst may drain before its last photo lands
            photos += [pool.submit(call, srv, "detect", big) for _ in range(PHOTOS)]
            if wait_until(lambda: pending() == PHOTOS, timeout=1.0, step=0.01):
                break
        else:
            pytest.fail("could not fill the inference queue")
        # The inference queue is full; the library pool is not: searches, comparisons and
        # registrations by token are answered (before: error 4, or queued behind the photos)
        found = call(srv, "search", {**token, "group_id_list": "staff"})
        matched = call(srv, "match", [token, token])
        copied = call(srv, "faceset/user/add", {**token, "group_id": "visitors", "user_id": "obama"})
        updated = call(srv, "faceset/user/update", {**token, "group_id": "visitors", "user_id": "obama"})
        refused = call(srv, "multi-search", {**token, "group_id_list": "staff"})  # needs pixels: 222015
        still_queued = sum(not p.done() for p in photos)
        answers = [p.result()["error_code"] for p in photos]
    assert found["error_code"] == 0 and found["result"]["user_list"][0]["user_id"] == "obama", found
    assert matched["error_code"] == 0 and matched["result"]["score"] > 99, matched
    assert copied["error_code"] == 0 and updated["error_code"] == 0, (copied, updated)
    assert refused["error_code"] == 222015, refused
    assert still_queued >= 1  # answered while photos queued ahead of them were still waiting
    assert set(answers) <= {0, 4} and answers.count(0) >= PHOTOS, answers
    health = requests.get(f"{srv.url}/health").json()
    assert health["pending"] == 0 and health["library_pending"] == 0 and health["index_loading"] == []


def test_the_pool_is_chosen_per_request():
    from edge.server.endpoints import ENDPOINTS, PREFIX
    from edge.server.routing import needs_inference
    ep = lambda path: ENDPOINTS[f"{PREFIX}/{path}"]  # noqa: E731
    token, photo = {"image": "f" * 32, "image_type": "FACE_TOKEN"}, {"image": "AAAA", "image_type": "BASE64"}
    for path in ("v3/search", "v3/multi-search", "v3/faceset/user/add", "v3/faceset/user/update", "v3/detect"):
        assert needs_inference(ep(path), photo) and not needs_inference(ep(path), token), path
        assert not needs_inference(ep(path), {**photo, "image_type": "URL"})  # refused before decoding
    assert not needs_inference(ep("v3/match"), [token, token])
    assert needs_inference(ep("v3/match"), [token, photo])
    assert not needs_inference(ep("v3/match"), {"not": "a list"})
    assert needs_inference(ep("v2/identify"), {"image": "AAAA", "group_id": "g"})  # v2 has no token input
    assert not needs_inference(ep("v3/faceset/user/get"), {"user_id": "u", "group_id": "g"})
