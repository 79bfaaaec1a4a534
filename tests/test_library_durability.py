"""Nothing acknowledged is lost: kill -9 mid-enrollment, two processes on one library,
an index that lags, is foreign, or is half-saved. Real subprocesses, real SQLite files."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from edge.library.library import FaceLibrary
from edge.library.store import LibraryStore

sys.path.insert(0, str(Path(__file__).parent))
from library_worker import embedding, record  # noqa: E402

WORKER = Path(__file__).parent / "library_worker.py"
REPO = Path(__file__).resolve().parents[1]


def start_worker(directory: Path, prefix: str, count: int, save_every: int = 0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, str(WORKER), str(directory), "enroll", prefix, str(count),
                             str(save_every)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def assert_consistent(lib: FaceLibrary, users: list[str]) -> None:
    """Every user present with exactly its one face, found first by its own embedding;
    no member without a face; the index holds exactly the store's faces."""
    store = lib.store
    assert len(lib.index) == store.face_count()
    assert set(lib.index.face_ids().tolist()) == {r[0] for r in store._all("SELECT id FROM faces")}
    assert store._one("SELECT COUNT(*) FROM members m WHERE NOT EXISTS "
                      "(SELECT 1 FROM faces f WHERE f.member_ref = m.id)") == 0
    for uid in users:
        assert store.user_groups(uid) == [("staff", f"info {uid}")]
        best = lib.search(embedding(uid), ["staff"], 1)
        assert best and best[0].user_id == uid and best[0].similarity > 0.999


@pytest.mark.parametrize("save_every", [0, 7])
def test_kill_9_during_bulk_enrollment_loses_nothing_acknowledged(tmp_path, save_every):
    proc = start_worker(tmp_path, "u", 100_000, save_every)
    acked = []
    for line in proc.stdout:
        acked.append(line.split()[1])
        if len(acked) >= 150:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # whatever it printed after our last read was also acknowledged
    acked += [line.split()[1] for line in proc.stdout.read().splitlines() if line.startswith("ACK ")]
    lib = FaceLibrary(tmp_path)
    try:
        assert_consistent(lib, acked)
        # at most the one registration in flight may have committed without its ACK
        assert len(acked) <= lib.store.face_count() <= len(acked) + 1
    finally:
        lib.close()


