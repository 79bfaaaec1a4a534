"""kill -9 of a terminal while it applies the hub's pages, many times (docs/sync.md):
each page and its cursor are one transaction, so afterwards the terminal's library
equals the hub's - groups, members with user_info, faces with their embeddings - with
nothing lost and nothing twice, and its index holds exactly its faces.

The hub is a real `edge serve`; its library is written cheaply beside it (synthetic
embeddings of the terminal's model: the faces are not the point here). The terminal is
the real follower in a process of its own (tests/sync_worker.py), killed at random.
"""
from __future__ import annotations

import json
import os
import random
import sqlite3
import signal
import subprocess
import sys
import time
from pathlib import Path

from edge.aip.runtime import Runtime
from edge.config import load_config
from edge.library.library import FaceLibrary
from sync_support import dump, free_port, hub_config, start, store_of, synthetic, terminal_config, wait_until

WORKER = Path(__file__).parent / "sync_worker.py"
REPO = Path(__file__).resolve().parents[1]
KILLS = 20


def worker(config: Path, mode: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, str(WORKER), str(config), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def replica_seq(data_dir: Path) -> int:
    """The terminal's cursor, read without writing (the follower may be running)."""
    db = data_dir / "apps" / "3003" / "library.db"
    if not db.exists():
        return 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        row = con.execute("SELECT value FROM meta WHERE key='replica'").fetchone()
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        con.close()
    return json.loads(row[0])["seq"] if row else 0


def write_batch(store, model: str, rng: random.Random, round_: int, users: list[str]) -> None:
    """~200 changes of every kind: new users (one transaction), a replaced face and
    user_info, a copy into another group, a user and a membership removed."""
    new = [f"r{round_}u{i}" for i in range(60)]
    store.register_many([(["staff"] if i % 3 else ["staff", "visitors"], u, f"info {u}", synthetic(u, model), "append")
                         for i, u in enumerate(new)])
    users += new
    victim = users.pop(rng.randrange(len(users)))
    store.delete_user(victim)
    changed = rng.choice(users)
    store.register(["staff"], changed, f"renamed {round_}", synthetic(changed, model, round_), "replace")
    copied = rng.choice(users)
    if not any(g == "night" for g, _ in store.user_groups(copied)):
        store.copy_user(copied, "staff", ["night"], create_groups=True)


def test_kill_9_while_applying_pages_converges_to_the_hub(tmp_path):
    port = free_port()
    hub = start(hub_config(tmp_path / "hub", port))
    cfg = terminal_config(tmp_path / "t", f"http://127.0.0.1:{port}", app_id="3003", limit=5)
    model = Runtime(load_config(cfg)).model_id
    rng, users = random.Random(13), []
    hub_store = store_of(tmp_path / "hub" / "data", "3003")
    terminal_db = tmp_path / "t" / "data" / "apps" / "3003"
    behind = 0
    try:
        for round_ in range(20):  # a backlog of ~3,400 changes, pulled 5 a page
            write_batch(hub_store, model, rng, round_, users)
        for kill in range(KILLS):
            if kill % 4 == 3:  # and the hub goes on changing between kills
                write_batch(hub_store, model, rng, 20 + kill, users)
            start_seq = replica_seq(tmp_path / "t" / "data")
            proc = worker(cfg, "follow")
            assert proc.stdout.readline().strip() == "READY"
            # kill once it is applying pages again (or after 5 s), a little later at random
            wait_until(lambda: replica_seq(tmp_path / "t" / "data") > start_seq, timeout=5, step=0.01)
            time.sleep(rng.uniform(0, 0.1))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            seq = replica_seq(terminal_db.parents[1])
            behind += 0 < seq < hub_store.last_seq()
        head = hub_store.last_seq()
        assert head > 3000
        final = worker(cfg, "catch-up")
        out, _ = final.communicate(timeout=120)
        assert final.returncode == 0, out
        assert f"CAUGHT-UP {head}" in out
    finally:
        hub_store.close()
        hub.stop()
    print(f"kills that left the terminal behind the hub: {behind}/{KILLS}")
    assert behind >= KILLS // 2, behind   # most kills landed while pages were still being applied
    mine, theirs = dump(tmp_path / "t" / "data", "3003"), dump(tmp_path / "hub" / "data", "3003")
    assert len(theirs["faces"]) > 1000 and mine == theirs
    lib = FaceLibrary(terminal_db)  # the local index follows the local log: exactly the store's faces
    try:
        assert set(lib.index.face_ids().tolist()) == {r[0] for r in lib.store._all("SELECT id FROM faces")}
    finally:
        lib.close()


def test_kill_9_of_the_hub_mid_writes_never_leaves_a_terminal_ahead(tmp_path):
    """The feed serves committed changes only: after a hub killed mid-writes restarts,
    its log holds everything a terminal applied, so the seqs it hands out next are new
    to the terminal and both end equal (a change applied but lost by the hub would make
    the next change reuse its seq, and the terminal skip it)."""
    import threading

    import requests

    from sync_support import token
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    hub_cfg = hub_config(tmp_path / "hub", port)
    hub = start(hub_cfg)
    follower = worker(terminal_config(tmp_path / "t", url, app_id="3003"), "follow")
    assert follower.stdout.readline().strip() == "READY"
    try:
        for kill in range(3):
            tok, stop = token(url, "AK3003hub", "SK3003-hub-secret"), threading.Event()

            def write(n=kill):
                i = 0
                while not stop.is_set():
                    try:
                        requests.post(f"{url}/rest/2.0/face/v3/faceset/group/add", params={"access_token": tok},
                                      json={"group_id": f"k{n}g{i}"}, timeout=5)
                    except requests.RequestException:
                        return
                    i += 1
            writer = threading.Thread(target=write)
            writer.start()
            time.sleep(random.uniform(0.5, 1.0))
            hub.proc.send_signal(signal.SIGKILL)
            hub.proc.wait(30)
            stop.set()
            writer.join(10)
            hub = start(hub_cfg)
        hub_store = store_of(tmp_path / "hub" / "data", "3003")
        for i in range(20):  # seqs after the kills: any the terminal had from a lost change would be reused here
            hub_store.add_group(f"after{i}")
        head = hub_store.last_seq()
        hub_store.close()
        assert head > 20
        assert wait_until(lambda: replica_seq(tmp_path / "t" / "data") == head, timeout=30)
        assert dump(tmp_path / "t" / "data", "3003") == dump(tmp_path / "hub" / "data", "3003")
    finally:
        follower.kill()
        follower.wait(10)
        hub.stop()
