"""Up (docs/sync.md): a terminal's own enrolments go to the hub through a durable
outbox and come back to every terminal through the feed. A real hub and two real
terminal `edge serve` processes with `sync.push` (a feed+push key), real models on
real LFW photos; the push endpoint's checks with signed requests from the test.
"""
from __future__ import annotations

import base64
import json
import signal
import time
import uuid

import numpy as np
import pytest
import requests

from edge.config import load_config
from edge.server.auth import sign_bce
from edge.sync.protocol import sign_page
from edge.sync.push import PUSH_PATH, PUSH_SIGNATURE_HEADER
from sync_support import (
    HUB_KEY, HUB_SECRET, Site, TERMINAL_APP, b64, dump, feed_key, push_key, start, store_of, terminal_config, token, unit, v3, wait_until,
)
from test_aip_v2 import A, B, photo


class PushSite(Site):
    def enrol(self, terminal, name: str, i: int, group: str, user_id: str, **extra) -> dict:
        return v3(terminal.url, self.tok(terminal), "faceset/user/add",
                  {"image": b64(photo(name, i)), "image_type": "BASE64", "group_id": group, "user_id": user_id,
                   "user_info": user_id, **extra})


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = PushSite(tmp_path_factory.mktemp("push"), push=True)
    yield s
    s.stop()


def test_enrolled_on_a_terminal_is_recognised_on_the_other_and_at_the_hub(site):
    started = time.monotonic()
    out = site.enrol(site.t1, A, 1, "staff", "ann")
    assert out["error_code"] == 0, out
    token_ = out["result"]["face_token"]
    assert len(token_) == 32 and out["result"]["location"]  # Baidu's answer fields
    hit = wait_until(lambda: site.found(site.t1, A, 2, "staff"), timeout=20)  # back through the feed
    delay = time.monotonic() - started
    print(f"\nenrolled on t1 -> searchable on t1 after {delay * 1000:.0f} ms (with the search's own time)")
    assert hit and hit[0] == "ann" and hit[1] > 80
    hit = wait_until(lambda: site.found(site.t2, A, 2, "staff"), timeout=20)
    assert hit and hit[0] == "ann" and hit[1] > 80, hit
    hub = dump(site.data("hub"), "1001")
    assert [f[:3] for f in hub["faces"]] == [["staff", "ann", token_]]
    assert wait_until(site.converged, timeout=10)
    # v3 updateUser, v3 faceDelete-free membership changes and deleteUser travel the same way
    assert v3(site.t1.url, site.tok(site.t1), "faceset/user/update",
              {"image": b64(photo(A, 3)), "image_type": "BASE64", "group_id": "staff", "user_id": "ann",
               "user_info": "Ann R"})["error_code"] == 0
    assert wait_until(lambda: dump(site.data("hub"), "1001")["members"] == [["staff", "ann", "Ann R"]], 20)
    # checked against the replica as the hub would: an unknown user's update is refused at once
    out = v3(site.t1.url, site.tok(site.t1), "faceset/user/update",
             {"image": b64(photo(A, 3)), "image_type": "BASE64", "group_id": "staff", "user_id": "nobody"})
    assert out["error_code"] == 223103
    # groups are managed at the hub only
    assert v3(site.t1.url, site.tok(site.t1), "faceset/group/add", {"group_id": "local"})["error_code"] == 6
    assert wait_until(site.converged, timeout=10)
    metrics = requests.get(site.t1.url + "/metrics").text
    assert 'edge_sync_upstream_queued{app_id="1001"} 0.0' in metrics
    assert 'edge_sync_upstream_sent_total{app_id="1001"}' in metrics


