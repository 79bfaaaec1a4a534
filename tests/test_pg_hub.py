"""Hubs on PostgreSQL (issue 14): two real `edge serve` processes share one database and
answer Baidu's real SDKs over HTTP; a real terminal (SQLite) follows one of them and
pushes its own enrolments to it, ending equal to the hub's library."""
from __future__ import annotations

import pytest

from edge.postgres.connect import database
from edge.postgres.store import PgLibraryStore
from serving import sdk_client
from sync_support import (HUB_APPS, HUB_KEY, HUB_SECRET, TERMINAL_APP, b64, dump, free_port, start, terminal_config,
                          token, v3, wait_until, write_config)
from test_aip_v2 import A, B, C, photo


@pytest.fixture(scope="module")
def hubs(tmp_path_factory, pg_server):
    root = tmp_path_factory.mktemp("pghub")
    dsn = pg_server.new_database()
    procs = []
    try:
        for name in ("hub1", "hub2"):
            procs.append(start(write_config(root / name, {
                "server": {"port": free_port()}, "apps": HUB_APPS,
                "library": {"backend": "postgres", "dsn": dsn, "pool_size": 4}})))
        yield root, dsn, procs
    finally:
        for proc in procs:
            proc.stop()


def test_two_hub_processes_share_the_library_through_the_sdks(hubs):
    _, dsn, (hub1, hub2) = hubs
    one = sdk_client("4.16.13", hub1.url, "1001", HUB_KEY, HUB_SECRET)
    two = sdk_client("4.16.13", hub2.url, "1001", HUB_KEY, HUB_SECRET)
    assert one.addUser(b64(photo(A, 1)), "BASE64", "staff", "paul", {"user_info": "Paul"})["error_code"] == 0
    assert two.addUser(b64(photo(B, 1)), "BASE64", "staff", "jlo")["error_code"] == 0
    for client, name, user in ((two, A, "paul"), (one, B, "jlo")):   # each finds what the other enrolled
        found = client.search(b64(photo(name, 2)), "BASE64", "staff", {"quality_control": "LOW"})
        assert found["error_code"] == 0 and found["result"]["user_list"][0]["user_id"] == user, found
    assert two.addUser(b64(photo(A, 1)), "BASE64", "staff", "paul")["error_code"] == 223105   # face_exists
    old = sdk_client("2.2.2.0", hub2.url, "1001", HUB_KEY, HUB_SECRET)
    who = old.identifyUser("staff", photo(A, 2), {"user_top_num": 1})
    assert who["result"][0]["uid"] == "paul", who
    assert old.getGroupUsers("nowhere").get("error_code") == 216618
    store = PgLibraryStore(database(dsn), "1001")
    assert [m[1] for m in store.dump()["members"]] == ["jlo", "paul"]


def test_a_terminal_follows_a_postgres_hub_and_pushes_to_it(hubs, tmp_path):
    _, dsn, (hub1, _) = hubs
    terminal = start(terminal_config(tmp_path / "t1", hub1.url, push=True))
    try:
        hub_tok = token(hub1.url, HUB_KEY, HUB_SECRET)
        assert v3(hub1.url, hub_tok, "faceset/user/add", {"image": b64(photo(C, 1)), "image_type": "BASE64",
                                                          "group_id": "visitors", "user_id": "ricardo"})["error_code"] == 0
        tok = token(terminal.url, TERMINAL_APP["api_key"], TERMINAL_APP["secret_key"])
        out = v3(terminal.url, tok, "faceset/user/add", {"image": b64(photo(B, 2)), "image_type": "BASE64",
                                                          "group_id": "staff", "user_id": "jlo2"})
        assert out["error_code"] == 0, out
        store = PgLibraryStore(database(dsn), "1001")
        equal = wait_until(lambda: dump(tmp_path / "t1" / "data", "1001") == store.dump()
                           and "jlo2" in [m[1] for m in store.dump()["members"]], timeout=60)
        assert equal, (dump(tmp_path / "t1" / "data", "1001"), store.dump())
        found = v3(terminal.url, tok, "search", {"image": b64(photo(C, 2)), "image_type": "BASE64",
                                                  "group_id_list": "visitors", "quality_control": "LOW"})
        assert found["result"]["user_list"][0]["user_id"] == "ricardo", found
    finally:
        terminal.stop()


def test_edge_library_compact_prunes_the_postgres_hubs_log(hubs):
    import json
    import subprocess
    import sys
    root, dsn, _ = hubs
    store = PgLibraryStore(database(dsn), "1001")
    assert store.last_seq() > 3
    out = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(root / "hub1" / "edge.yaml"), "library",
                          "compact", "--app-id", "1001", "--keep", "2"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["log_floor"] == store.last_seq() - 2 == store.log_floor()