def test_kill_9_during_a_background_graph_build_leaves_a_consistent_library(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, str(WORKER), str(tmp_path), "bulk", "b", "100000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    acked, pending_seen = [], 0
    for line in proc.stdout:
        _, pending, *uids = line.split()
        acked += uids
        pending_seen = max(pending_seen, int(pending))
        if len(acked) >= 3000:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    for line in proc.stdout.read().splitlines():
        if line.startswith("ACK "):
            acked += line.split()[2:]
    assert pending_seen > 0  # the kill landed while graph inserts were still pending
    lib = FaceLibrary(tmp_path, index_options={"exact_limit": 500})
    try:
        assert_consistent(lib, acked)  # before the reopened library's graph is built ...
        assert lib.wait_index(120)
        assert lib.index.stats()["hnsw_count"] >= len(lib.index)
        assert_consistent(lib, acked)  # ... and after
        assert len(acked) <= lib.store.face_count() <= len(acked) + 300
    finally:
        lib.close()


def test_bulk_registration_searchable_at_once_single_one_inserted_at_once(tmp_path):
    lib = FaceLibrary(tmp_path, index_options={"exact_limit": 500})
    try:
        users = [f"p{i}" for i in range(1500)]
        lib.register_many([(["staff"], u, f"info {u}", record(u), "append") for u in users[:1000]])
        assert_consistent(lib, users[:1000])  # searchable whether or not the graph is built yet
        assert lib.wait_index(60) and lib.index.stats()["hnsw_count"] == 1000
        for u in users[1000:1010]:  # an enrolment: into the graph before register returns, as before
            lib.register(["staff"], u, f"info {u}", record(u))
            assert lib.index.pending == 0
        assert lib.index.stats()["hnsw_count"] == 1010
        assert_consistent(lib, users[:1010])
    finally:
        lib.close()


def test_a_rebuilt_index_is_searchable_at_once_and_its_graph_saved(tmp_path):
    users = [f"r{i}" for i in range(1200)]
    lib = FaceLibrary(tmp_path, index_options={"exact_limit": 500})
    lib.register_many([(["staff"], u, f"info {u}", record(u), "append") for u in users])
    lib.wait_index()
    lib.close()
    for p in (tmp_path / "index").glob("*"):
        p.unlink()
    lib = FaceLibrary(tmp_path, index_options={"exact_limit": 500})  # rebuilt from the store
    try:
        assert lib.index_source == "rebuilt"
        assert_consistent(lib, users)  # whether or not its graph is built yet
        assert lib.wait_index(60)
    finally:
        lib.close()
    lib = FaceLibrary(tmp_path, index_options={"exact_limit": 500})  # its graph was saved
    try:
        assert lib.index_source == "loaded" and lib.index.pending == 0
        assert lib.wait_index(60) and lib.index.stats()["hnsw_count"] == 1200  # read after the open
        assert_consistent(lib, users)
    finally:
        lib.close()


def test_two_processes_write_and_search_one_library(tmp_path):
    lib = FaceLibrary(tmp_path)                 # "the service", opened first
    proc = start_worker(tmp_path, "w", 120)     # "the enrollment script"
    mine, errors = [], []

    def write_here():
        try:
            for i in range(120):
                uid = f"s{i}"
                lib.register(["staff"], uid, f"info {uid}", record(uid))
                mine.append(uid)
        except Exception as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    writer = threading.Thread(target=write_here)
    writer.start()
    seen_live = False
    theirs = []
    for line in proc.stdout:
        uid = line.split()[1]
        theirs.append(uid)
        # the searcher sees the other process's registration without a restart
        best = lib.search(embedding(uid), ["staff"], 1)
        assert best and best[0].user_id == uid
        seen_live = True
    writer.join()
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    assert not errors and seen_live
    assert len(theirs) == len(mine) == 120
    assert lib.store.face_count() == 240            # no lost update
    assert_consistent(lib, mine + theirs)
    lib.close()


def test_deletions_in_another_process_never_leave_stale_hits(tmp_path):
    searcher = FaceLibrary(tmp_path)
    for i in range(30):
        searcher.register(["staff"], f"u{i}", f"info u{i}", record(f"u{i}"))
    other = FaceLibrary(tmp_path)  # a second handle: its own connection and index, like a process
    other.delete_user("u3")
    other.close()
    hits = searcher.search(embedding("u3"), ["staff"], 5)
    assert all(h.user_id != "u3" for h in hits)
    assert "u3" not in {u for u, _ in searcher.store.list_group_users("staff", 0, 100)}
    searcher.close()


def test_saved_index_is_loaded_replayed_or_rebuilt(tmp_path):
    lib = FaceLibrary(tmp_path)
    for i in range(40):
        lib.register(["staff"], f"u{i}", f"info u{i}", record(f"u{i}"))
    lib.close()

    lib = FaceLibrary(tmp_path)
    assert lib.index_source == "loaded"
    assert_consistent(lib, [f"u{i}" for i in range(40)])
    # changes after the save (index not saved again): replayed on the next start
    lib.store.register(["staff"], "late", "info late", record("late"))
    lib.store.delete_user("u0")
    lib.store.close()

    lib = FaceLibrary(tmp_path)
    assert lib.index_source == "loaded"
    assert_consistent(lib, [f"u{i}" for i in range(1, 40)] + ["late"])
    assert all(h.user_id != "u0" for h in lib.search(embedding("u0"), None, 3))
    lib.close()

    # an index saved for another library (same directory layout, other uuid) is rebuilt
    other = tmp_path / "other"
    o = FaceLibrary(other)
    o.register(["staff"], "x", "info x", record("x"))
    o.close()
    for f in (other / "index").iterdir():
        (tmp_path / "index" / f.name).write_bytes(f.read_bytes())
    lib = FaceLibrary(tmp_path)
    assert lib.index_source == "rebuilt"
    assert_consistent(lib, [f"u{i}" for i in range(1, 40)] + ["late"])
    lib.close()


def test_change_log_orders_every_change(tmp_path):
    store = LibraryStore(tmp_path / "library.db")
    store.register(["a", "b"], "u1", "one", record("u1"))
    store.copy_user("u1", "a", ["c"], create_groups=True)
    store.delete_user("u1", ["b"])
    store.delete_group("c")
    changes = store.changes_since(0)
    seqs = [c.seq for c in changes]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and seqs[-1] == store.last_seq()
    ops = [(c.op, c.group_id) for c in changes]
    assert ops == [("group.add", "a"), ("user.add", "a"), ("face.add", "a"),
                   ("group.add", "b"), ("user.add", "b"), ("face.add", "b"),
                   ("group.add", "c"), ("user.add", "c"), ("face.add", "c"),
                   ("face.delete", "b"), ("user.delete", "b"),
                   ("face.delete", "c"), ("user.delete", "c"), ("group.delete", "c")]
    added = changes[2].data
    assert np.allclose(np.frombuffer(__import__("base64").b64decode(added["embedding"]), np.float32),
                       embedding("u1"))
    # a failed operation leaves no trace, in the tables or the log
    before = store.last_seq()
    with pytest.raises(Exception):
        store.register(["a", "zz"], "u1", "one", record("u1"))  # face already in a: refused
    assert store.last_seq() == before and not store.group_exists("zz")
    store.close()