def test_hub_down_enrolments_queue_then_converge_and_a_hub_deletion_wins(site):
    assert site.enrol(site.t1, B, 1, "staff", "bob")["error_code"] == 0
    assert wait_until(lambda: site.found(site.t2, B, 2, "staff"), timeout=20)
    assert wait_until(site.converged, timeout=10)
    assert site.hub.stop() == 0
    # hub down: enrolments are acknowledged (durable) and wait; searches go on
    for i, user in enumerate(("carl", "dora", "emil")):
        assert site.enrol(site.t2, A, 4 + i, "staff", user)["error_code"] == 0
    assert site.enrol(site.t1, B, 3, "staff", "bob")["error_code"] == 0   # a second face for bob, offline
    hit = site.found(site.t2, B, 2, "staff")
    assert hit and hit[0] == "bob"
    st = wait_until(lambda: (lambda s: s if s.get("upstream_queued") == 3 and s.get("upstream_last_error")
                             else None)(site.status("t2")), timeout=15)
    assert st and st["hub_reachable"] is False and st["upstream_oldest_age_s"] >= 0, site.status("t2")
    # meanwhile the hub deletes bob (beside the stopped hub): after t1's cursor, so it wins
    hub = store_of(site.data("hub"), "1001")
    hub.delete_user("bob")
    hub.close()
    site.hub = start(site.hub_config)
    members = lambda: {m[1] for m in dump(site.data("hub"), "1001")["members"]}  # noqa: E731
    assert wait_until(lambda: members() == {"ann", "carl", "dora", "emil"}, timeout=30), members()
    assert wait_until(site.converged, timeout=30)
    hub = dump(site.data("hub"), "1001")
    assert not [f for f in hub["faces"] if f[1] == "bob"]   # nobody holds bob's face
    st = wait_until(lambda: (lambda s: s if s.get("upstream_refused") == 1 else None)(site.status("t1")), 15)
    assert st and "stale" in st["upstream_last_refusal"] and st["upstream_last_refusal"].startswith("223103")
    assert st["upstream_queued"] == 0 and site.found(site.t1, B, 2, "staff") is None
    metrics = requests.get(site.t1.url + "/metrics").text
    assert 'edge_sync_upstream_refused{app_id="1001"} 1.0' in metrics
    from edge.cli import main
    assert main(["--config", str(site.t1_config), "sync", "refused"]) == 0


def _signed_push(url: str, key: str, secret: str, body: bytes, params=None, body_secret=None, chunked=False):
    host = url.split("://", 1)[1]
    nonce = uuid.uuid4().hex
    items = sorted({"app_id": "1001", "nonce": nonce, **(params or {})}.items())
    auth = sign_bce(key, secret, method="POST", path=PUSH_PATH, query=items, host=host, now=time.time())
    headers = {"Authorization": auth, "Content-Type": "application/json",
               PUSH_SIGNATURE_HEADER: sign_page(body_secret or secret, nonce, body)}
    data = (body[i:i + 65536] for i in range(0, len(body), 65536)) if chunked else body
    return requests.post(url + PUSH_PATH, params=items, data=data, headers=headers, timeout=30)


def _op(model: str, user: str = "zed", **over) -> dict:
    vec = unit(user)
    op = {"op_id": uuid.uuid4().hex, "cursor": 0, "hub_uuid": None, "action": "register", "user_id": user,
          "group_ids": ["staff"], "user_info": user, "mode": "append", "src_group": None, "create_groups": False,
          "face_token": None, "face": {"face_token": uuid.uuid4().hex, "model": model, "quality": None,
                                       "embedding": base64.b64encode(vec.tobytes()).decode()}}
    op.update(over)
    return op


def _body(*ops) -> bytes:
    return json.dumps({"origin": uuid.uuid4().hex, "ops": list(ops)}).encode()


def test_the_hub_applies_an_operation_once(site):
    op = _op(site.model, "idem")
    body = _body(op)
    first = _signed_push(site.url, *push_key(), body).json()
    again = _signed_push(site.url, *push_key(), body).json()  # a retry after a lost answer
    assert first["error_code"] == 0 and again["error_code"] == 0, (first, again)
    (r1,), (r2,) = first["result"]["results"], again["result"]["results"]
    assert r1["error_code"] == 0 and not r1["duplicate"] and r2["duplicate"] and r2["seq"] == r1["seq"]
    store = store_of(site.data("hub"), "1001")
    adds = store._all("SELECT COUNT(*) FROM changes WHERE op='face.add' AND face_token=?",
                      (op["face"]["face_token"],))
    store.close()
    assert adds == [(1,)]
    assert [f[1] for f in dump(site.data("hub"), "1001")["faces"]].count("idem") == 1


BAD_OPS = [({"user_id": "no-dash"}, 222018), ({"group_ids": ["a b"]}, 222006), ({"group_ids": []}, 222006),
           ({"mode": "merge"}, 222025), ({"user_info": "x" * 300}, 222010), ({"action": "group_delete"}, 100),
           ({"cursor": -1}, 222002), ({"hub_uuid": "zz"}, 100), ({"extra": 1}, 100),
           ({"action": "delete_face", "face_token": "bad token!"}, 222023)]


@pytest.mark.parametrize("over,code", BAD_OPS)
def test_bad_operations_are_refused_one_by_one(site, over, code):
    bad, good = _op(site.model, "okay_" + uuid.uuid4().hex[:6], **over), _op(site.model, "fine")
    out = _signed_push(site.url, *push_key(), _body(bad, good)).json()
    assert out["error_code"] == 0, out
    assert [r["error_code"] for r in out["result"]["results"]] == [code, 0]


