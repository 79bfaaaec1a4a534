"""Bad input from a hub (docs/sync.md, "What a terminal refuses"): an impostor hub - a
real HTTP server in the test, serving what a broken proxy or a forged hub would - and
the terminal's real follower and library. Every bad page is refused whole: the
library and the cursor stay as they were, the error is reported, and a good page
afterwards is applied as usual.
"""
from __future__ import annotations

import base64
import dataclasses
import http.server
import json
import threading
import time
import urllib.parse

import numpy as np
import pytest

from edge.aip.runtime import Runtime
from edge.config import load_config
from edge.library.library import FaceLibrary
from edge.sync.config import SyncConfig
from edge.sync.follower import Follower
from edge.sync.protocol import SIGNATURE_HEADER, sign_page
from sync_support import unit

SECRET = "FS1001-door-secret"
UUID = "0123456789abcdef0123456789abcdef"
MODEL = Runtime(load_config()).model_id


def b64vec(vec) -> str:
    return base64.b64encode(np.asarray(vec, np.float32).tobytes()).decode()


def change(seq, op, group="staff", user=None, token=None, data=None) -> dict:
    return {"seq": seq, "ts": 1.7e9 + seq, "op": op, "group_id": group, "user_id": user, "face_token": token,
            "data": data}


def face(seq, user, vec=None, model=MODEL, group="staff") -> dict:
    vec = unit(user) if vec is None else vec
    return change(seq, "face.add", group, user, f"{user}{seq:04d}",
                  {"embedding": b64vec(vec), "model": model, "quality": None})


def page(since, changes, **over) -> dict:
    nxt = changes[-1]["seq"] if changes else since
    return {"protocol": 1, "app_id": "1001", "library_uuid": UUID, "since": since, "next": nxt, "head": nxt,
            "count": len(changes), "skipped": 0, "changes": changes, **over}


FIRST = page(0, [change(1, "group.add"), change(2, "user.add", user="ann", data={"user_info": "Ann"}),
                 face(3, "ann")])
GOOD = page(3, [change(4, "user.add", user="bob", data={"user_info": "Bob"}), face(5, "bob")])


class Impostor(http.server.ThreadingHTTPServer):
    """Answers every feed request with self.answer(query) -> (status, body, signing secret or None)."""
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = lambda q: (200, json.dumps(FIRST).encode(), SECRET)
        self.requests = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.requests += 1
        url = urllib.parse.urlsplit(self.path)
        query = {**dict(urllib.parse.parse_qsl(url.query)), "_path": url.path}
        status, body, secret = self.server.answer(query)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if secret:
            self.send_header(SIGNATURE_HEADER, sign_page(secret, query.get("nonce", ""), body))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def signed(doc, secret=SECRET):
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return lambda q: (200, body, secret)


@pytest.fixture
def terminal(tmp_path):
    hub = Impostor()
    cfg = dataclasses.replace(load_config(), data_dir=str(tmp_path), sync=SyncConfig(
        hub_url=hub.url, app_id="1001", api_key="FK1001door", secret_key=SECRET, wait_s=0, backoff_min_s=0.2,
        backoff_max_s=0.8, status_interval_s=0.2))
    lib = FaceLibrary(tmp_path / "apps" / "1001")
    follower = Follower(cfg, lambda: lib, MODEL)
    assert follower.step() == "applied"   # the first, good page: ann
    yield hub, follower, lib
    follower.stop()
    hub.shutdown()
    lib.close()


def _nan():
    v = unit("bob").copy()
    v[7] = np.nan
    return v


