"""Sync end to end (docs/sync.md): a real hub `edge serve` and two real terminal
`edge serve` processes on loopback, real models on real LFW photos.

Terminal 1 follows every group of app 1001; terminal 2 follows only `staff`. What the
hub's API does reaches the terminals' own v3 search and their library files; the hub
stopped, they answer from their local library and catch up by themselves.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import requests

from edge.models.manifest import REPO_ROOT
from sync_support import (
    Site, b64, dump, feed_key, free_port, signed_feed, start, store_of, synthetic, terminal_config, token, v3, wait_until,
)
from test_aip_v2 import A, B, photo


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = Site(tmp_path_factory.mktemp("site"))
    yield s
    s.stop()


def test_hub_enrolments_reach_both_terminals_and_deletions_follow(site):
    site.hub_call("faceset/user/add", {"image": b64(photo(A, 1)), "image_type": "BASE64", "group_id": "staff",
                                       "user_id": "paul", "user_info": "Paul W"})
    site.hub_call("faceset/user/add", {"image": b64(photo(B, 1)), "image_type": "BASE64", "group_id": "visitors",
                                       "user_id": "jen", "user_info": "Jen L"})
    for terminal in site.terminals:  # another photo of the same person, searched on the terminal
        hit = wait_until(lambda: site.found(terminal, A, 2, "staff"), timeout=20)
        assert hit and hit[0] == "paul" and hit[1] > 80, hit
    hit = wait_until(lambda: site.found(site.t1, B, 2, "visitors"), timeout=20)
    assert hit and hit[0] == "jen" and hit[1] > 80
    assert wait_until(site.converged, timeout=10)
    # terminal 2 follows staff only: jen's group, membership and face never reached it
    t2 = dump(site.data("t2"), "1001")
    assert t2["groups"] == ["staff"] and all(f[0] == "staff" for f in t2["faces"]) and len(t2["faces"]) == 1
    assert site.search(site.t2, B, 2, "visitors")["error_code"] == 222207  # no such group here

    # membership changes: jen copied into staff reaches terminal 2 with her face ...
    site.hub_call("faceset/user/copy", {"user_id": "jen", "src_group_id": "visitors", "dst_group_id": "staff"})
    hit = wait_until(lambda: site.found(site.t2, B, 2, "staff"), timeout=20)
    assert hit and hit[0] == "jen" and hit[1] > 80
    assert wait_until(site.converged, timeout=10)
    # ... and v2 deleteGroupUser takes her out of staff again, everywhere
    out = requests.post(f"{site.url}/rest/2.0/face/v2/faceset/group/deleteuser",
                        params={"access_token": site.hub_token}, data={"group_id": "staff", "uid": "jen"}).json()
    assert "error_code" not in out, out
    assert wait_until(lambda: site.found(site.t2, B, 2, "staff") is None, timeout=20)
    assert wait_until(site.converged, timeout=10)

    # a user deleted at the hub is no longer recognised by either terminal
    site.hub_call("faceset/user/delete", {"group_id": "staff", "user_id": "paul"})
    for terminal in site.terminals:
        assert wait_until(lambda: site.found(terminal, A, 2, "staff") is None, timeout=20)
    # a group deleted at the hub is gone from the terminal that followed it
    site.hub_call("faceset/group/delete", {"group_id": "visitors"})
    assert wait_until(lambda: "visitors" not in dump(site.data("t1"), "1001")["groups"], timeout=20)
    assert wait_until(site.converged, timeout=10)


def test_terminal_reports_sync_and_refuses_local_changes(site):
    site.hub_call("faceset/group/add", {"group_id": "staff_b"})
    head = store_of(site.data("hub"), "1001").last_seq()
    metrics = wait_until(lambda: (lambda m: m if f'edge_sync_cursor{{app_id="1001"}} {head}.0' in m else None)(
        requests.get(site.t1.url + "/metrics").text), timeout=10)
    assert metrics, requests.get(site.t1.url + "/metrics").text
    assert 'edge_sync_hub_reachable{app_id="1001"} 1.0' in metrics
    assert 'edge_sync_lag_changes{app_id="1001"} 0.0' in metrics
    assert 'edge_sync_model_mismatch_faces{app_id="1001"} 0.0' in metrics
    assert 'edge_sync_state{app_id="1001",state="following"} 1.0' in metrics

    def status():
        out = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(site.t1.config_path), "status",
                              "--json"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
        return out.returncode, json.loads(out.stdout.splitlines()[0]) if out.stdout else None
    code, snap = wait_until(lambda: (lambda r: r if r[1] and r[1]["sync"]["1001"]["cursor"] == head else None)(
        status()), timeout=10) or status()
    st = snap["sync"]["1001"]
    assert code == 0 and st["state"] == "following" and st["hub_reachable"] is True and st["lag_s"] == 0
    # the terminal's library is the hub's replica: its own management API refuses (6)
    out = v3(site.t1.url, site.tok(site.t1), "faceset/group/add", {"group_id": "local"})
    assert out["error_code"] == 6


def test_edge_run_terminal_follows_the_hub(site, tmp_path):
    """`edge run` with `sync:` starts the follower too; its status and metrics show it."""
    port = free_port()
    cfg = terminal_config(tmp_path, site.url)
    body = __import__("yaml").safe_load(cfg.read_text())
    body["run"] = {"app_id": "1001", "status_interval_s": 0.3, "metrics_port": port, "liveness_control": "NONE"}
    cfg.write_text(__import__("yaml").safe_dump(body))
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "--config", str(cfg), "run", "--duration", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT)
    try:
        head = store_of(site.data("hub"), "1001").last_seq()
        status = tmp_path / "data" / "run" / "status.json"
        snap = wait_until(lambda: (lambda s: s if s and s.get("sync", {}).get("1001", {}).get("cursor") == head
                                   else None)(json.loads(status.read_text()) if status.exists() else None), 60)
        assert snap, proc.stdout.read() if proc.poll() is not None else "no sync in the loop's status"
        assert dump(tmp_path / "data", "1001") == dump(site.data("hub"), "1001")
        metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert f'edge_sync_cursor{{app_id="1001"}} {head}.0' in metrics
    finally:
        proc.terminate()
        proc.wait(60)


def test_hub_down_terminals_keep_recognising_then_catch_up(site):
    site.hub_call("faceset/user/add", {"image": b64(photo(A, 1)), "image_type": "BASE64", "group_id": "staff",
                                       "user_id": "paul2", "user_info": "Paul again"})
    for terminal in site.terminals:
        assert wait_until(lambda: site.found(terminal, A, 2, "staff"), timeout=20)
    stopping = time.monotonic()
    assert site.hub.stop() == 0
    assert time.monotonic() - stopping < 10   # the terminals' 20 s long-polls were answered, not waited out
    for terminal in site.terminals:  # the hub is gone: local recognition goes on
        hit = site.found(terminal, A, 2, "staff")
        assert hit and hit[0] == "paul2" and hit[1] > 80
    sync = site.data("t1").parent / "data" / "run" / "sync.json"
    st = wait_until(lambda: (lambda s: s if s["hub_reachable"] is False else None)(
        json.loads(sync.read_text())["sync"]["1001"]), timeout=15)
    assert st and st["state"] == "unreachable" and "unreachable" in st["last_error"]
    # meanwhile the hub's library changes (an enrolment script beside the stopped hub)
    hub = store_of(site.data("hub"), "1001")
    hub.register_many([(["staff"], f"late{i}", f"late {i}", synthetic(f"late{i}", site.model), "append")
                       for i in range(30)])
    hub.delete_user("paul2")
    hub.close()
    site.hub = start(site.hub_config)  # back on its own port
    assert wait_until(site.converged, timeout=30)
    for terminal in site.terminals:
        assert site.found(terminal, A, 2, "staff") is None
    # the status file is rewritten on its own clock: wait for the state too, not only the lag
    st = wait_until(lambda: (lambda s: s if s["hub_reachable"] and s["lag_changes"] == 0
                             and s["state"] == "following" else None)(
        json.loads(sync.read_text())["sync"]["1001"]), timeout=30)
    assert st and st["state"] == "following", json.loads(sync.read_text())["sync"]["1001"]


FEED_ERRORS = [({}, 222002), ({"since": "-1"}, 222002), ({"since": "1.5"}, 222002), ({"since": "x"}, 222002),
               ({"since": "0", "limit": "0"}, 222003), ({"since": "0", "limit": "5001"}, 222003),
               ({"since": "0", "limit": "ten"}, 222003), ({"since": "0", "groups": "staff,no-dash"}, 222006),
               ({"since": "0", "groups": ""}, 222006), ({"since": "0", "groups": ",".join(["g"] * 101)}, 222006),
               ({"since": "0", "wait": "31"}, 100), ({"since": "0", "wait": "nan"}, 100),
               ({"since": "0", "page": "2"}, 100), ({"since": "0", "nonce": "x" * 65}, 100),
               ({"since": "0", "app_id": "2002"}, 6)]


@pytest.mark.parametrize("params,code", FEED_ERRORS)
def test_bad_feed_requests_get_baidu_errors(site, params, code):
    r = signed_feed(site.url, *feed_key("1001"), params)
    assert r.status_code == 200 and r.json()["error_code"] == code, r.text
    assert r.json()["error_msg"] and "Traceback" not in r.text


SNAPSHOT_ERRORS = [({"after": "0"}, 100), ({"phase": "users", "after": "0"}, 100), ({"phase": "faces"}, 222002),
                   ({"phase": "faces", "after": "-3"}, 222002),
                   ({"phase": "faces", "after": "0", "limit": "0"}, 222003),
                   ({"phase": "faces", "after": "0", "groups": "a b"}, 222006),
                   ({"phase": "faces", "after": "0", "since": "0"}, 100),
                   ({"phase": "faces", "after": "0", "app_id": "2002"}, 6)]


@pytest.mark.parametrize("params,code", SNAPSHOT_ERRORS)
def test_bad_snapshot_requests_get_baidu_errors(site, params, code):
    r = signed_feed(site.url, *feed_key("1001"), params, path="/edge/sync/v1/snapshot")
    assert r.status_code == 200 and r.json()["error_code"] == code, r.text


def test_feed_credentials_and_scopes(site):
    feed = site.url + "/edge/sync/v1/changes"
    assert requests.get(feed, params={"since": 0}).json()["error_code"] == 100            # no credentials
    assert requests.get(feed, params={"since": 0, "access_token": "24.x"}).json()["error_code"] == 110
    assert signed_feed(site.url, "FK1001door", "wrong-secret", {"since": "0"}).json()["error_code"] == 14
    # app 2002's feed key reads app 2002's feed only: never a change of app 1001
    page = signed_feed(site.url, *feed_key("2002"), {"since": "0"}).json()
    assert page["app_id"] == "2002" and page["changes"] == []
    assert signed_feed(site.url, *feed_key("2002"), {"since": "0", "app_id": "1001"}).json()["error_code"] == 6
    # a feed key (token or signature) reads the feed and manages nothing
    door = token(site.url, *feed_key("1001"))
    page = requests.get(feed, params={"since": 0, "limit": 2, "access_token": door}).json()
    assert page["app_id"] == "1001" and page["count"] == 2 and page["next"] == 2
    assert v3(site.url, door, "faceset/group/add", {"group_id": "intruders"})["error_code"] == 6
    assert v3(site.url, door, "faceset/group/getlist", {})["error_code"] == 6
    out = requests.post(f"{site.url}/rest/2.0/face/v2/faceset/group/getlist", params={"access_token": door}).json()
    assert out["error_code"] == 6
    # the app's own key may read its feed too
    assert requests.get(feed, params={"since": 0, "limit": 1, "access_token": site.hub_token}).json()["count"] == 1


def test_long_poll_answers_when_a_change_commits(site):
    head = store_of(site.data("hub"), "1001").last_seq()
    started = time.monotonic()
    with __import__("concurrent.futures").futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(signed_feed, site.url, *feed_key("1001"), {"since": str(head), "wait": "20"})
        time.sleep(0.5)
        assert not waiting.done()  # held: nothing new yet
        waiting_gauge = requests.get(site.url + "/metrics").text
        assert "edge_sync_feed_waiting 0.0" not in waiting_gauge and "edge_sync_feed_waiting" in waiting_gauge
        site.hub_call("faceset/group/add", {"group_id": "night_shift"})
        page = waiting.result(timeout=30).json()
    assert time.monotonic() - started < 10  # woken by the commit, not by the 20 s wait
    assert [c["op"] for c in page["changes"]] == ["group.add"] and page["since"] == head