def test_bad_embeddings_and_another_model_are_refused(site):
    nan = np.full(128, np.nan, np.float32)
    short = unit("s", 64)
    cases = [(_op("another_model@123456789abc"), 223190),
             (_op(site.model, face={"face_token": "a" * 32, "model": site.model, "quality": None,
                                    "embedding": b64(nan.tobytes())}), 100),
             (_op(site.model, face={"face_token": "b" * 32, "model": site.model, "quality": None,
                                    "embedding": b64(short.tobytes())}), 100),
             (_op(site.model, face={"face_token": "c" * 32, "model": site.model, "quality": None,
                                    "embedding": "not base64!"}), 100)]
    out = _signed_push(site.url, *push_key(), _body(*(c for c, _ in cases))).json()
    assert [r["error_code"] for r in out["result"]["results"]] == [code for _, code in cases], out
    assert "another_model" in out["result"]["results"][0]["detail"]


def test_push_credentials_and_bad_requests(site):
    body = _body(_op(site.model, "cred"))
    assert _signed_push(site.url, *feed_key("1001"), body).json()["error_code"] == 6   # a feed-only key
    assert _signed_push(site.url, *feed_key("2002"), body).json()["error_code"] == 6   # another app's key
    assert _signed_push(site.url, *push_key(), body, body_secret="wrong").json()["error_code"] == 14
    assert _signed_push(site.url, "PK1001kiosk", "wrong", body).json()["error_code"] == 14
    assert _signed_push(site.url, *push_key(), body, params={"page": "1"}).json()["error_code"] == 100
    assert requests.post(site.url + PUSH_PATH, data=body).json()["error_code"] == 100  # no credentials
    for bad, code in ((b"{", 222200), (b"[]", 222200), (json.dumps({"ops": []}).encode(), 222200),
                      (_body(), 100), (_body(*[_op(site.model)] * 2), 100),
                      (_body({"op_id": "x"}), 100), (_body(*[_op(site.model, f"u{i}") for i in range(51)]), 100),
                      (b"{" * 100000 + b"}" * 100000, 222200)):
        r = _signed_push(site.url, *push_key(), bad)
        assert r.status_code == 200 and r.json()["error_code"] == code, (bad[:60], r.text)
    big = b" " * (1024 * 1024 + 1)
    assert _signed_push(site.url, *push_key(), big).json()["error_code"] == 100      # over the bound
    chunked = _signed_push(site.url, *push_key(), big, chunked=True)                 # no Content-Length
    assert chunked.json()["error_code"] == 100, chunked.text
    # the app's own key may push; a feed+push key still manages nothing through the API
    assert _signed_push(site.url, HUB_KEY, HUB_SECRET, _body(_op(site.model, "own"))).json()["error_code"] == 0
    kiosk = token(site.url, *push_key())
    assert v3(site.url, kiosk, "faceset/group/getlist", {})["error_code"] == 6


def _pending(data_dir) -> int:
    from edge.sync.upstream import UpstreamOutbox, outbox_path
    outbox = UpstreamOutbox(outbox_path(data_dir, "1001"), 20000)
    try:
        return outbox.pending_count()
    finally:
        outbox.close()


def test_kill_9_right_after_acknowledged_enrolments_loses_nothing(site, tmp_path):
    """A third terminal killed -9 at once after its enrolments were answered, again and
    again: each acknowledged enrolment reaches the hub exactly once."""
    cfg = terminal_config(tmp_path, site.url, push=True)
    acked = []
    for round_ in range(6):
        if round_ == 0:   # the first three rounds with the hub down: what was acked is only in the outbox
            assert site.hub.stop() == 0
        if round_ == 3:
            site.hub = start(site.hub_config)
        term = start(cfg)
        tok = token(term.url, TERMINAL_APP["api_key"], TERMINAL_APP["secret_key"])
        for i in range(3):
            user = f"k{round_}_{i}"
            out = v3(term.url, tok, "faceset/user/add", {"image": b64(photo(A if i % 2 else B, 1 + i)),
                                                         "image_type": "BASE64", "group_id": "kill",
                                                         "user_id": user})
            assert out["error_code"] == 0, out
            acked.append((user, out["result"]["face_token"]))
        term.proc.send_signal(signal.SIGKILL)
        term.proc.wait(30)
        if round_ < 3:
            assert wait_until(lambda: _pending(tmp_path / "data") == len(acked), timeout=5), _pending(tmp_path / "data")
    term = start(cfg)  # back once more: it sends whatever still waits
    try:
        def at_hub():
            faces = [f for f in dump(site.data("hub"), "1001")["faces"] if f[0] == "kill"]
            return faces if len(faces) >= len(acked) else None
        faces = wait_until(at_hub, timeout=30)
        assert faces and sorted((f[1], f[2]) for f in faces) == sorted(acked)
        store = store_of(site.data("hub"), "1001")
        adds = store._all("SELECT COUNT(*) FROM changes WHERE op='face.add' AND group_id='kill'")
        store.close()
        assert adds == [(len(acked),)]  # none applied twice
        assert wait_until(lambda: dump(tmp_path / "data", "1001") == dump(site.data("hub"), "1001"), 20)
    finally:
        term.stop()