TRUNCATED = json.dumps(GOOD).encode()[:700]
BAD = {
    "signature of another secret": (signed(GOOD, "not-the-secret"), "signature"),
    "no signature": (lambda q: (200, json.dumps(GOOD).encode(), None), "signature"),
    "truncated, whole page's signature": (lambda q: (200, TRUNCATED, None), "signature"),
    "truncated, signed as cut": (signed(TRUNCATED), "not JSON"),
    "wrong dimension": (signed(page(3, [face(4, "bob", unit("bob", 127))])), "embedding of 127 values"),
    "NaN in an embedding": (signed(page(3, [face(4, "bob", _nan())])), "NaN"),
    "not unit length": (signed(page(3, [face(4, "bob", 3 * unit("bob"))])), "unit length"),
    "unknown op": (signed(page(3, [change(4, "user.merge", user="bob")])), "unknown op"),
    "sequence gap": (signed(page(3, [change(5, "group.add", "night")])), "sequence gap"),
    "gap inside the page": (signed(page(3, [change(4, "group.add", "a"), change(6, "group.add", "b")])),
                            "sequence gap"),
    "seq going back": (signed(page(3, [change(5, "group.add", "a"), change(4, "group.add", "b")], next=5,
                                 head=5)),
                       "out of sequence"),
    "count that lies": (signed(page(3, [change(4, "group.add", "a")], count=2)), "announces 2"),
    "not our cursor (replay)": (signed(FIRST), "cursor is 3"),
    "another app's page": (signed({**GOOD, "app_id": "2002"}), "app '2002'"),
    "the hub's library replaced, no snapshot": (signed({**GOOD, "library_uuid": "f" * 32}), "snapshot page is not"),
    "good change then a bad one": (signed(page(3, [change(4, "user.add", user="bob", data={"user_info": "B"}),
                                                   face(5, "bob", unit("bob", 64))])), "embedding of 64"),
    "user_info too long": (signed(page(3, [change(4, "user.add", user="bob", data={"user_info": "x" * 300})])),
                           "user_info"),
    "bad user id": (signed(page(3, [change(4, "user.add", user="../etc", data={"user_info": ""})])), "valid id"),
    "extra field": (signed({**GOOD, "extra": 1}), "feed's fields"),
    "wrong credentials (hub's answer)": (lambda q: (200, b'{"error_code":14,"error_msg":"IAM Certification failed"}',
                                                    None), "error_code 14"),
    "proxy error": (lambda q: (502, b"<html>bad gateway</html>", None), "HTTP 502"),
    "page over the size bound": (signed(b" " * (5 * 1024 * 1024)), "page over"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_page_is_refused_whole(terminal, case):
    hub, follower, lib = terminal
    before, state = lib.store.dump(), lib.store.replica_state()
    hub.answer, reason = BAD[case]
    assert follower.step() == "failed"
    st = follower.status()
    assert reason in st["last_error"], st["last_error"]
    assert st["state"] == "refused" and st["cursor"] == 3
    assert lib.store.dump() == before and lib.store.replica_state() == state   # nothing touched
    assert lib.search(unit("bob"), None, 1)[0].user_id == "ann"                # bob never got in
    hub.answer = signed(GOOD)   # a good page afterwards is applied as usual
    assert follower.step() == "applied"
    assert lib.search(unit("bob"), None, 1)[0].user_id == "bob"


def test_other_groups_data_is_refused_by_a_staff_follower(tmp_path):
    hub = Impostor()
    cfg = dataclasses.replace(load_config(), data_dir=str(tmp_path), sync=SyncConfig(
        hub_url=hub.url, app_id="1001", api_key="FK1001door", secret_key=SECRET, groups="staff", wait_s=0))
    lib = FaceLibrary(tmp_path / "apps" / "1001")
    follower = Follower(cfg, lambda: lib, MODEL)
    try:
        hub.answer = signed(page(0, [change(1, "group.add"), change(2, "group.add", "vip"),
                                     face(3, "boss", group="vip")]))
        assert follower.step() == "failed" and "not followed here" in follower.status()["last_error"]
        assert lib.store.dump() == {"groups": [], "members": [], "faces": []}
        # a filtered page: changes of other groups are skipped, and counted as such
        hub.answer = signed(page(0, [change(1, "group.add"), face(3, "ann")], skipped=1))
        assert follower.step() == "applied" and lib.store.replica_state()["seq"] == 3
    finally:
        hub.shutdown()
        lib.close()


def test_faces_of_another_model_are_counted_not_searched(terminal):
    hub, follower, lib = terminal
    hub.answer = signed(page(3, [change(4, "user.add", user="old", data={"user_info": ""}),
                                 face(5, "old", model="arcface@0000"),
                                 face(6, "old", unit("old", 512), model="arcface@0000")]))  # another width too
    assert follower.step() == "applied"
    st = follower.status()
    assert st["model_mismatch_faces"] == 2 and st["model_mismatch"] == {"arcface@0000": 2}
    assert lib.search(unit("old"), None, 1)[0].user_id == "ann"   # not searched
    hub.answer = signed(page(6, [change(7, "face.delete", user="old", token="old0005")]))
    assert follower.step() == "applied" and follower.status()["model_mismatch_faces"] == 1


def test_refused_pages_are_retried_with_back_off_then_followed(terminal):
    hub, follower, lib = terminal
    hub.answer = signed(page(3, [change(5, "group.add", "night")]))   # a gap, again and again
    hub.requests = 0
    follower.start()
    time.sleep(1.6)
    tries = hub.requests
    assert 2 <= tries <= 6, tries       # retried, 0.2 -> 0.4 -> 0.8 s apart, never a busy loop
    assert lib.store.replica_state()["seq"] == 3
    good, caught_up = json.dumps(GOOD).encode(), json.dumps(page(5, [])).encode()
    hub.answer = lambda q: (200, good if q["since"] == "3" else caught_up, SECRET)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and follower.status()["state"] != "following":
        time.sleep(0.05)
    assert lib.store.replica_state()["seq"] == 5 and follower.status()["state"] == "following"


NEW_UUID = "f" * 32


def snapshot_page(phase, after, nxt, changes, **over) -> dict:
    return {"protocol": 1, "app_id": "1001", "library_uuid": NEW_UUID, "seq": 9, "phase": phase, "after": after,
            "next": nxt, "count": len(changes), "changes": changes, **over}


SNAPSHOT = {("groups", "0"): snapshot_page("groups", 0, {"phase": "members", "after": 0},
                                           [change(9, "group.add", "night")]),
            ("members", "0"): snapshot_page("members", 0, {"phase": "faces", "after": 0},
                                            [change(9, "user.add", "night", "cid", data={"user_info": "Cid"})]),
            ("faces", "0"): snapshot_page("faces", 0, None, [face(9, "cid", group="night")])}


def recovered_hub(pages):
    """A hub whose library was recovered: a new uuid, and these snapshot pages."""
    def answer(q):
        if q["_path"].endswith("/snapshot"):
            return 200, json.dumps(pages[q["phase"], q["after"]]).encode(), SECRET
        if q["since"] == "9":
            return 200, json.dumps({**page(9, []), "library_uuid": NEW_UUID}).encode(), SECRET
        return 200, json.dumps({**GOOD, "library_uuid": NEW_UUID}).encode(), SECRET
    return answer


def test_a_recovered_hub_is_followed_again_through_a_snapshot(terminal):
    hub, follower, lib = terminal
    hub.answer = recovered_hub(SNAPSHOT)
    outcomes = [follower.step() for _ in range(4)]
    assert outcomes == ["applied", "applied", "applied", "idle"], follower.status()
    assert lib.store.dump()["members"] == [["night", "cid", "Cid"]]          # ann (the old library) is gone
    assert lib.store.replica_state() == {"hub": hub.url, "app_id": "1001", "hub_uuid": NEW_UUID, "seq": 9,
                                         "groups": []}
    assert lib.search(unit("cid"), None, 1)[0].user_id == "cid"


BAD_SNAPSHOTS = {
    "a face in the groups phase": ({("groups", "0"): snapshot_page("groups", 0, None, [face(9, "cid")])},
                                   "face.add in the snapshot's groups"),
    "another phase than asked": ({("groups", "0"): {**SNAPSHOT["members", "0"]}}, "asked for groups"),
    "next goes back": ({("groups", "0"): snapshot_page("groups", 0, {"phase": "groups", "after": 0}, [])},
                       "goes back"),
    "NaN in a face": ({("groups", "0"): snapshot_page("groups", 0, {"phase": "faces", "after": 0}, []),
                       ("faces", "0"): snapshot_page("faces", 0, None, [face(9, "cid", _nan())])}, "NaN"),
}


@pytest.mark.parametrize("case", list(BAD_SNAPSHOTS))
def test_a_bad_snapshot_page_is_refused_and_wipes_nothing(terminal, case):
    hub, follower, lib = terminal
    pages, reason = BAD_SNAPSHOTS[case]
    hub.answer = recovered_hub(pages)
    before = lib.store.dump()
    outcomes = [follower.step() for _ in range(3)]
    assert outcomes[-1] == "failed" and reason in follower.status()["last_error"], follower.status()["last_error"]
    if outcomes[0] == "failed":   # refused on its first page: the replica was not even emptied
        assert lib.store.dump() == before and lib.store.replica_state()["hub_uuid"] == UUID
    else:                         # refused later: the snapshot stays under way, resumable, never half-applied
        assert lib.store.replica_state()["snapshot"] == {"seq": 9, "phase": "faces", "after": 0}
        assert lib.store.dump()["faces"] == []


def test_following_other_groups_rebuilds_the_replica_through_a_snapshot(terminal, tmp_path):
    hub, follower, lib = terminal
    cfg = dataclasses.replace(follower.sync, groups="night")
    night = Follower(dataclasses.replace(load_config(), data_dir=str(tmp_path), sync=cfg), lambda: lib, MODEL)
    pages = {k: {**v, "library_uuid": UUID} for k, v in SNAPSHOT.items()}
    hub.answer = lambda q: (200, json.dumps(pages[q["phase"], q["after"]] if q["_path"].endswith("/snapshot")
                                            else page(9, [])).encode(), SECRET)
    assert [night.step() for _ in range(4)] == ["applied", "applied", "applied", "idle"], night.status()
    assert lib.store.dump()["groups"] == ["night"] and lib.store.replica_state()["groups"] == ["night"]


def test_the_replica_refuses_local_changes_in_process(terminal, tmp_path):
    """Any writer but the follower is refused with 6: the in-process SDKs (what
    `edge enroll` calls) as the terminal's HTTP API (tests/test_sync.py)."""
    from edge.aip import AipFace as V2
    from edge.aip.v3 import AipFace as V3
    from edge.library.store import FaceRecord, LibraryError
    hub, follower, lib = terminal
    cfg = dataclasses.replace(load_config(), data_dir=str(tmp_path))
    assert V3("1001", "", "", config=cfg).groupAdd("local")["error_code"] == 6
    assert V2("1001", "", "", config=cfg).deleteUser("ann")["error_code"] == 6
    with pytest.raises(LibraryError, match="replica"):
        lib.register(["staff"], "eve", "", FaceRecord("eve0001", unit("eve"), MODEL))
    assert V3("1001", "", "", config=cfg).getUser("ann", "staff")["error_code"] == 0   # reads go on
    from edge.config import ConfigError
    from edge.enroll import Enroller
    with pytest.raises(ConfigError, match="enrol at the hub"):   # edge enroll stops at once (exit 2)
        Enroller(cfg, "1001")
