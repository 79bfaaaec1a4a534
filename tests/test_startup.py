"""Start-up on a slow card (docs/storage.md): the library opens with the saved vectors
and reads its graph after. Searches meanwhile are exact, enrolments and deletions made
meanwhile are answered, the graph then agrees, and a kill mid-load damages nothing.

The slow card is stood in for by holding the graph's read back (FaceIndex._read_graph
waits for the test, or sleeps in the worker); every part is the real one, on real files.
scripts/bench_startup.py measures it on a throttled disk."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from edge.library.index import FaceIndex, read_manifest
from edge.library.library import FaceLibrary, close_library, graph_loading, open_library

sys.path.insert(0, str(Path(__file__).parent))
from library_worker import embedding, record  # noqa: E402
from test_library_durability import REPO, WORKER, assert_consistent  # noqa: E402

OPTS = {"exact_limit": 500}  # a graph from 500 faces: a small library behaves as a large one
USERS = [f"s{i}" for i in range(2000)]


@pytest.fixture
def saved(tmp_path) -> Path:
    """A library of 2,000 users, one face each, saved with its graph (app a1 of data_dir tmp_path)."""
    tmp_path = tmp_path / "apps" / "a1"
    lib = FaceLibrary(tmp_path, index_options=OPTS)
    lib.register_many([(["staff"], u, f"info {u}", record(u), "append") for u in USERS])
    assert lib.wait_index(60)
    lib.close()
    assert "hnsw" in read_manifest(tmp_path / "index")["files"]
    return tmp_path


@pytest.fixture
def held_graph(monkeypatch):
    """The graph's read waits until the test sets the event (a slow card)."""
    release = threading.Event()
    read_graph = FaceIndex._read_graph

    def slow(due, capacity):
        assert release.wait(60)
        return read_graph(due, capacity)

    monkeypatch.setattr(FaceIndex, "_read_graph", staticmethod(slow))
    yield release
    release.set()


