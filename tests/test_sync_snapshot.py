"""Snapshot and log compaction (docs/sync.md, Snapshot): a hub compacts its change log
(`edge library compact`); a terminal behind the floor gets a snapshot - emptied and
rebuilt in pages it resumes after a kill -9, then the feed replays what changed
meanwhile - and ends equal to the hub. A library's own index behind the floor is
rebuilt instead of missing what was pruned."""
from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

from edge.aip.runtime import Runtime
from edge.config import load_config
from edge.library.library import FaceLibrary
from edge.models.manifest import REPO_ROOT
from sync_support import (dump, feed_key, free_port, hub_config, signed_feed, start, store_of, synthetic,
                          terminal_config, unit)
from test_sync_kill import worker, write_batch


def catch_up(cfg) -> str:
    proc = worker(cfg, "catch-up")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return out


def test_terminal_behind_the_compacted_log_takes_a_snapshot_and_ends_equal(tmp_path):
    port = free_port()
    hub_cfg = hub_config(tmp_path / "hub", port)
    hub = start(hub_cfg)
    cfg = terminal_config(tmp_path / "t", f"http://127.0.0.1:{port}", app_id="3003", limit=7)
    model = Runtime(load_config(cfg)).model_id
    rng, users = random.Random(7), []
    store = store_of(tmp_path / "hub" / "data", "3003")
    try:
        for round_ in range(3):
            write_batch(store, model, rng, round_, users)
        catch_up(cfg)
        held = dump(tmp_path / "t" / "data", "3003")
        gone = users[:5]  # the terminal holds them; the hub deletes them before its floor
        for user in gone:
            store.delete_user(user)
            users.remove(user)
        for round_ in range(3, 6):
            write_batch(store, model, rng, round_, users)
        out = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(hub_cfg), "library", "compact",
                              "--app-id", "3003", "--keep", "40"], capture_output=True, text=True, cwd=REPO_ROOT)
        assert out.returncode == 0 and '"removed"' in out.stdout, out.stderr
        assert store.log_floor() > 0
        page = signed_feed(f"http://127.0.0.1:{port}", *feed_key("3003"), {"since": "10"}).json()
        assert page["snapshot_required"] is True and page["floor"] == store.log_floor()
        for kill in range(6):  # the snapshot, killed at random, the hub changing in between
            proc = worker(cfg, "follow")
            assert proc.stdout.readline().strip() == "READY"
            time.sleep(rng.uniform(0.3, 0.8))
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            write_batch(store, model, rng, 6 + kill, users)
        catch_up(cfg)
    finally:
        store.close()
        hub.stop()
    mine, theirs = dump(tmp_path / "t" / "data", "3003"), dump(tmp_path / "hub" / "data", "3003")
    assert mine == theirs and len(theirs["faces"]) > 300
    assert not {f[1] for f in mine["faces"]} & set(gone) and {f[1] for f in held["faces"]} & set(gone)
    lib = FaceLibrary(tmp_path / "t" / "data" / "apps" / "3003")
    try:
        assert set(lib.index.face_ids().tolist()) == {r[0] for r in lib.store._all("SELECT id FROM faces")}
    finally:
        lib.close()


def test_an_index_behind_the_compacted_log_is_rebuilt(tmp_path):
    reader, writer = FaceLibrary(tmp_path), FaceLibrary(tmp_path)  # two processes' worth of one library
    try:
        writer.register_many([(["staff"], f"u{i}", "", synthetic(f"u{i}", "m"), "append") for i in range(30)])
        assert reader.search(unit("u3/0"), None, 1)[0].user_id == "u3"
        writer.register_many([(["staff"], f"v{i}", "", synthetic(f"v{i}", "m"), "append") for i in range(30)])
        writer.delete_user("u3")
        writer.store.compact(keep=2)   # what the reader has not replayed is gone from the log
        hit = reader.search(unit("v7/0"), None, 1)
        assert hit and hit[0].user_id == "v7"
        assert len(reader.index) == reader.store.face_count() == 59
        assert all(m.user_id != "u3" for m in reader.search(unit("u3/0"), None, 3))
    finally:
        reader.close()
        writer.close()
