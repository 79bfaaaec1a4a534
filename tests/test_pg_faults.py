"""Faults of a hub on PostgreSQL (issue 14), through a real `edge serve` and Baidu's real
SDKs: the database going away answers the db error with a Baidu body (v3 222915, v2
216300) within seconds, logged once, and the hub serves again by itself when it is back;
an acknowledged write survives a kill -9 of the hub and a crash of PostgreSQL (an
immediate stop, recovered from its WAL). A server of its own: these tests stop it."""
from __future__ import annotations

import time

import pytest

from edge.postgres.connect import database
from edge.postgres.store import PgLibraryStore
from pg_support import PgServer
from serving import sdk_client
from sync_support import HUB_APPS, HUB_KEY, HUB_SECRET, b64, free_port, start, wait_until, write_config
from test_aip_v2 import A, B, C, photo


@pytest.fixture(scope="module")
def own_pg(tmp_path_factory):
    srv = PgServer(tmp_path_factory.mktemp("pgfaults"))
    yield srv
    srv.stop()


def pg_hub(folder, dsn):
    return start(write_config(folder, {"server": {"port": free_port()}, "apps": HUB_APPS,
                                       "library": {"backend": "postgres", "dsn": dsn, "pool_size": 2,
                                                   "timeout_s": 3}}))


def test_an_outage_answers_the_db_error_and_the_hub_recovers_by_itself(own_pg, tmp_path):
    dsn = own_pg.new_database()
    hub = pg_hub(tmp_path / "hub", dsn)
    try:
        v3 = sdk_client("4.16.13", hub.url, "1001", HUB_KEY, HUB_SECRET)
        v2 = sdk_client("2.2.2.0", hub.url, "1001", HUB_KEY, HUB_SECRET)
        assert v3.addUser(b64(photo(A, 1)), "BASE64", "staff", "paul")["error_code"] == 0
        own_pg.stop()
        t0 = time.monotonic()
        down = v3.search(b64(photo(A, 2)), "BASE64", "staff", {"quality_control": "LOW"})
        assert (down["error_code"], down["error_msg"]) == (222915, "system busy"), down
        assert time.monotonic() - t0 < 20            # timeout_s 3 plus the photo's analysis
        assert v3.getGroupList()["error_code"] == 222915
        assert v3.addUser(b64(photo(B, 1)), "BASE64", "staff", "jlo")["error_code"] == 222915
        assert v2.identifyUser("staff", photo(A, 2), {"user_top_num": 1})["error_code"] == 216300
        log = hub.log_text()
        assert "Traceback" not in log
        assert sum("ERROR" in line and "cannot be reached" in line for line in log.splitlines()) == 1, log[-3000:]
        own_pg.start()
        assert wait_until(lambda: v3.getGroupList()["error_code"] == 0, timeout=30)   # no restart
        found = v3.search(b64(photo(A, 2)), "BASE64", "staff", {"quality_control": "LOW"})
        assert found["result"]["user_list"][0]["user_id"] == "paul", found
        assert v3.addUser(b64(photo(B, 1)), "BASE64", "staff", "jlo")["error_code"] == 0  # the refused one: not there
        assert [m[1] for m in PgLibraryStore(database(dsn), "1001").dump()["members"]] == ["jlo", "paul"]
    finally:
        if own_pg._srv.get_pid() is None:
            own_pg.start()
        hub.stop()


def test_acknowledged_writes_survive_a_kill_of_the_hub_and_a_crash_of_postgres(own_pg, tmp_path):
    dsn = own_pg.new_database()
    hub = pg_hub(tmp_path / "hub", dsn)
    try:
        client = sdk_client("4.16.13", hub.url, "1001", HUB_KEY, HUB_SECRET)
        for user, (name, idx) in {"paul": (A, 1), "jlo": (B, 1), "ricardo": (C, 1)}.items():
            assert client.addUser(b64(photo(name, idx)), "BASE64", "kept", user)["error_code"] == 0
        assert client.deleteUser("kept", "jlo")["error_code"] == 0
        hub.proc.kill()
        hub.proc.wait()
        own_pg.crash()
        own_pg.start()
        assert "automatic recovery in progress" in own_pg.log_text()   # it really replayed its WAL
        hub = pg_hub(tmp_path / "hub", dsn)
        client = sdk_client("4.16.13", hub.url, "1001", HUB_KEY, HUB_SECRET)
        users = client.getGroupUsers("kept")
        assert sorted((users.get("result") or {}).get("user_id_list", [])) == ["paul", "ricardo"], (users, hub.log_text()[-3000:])
        hit = client.search(b64(photo(C, 2)), "BASE64", "kept", {"quality_control": "LOW"})
        assert hit["result"]["user_list"][0]["user_id"] == "ricardo", hit
        store = PgLibraryStore(database(dsn), "1001")
        seqs = [c.seq for c in store.changes_since(0)]
        assert seqs == list(range(1, store.last_seq() + 1))   # the log has no hole after the crash
    finally:
        hub.stop()