def probes(n: int, rng) -> np.ndarray:
    """Enrolled faces seen again (noise as another photo of the same person) and strangers."""
    own = np.stack([embedding(u) for u in rng.choice(USERS, n // 2)])
    own = own + rng.standard_normal(own.shape).astype(np.float32) * 0.04
    strangers = rng.standard_normal((n - n // 2, 128)).astype(np.float32)
    q = np.concatenate([own, strangers])
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def test_an_index_without_its_graph_yet_is_exact_and_the_graph_then_agrees(saved):
    index, _ = FaceIndex.load(saved / "index", 128, graph_later=True, **OPTS)
    assert index.graph_loading and not index.graph_serves and index.stats()["hnsw"] is False
    rng = np.random.default_rng(3)
    qs = probes(60, rng)
    for q in qs:
        assert index.search(q, 5) == index.exact(q, 5)  # the whole matrix: no graph involved
    ids = index.face_ids()
    gone, moved = ids[:30], ids[30:40]
    gone_slots = {int(f): index._slot[int(f)] for f in gone}
    gone_vecs = {int(f): index.vector(f) for f in gone}
    index.remove(gone)  # changes while loading: the graph has these, must not answer them
    index.add(moved, 1, probes(10, rng))
    new = np.arange(10**6, 10**6 + 20)
    new_vecs = probes(20, rng)
    index.add(new, 1, new_vecs)  # and lacks these (in 20 of the 30 freed slots)
    for q in qs:
        assert index.search(q, 5) == index.exact(q, 5)
    assert index.attach_graph() and not index.graph_loading and index.graph_serves
    assert index.pending == 30  # the moved and new faces, searched exactly until inserted
    freed = {f: s for f, s in gone_slots.items() if index._ids[s] == 0}
    assert len(freed) == 10
    for f, slot in freed.items():  # deleted in the graph itself, not only filtered by the re-rank
        labels, _ = index._hnsw.knn_query(gone_vecs[f], k=5)
        assert slot not in labels[0].tolist()
    for fid, v in zip(new, new_vecs):
        assert index.search(v, 1)[0][0] == fid
    for q in qs:
        got, want = index.search(q, 5), index.exact(q, 5)
        assert got[0] == want[0]  # the graph serves, the answer is the exact one
        assert not set(gone.tolist()) & {h[0] for h in got}
    while index.insert_pending():
        pass
    for fid, v in zip(new, new_vecs):
        assert index.search(v, 1)[0][0] == fid
    assert index.stats()["hnsw_count"] == 2000  # the reused slots moved in place: no new node


def test_a_library_answers_exactly_while_its_graph_loads_then_the_graph_serves(saved, held_graph):
    lib = FaceLibrary(saved, index_options=OPTS)
    try:
        assert lib.index_source == "loaded" and lib.index.graph_loading
        rng = np.random.default_rng(4)
        qs = probes(40, rng)
        before = [lib.search(q, None, 3) for q in qs]
        for q, got in zip(qs, before):  # exact: the best face's owner, scores included
            best = lib.index.exact(q, 1)[0]
            assert got[0].similarity == pytest.approx(best[2], abs=1e-6)
        lib.register(["staff"], "late", "info late", record("late"))  # enrolled while loading
        lib.delete_user(USERS[0])
        assert lib.search(embedding("late"), None, 1)[0].user_id == "late"
        assert lib.search(embedding(USERS[0]), None, 1)[0].user_id != USERS[0]
        assert lib.index.graph_loading  # all of that before the graph was in
        held_graph.set()
        assert lib.wait_index(60) and lib.index.graph_serves
        after = [lib.search(q, None, 3) for q in qs]
        assert [a[0].user_id for a in after] == [b[0].user_id for b in before]
        assert lib.search(embedding("late"), None, 1)[0].user_id == "late"
        assert lib.search(embedding(USERS[0]), None, 1)[0].user_id != USERS[0]
        assert_consistent(lib, ["late"] + USERS[1:200])
    finally:
        lib.close()
    lib = FaceLibrary(saved, index_options=OPTS, graph_in_background=False)  # its save had the graph
    try:
        assert lib.index_source == "loaded" and lib.index.stats()["hnsw_count"] >= 2000
        assert_consistent(lib, ["late"] + USERS[1:200])
    finally:
        lib.close()


def test_closing_while_the_graph_loads_saves_it_with_the_graph(saved, held_graph):
    lib = FaceLibrary(saved, index_options=OPTS)
    lib.register(["staff"], "late", "info late", record("late"))  # something to save at close
    closer = threading.Thread(target=lib.close)
    closer.start()
    closer.join(0.5)
    assert closer.is_alive()  # waits for the graph: a save without it would drop it
    held_graph.set()
    closer.join(60)
    manifest = read_manifest(saved / "index")
    assert "hnsw" in manifest["files"] and manifest["count"] == 2001


def test_a_damaged_graph_file_is_set_aside_and_rebuilt_while_searches_stay_exact(saved, caplog):
    graph = next((saved / "index").glob("*.hnsw"))
    damaged = graph.read_bytes()[: graph.stat().st_size // 2]
    graph.write_bytes(damaged)
    caplog.set_level(logging.WARNING)
    lib = FaceLibrary(saved, index_options=OPTS)
    try:
        assert lib.index_source == "loaded"  # the vectors check out: served at once
        assert_consistent(lib, USERS[:100])
        assert lib.wait_index(120) and lib.index.graph_serves
        assert_consistent(lib, USERS[:100])
    finally:
        lib.close()
    aside = next(saved.glob("index.damaged-*"))
    assert (aside / graph.name).read_bytes() == damaged  # kept, not overwritten
    assert any(str(graph) in r.getMessage() for r in caplog.records)
    assert "hnsw" in read_manifest(saved / "index")["files"]  # saved afresh once rebuilt


def test_kill_9_while_the_graph_loads_loses_nothing_and_damages_nothing(saved):
    files = {p.name: p.read_bytes() for p in (saved / "index").iterdir()}
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, str(WORKER), str(saved), "loading", "k", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    for line in proc.stdout:
        lines.append(line.split())
        if line.startswith("DEL "):
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert lines[0] == ["OPEN", "1"] and lines[-1] == ["DEL", "k0", "1"], (lines, proc.stderr.read())
    acked = [w[1] for w in lines if w[0] == "ACK"]
    assert len(acked) == 30
    assert {p.name: p.read_bytes() for p in (saved / "index").iterdir()} == files  # nothing written
    lib = FaceLibrary(saved, index_options=OPTS)
    try:
        assert lib.index_source == "loaded"  # the old save, caught up from the log
        assert not list(saved.glob("index.*-*"))  # nothing set aside
        assert_consistent(lib, acked[1:] + USERS[:100])
        assert lib.search(embedding("k0"), None, 1)[0].user_id != "k0"  # its deletion was acknowledged too
        assert lib.wait_index(60)
        assert_consistent(lib, acked[1:] + USERS[:100])
    finally:
        lib.close()


def test_health_names_an_app_whose_graph_is_loading_until_it_is_in(saved, held_graph):
    data_dir = saved.parents[1]
    lib = open_library(data_dir, "a1", index_options=OPTS)
    try:
        assert graph_loading(data_dir, "a1") and not graph_loading(data_dir, "a2")  # /health's index_loading
        assert lib.search(embedding(USERS[5]), None, 1)[0].user_id == USERS[5]
        held_graph.set()
        assert lib.wait_index(60) and not graph_loading(data_dir, "a1")
    finally:
        close_library(data_dir, "a1")