def test_edge_enroll_on_a_pushing_terminal_queues_for_the_hub(site):
    """`edge enroll` beside the running terminal (its Enroller, in this process): the
    enrolment is queued in the terminal's outbox and the terminal's pusher sends it."""
    from edge.enroll import Enroller
    from edge.library.library import close_all
    enroller = Enroller(load_config(site.t1_config), "1001", quality="NONE")
    try:
        outcome = enroller.enroll("staff", "enroller", photo(B, 4), "b4.jpg")
    finally:
        close_all()
    assert outcome.status == "enrolled", outcome
    assert wait_until(lambda: [f for f in dump(site.data("hub"), "1001")["faces"] if f[1] == "enroller"], 20)
    assert wait_until(site.converged, timeout=20)


def test_the_stale_rule_spares_a_terminals_own_deletions(tmp_path):
    """A deleteUser then addUser of one user on the same terminal (both pushed with the
    cursor it had) apply both; another terminal's enrolment with that cursor is stale.
    The hub's store alone (real SQLite file)."""
    from edge.library.store import LibraryStore, PushOp
    from sync_support import synthetic
    store = LibraryStore(tmp_path / "library.db")
    try:
        store.register(["staff"], "ann", "Ann", synthetic("ann", "m"))
        cursor, mine, other = store.last_seq(), uuid.uuid4().hex, uuid.uuid4().hex

        def op(action, **fields):
            return PushOp(uuid.uuid4().hex, cursor, store.uuid, action, "ann", ("staff",), **fields)
        assert store.apply_push(op("delete_user"), mine).kind is None
        again = op("register", user_info="Ann", face=synthetic("ann", "m", 1))
        assert store.apply_push(again, mine).kind is None          # its own deletion: not stale
        late = op("register", user_info="Ann", face=synthetic("ann", "m", 2))
        refused = store.apply_push(late, other)                     # another door's: the deletion wins
        assert refused.kind == "user_not_found" and "stale" in refused.detail
        assert [f[2] for f in store.dump()["faces"]] == [synthetic("ann", "m", 1).face_token]
        assert store.apply_push(again, mine).duplicate              # and a retry applies nothing
        behind = PushOp(uuid.uuid4().hex, cursor + 99, store.uuid, "register", "bob", ("staff",), "Bob",
                        face=synthetic("bob", "m"))
        assert "does not cover" in store.apply_push(behind, other).detail   # a cursor the log cannot judge
    finally:
        store.close()


def test_a_terminal_with_a_feed_only_key_keeps_its_enrolments_and_reports(site, tmp_path):
    """push: true with a key that may only read the feed: the hub answers 6, the queue
    is kept (nothing dead-lettered: the operator fixes the key) and the error shown."""
    key, secret = feed_key("1001")
    term = start(terminal_config(tmp_path, site.url, push=True, api_key=key, secret_key=secret))
    try:
        tok = token(term.url, TERMINAL_APP["api_key"], TERMINAL_APP["secret_key"])
        out = v3(term.url, tok, "faceset/user/add", {"image": b64(photo(B, 5)), "image_type": "BASE64",
                                                     "group_id": "staff", "user_id": "nokey"})
        assert out["error_code"] == 0, out
        path = tmp_path / "data" / "run" / "sync.json"
        st = wait_until(lambda: (lambda s: s if s.get("upstream_last_error") else None)(
            json.loads(path.read_text())["sync"]["1001"] if path.exists() else {}), timeout=15)
        assert st and "error_code 6" in st["upstream_last_error"], st
        assert st["upstream_queued"] == 1 and st["upstream_refused"] == 0
        assert not [f for f in dump(site.data("hub"), "1001")["faces"] if f[1] == "nokey"]
    finally:
        term.stop()
