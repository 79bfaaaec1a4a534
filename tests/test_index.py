"""FaceIndex against brute force: exact and HNSW modes, groups, removal, reuse, persistence."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest

import edge.library.index as index_module
from edge.library.index import FaceIndex

DIM = 128


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def library(n: int, seed: int = 0, n_groups: int = 10):
    """n random unit vectors, ids 7, 14, ... (never the slot numbers) and random groups."""
    rng = np.random.default_rng(seed)
    vecs = unit(rng.standard_normal((n, DIM), dtype=np.float32))
    ids = np.arange(1, n + 1, dtype=np.int64) * 7  # ids unrelated to slots
    gids = rng.integers(1, n_groups + 1, n).astype(np.int64)
    return ids, gids, vecs


def near(vecs: np.ndarray, n: int, seed: int = 1, noise: float = 0.8) -> np.ndarray:
    """Queries that are noisy copies of library faces (cosine ~0.6 to their source)."""
    rng = np.random.default_rng(seed)
    src = vecs[rng.integers(0, len(vecs), n)]
    return unit(src + rng.standard_normal(src.shape, dtype=np.float32) * noise / np.sqrt(DIM))


def brute(ids, gids, vecs, q, k, groups=None, alive=None):
    keep = np.ones(len(ids), bool) if alive is None else alive.copy()
    if groups is not None:
        keep &= np.isin(gids, list(groups))
    rows = np.flatnonzero(keep)
    sims = vecs[rows] @ q
    order = np.lexsort((ids[rows], -sims))[:k]
    return [(int(ids[rows[i]]), int(gids[rows[i]]), float(sims[i])) for i in order]


def same(got, want):
    assert [h[:2] for h in got] == [h[:2] for h in want]
    np.testing.assert_allclose([h[2] for h in got], [h[2] for h in want], atol=1e-5)


def build(n, seed=0, n_groups=10, **kw):
    ids, gids, vecs = library(n, seed, n_groups)
    kw.setdefault("threads", 2)
    idx = FaceIndex(DIM, **kw)
    for a in range(0, n, 1000):
        idx.add(ids[a:a + 1000], gids[a:a + 1000], vecs[a:a + 1000])
    return idx, ids, gids, vecs


@pytest.fixture(scope="module")
def hnsw_lib():
    idx, ids, gids, vecs = build(4000, exact_limit=500)
    assert idx.stats()["hnsw"] and idx.stats()["hnsw_count"] == 4000
    return idx, ids, gids, vecs


def test_exact_mode_equals_brute_force():
    idx, ids, gids, vecs = build(3000)
    assert not idx.stats()["hnsw"]
    assert len(idx) == 3000 and int(ids[5]) in idx and 3 not in idx
    np.testing.assert_array_equal(idx.face_ids(), np.sort(ids))
    for q in list(near(vecs, 30)) + list(unit(np.random.default_rng(2).standard_normal((20, DIM)))):
        same(idx.search(q, 10), brute(ids, gids, vecs, q, 10))


def test_hnsw_mode_top1_and_exact_sims(hnsw_lib):
    idx, ids, gids, vecs = hnsw_lib
    by_id = dict(zip(ids.tolist(), range(len(ids))))
    queries = near(vecs, 400)
    hits = 0
    for q in queries:
        got = idx.search(q, 5)
        want = brute(ids, gids, vecs, q, 5)
        assert len(got) == 5 and len({h[0] for h in got}) == 5
        sims = [h[2] for h in got]
        assert sims == sorted(sims, reverse=True)
        for fid, gid, sim in got:  # every returned similarity is the exact one
            assert gid == gids[by_id[fid]]
            assert abs(sim - float(vecs[by_id[fid]] @ q)) < 1e-5
        hits += got[0][0] == want[0][0]
    assert hits >= 0.99 * len(queries)


def test_hnsw_mode_is_used_and_not_brute_force(hnsw_lib, monkeypatch):
    idx, ids, gids, vecs = hnsw_lib
    calls = []
    real = FaceIndex._hnsw_search
    monkeypatch.setattr(FaceIndex, "_hnsw_search", lambda self, *a: calls.append(a) or real(self, *a))
    idx.search(vecs[0], 3)
    assert calls


def test_small_group_inside_large_library(monkeypatch):
    # 20k faces over 10 groups plus a 5-face group 99: the filtered-HNSW pitfall case.
    idx, ids, gids, vecs = build(20_000, exact_limit=500, ef_construction=100)
    assert idx.stats()["hnsw"]
    small = ids[[3, 4000, 9000, 15000, 19999]]
    idx.add(small, 99, vecs[[3, 4000, 9000, 15000, 19999]])
    gids = gids.copy()
    gids[[3, 4000, 9000, 15000, 19999]] = 99
    for q in list(near(vecs, 20, seed=3)) + [vecs[4000]]:
        got = idx.search(q, 10, groups=[99])
        assert sorted(h[0] for h in got) == sorted(small.tolist())
        same(got, brute(ids, gids, vecs, q, 10, groups=[99]))
        same(idx.search(q, 3, groups=[99, 12345]), brute(ids, gids, vecs, q, 3, groups=[99]))

    # A large restriction (half the library) goes through hnswlib's filter.
    calls = []
    real = FaceIndex._hnsw_search
    monkeypatch.setattr(FaceIndex, "_hnsw_search", lambda self, *a: calls.append(a) or real(self, *a))
    groups = [1, 2, 3, 4, 5]
    queries = near(vecs[np.isin(gids, groups)], 100, seed=4)
    top1 = 0
    for q in queries:
        got = idx.search(q, 5, groups=groups)
        want = brute(ids, gids, vecs, q, 5, groups=groups)
        assert len(got) == 5 and all(h[1] in groups for h in got)
        top1 += got[0][0] == want[0][0]
    assert top1 >= 99 and len(calls) == len(queries)

    # When hnswlib cannot fill the candidate list, the search falls back to exact.
    class Failing:
        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        def knn_query(self, *a, **kw):
            raise RuntimeError("Cannot return the results in a contiguous 2D array")

    idx._hnsw = Failing(idx._hnsw)
    for q in queries[:5]:
        same(idx.search(q, 5, groups=groups), brute(ids, gids, vecs, q, 5, groups=groups))
        same(idx.search(q, 5), brute(ids, gids, vecs, q, 5))


@pytest.mark.parametrize("exact_limit", [100_000, 500])
def test_removal_never_returns_removed(exact_limit, tmp_path):
    idx, ids, gids, vecs = build(3000, exact_limit=exact_limit)
    rng = np.random.default_rng(5)
    gone = rng.choice(len(ids), 1000, replace=False)
    queries = np.concatenate([vecs[gone[:50]], near(vecs, 50)])  # removed faces as queries too
    gone_slots = [idx._slot[f] for f in ids[gone[:20]].tolist()]
    idx.remove(np.append(ids[gone], [-1, 123456789]))  # unknown ids ignored
    if idx._hnsw is not None:  # marked deleted in the graph, not just filtered out
        for s in gone_slots:
            with pytest.raises(RuntimeError):
                idx._hnsw.get_items([s])
    alive = np.ones(len(ids), bool)
    alive[gone] = False
    assert len(idx) == 2000 and int(ids[gone[0]]) not in idx
    removed = set(ids[gone].tolist())
    idx.save(tmp_path, {"seq": 1})
    loaded, _ = FaceIndex.load(tmp_path, DIM, exact_limit=exact_limit)
    for index in (idx, loaded):
        for q in queries:
            got = index.search(q, 20)
            assert len(got) == 20 and not removed & {h[0] for h in got}
            assert not removed & {h[0] for h in index.search(q, 20, groups=[1, 2])}
            if exact_limit > len(ids):
                same(got, brute(ids, gids, vecs, q, 20, alive=alive))
            else:
                assert got[0][0] == brute(ids, gids, vecs, q, 1, alive=alive)[0][0] or got[0][2] > 0.99
    rest = np.flatnonzero(alive)[50:]  # leave 50 faces among 3000 slots: mostly holes
    idx.remove(ids[rest])
    alive[rest] = False
    for q in queries[:10]:
        same(idx.search(q, 20), brute(ids, gids, vecs, q, 20, alive=alive))
    idx.remove(ids)
    assert len(idx) == 0 and idx.search(vecs[0], 5) == [] and idx.search(vecs[0], 5, [1]) == []


def test_slot_reuse_does_not_grow_the_graph():
    idx, ids, gids, vecs = build(2000, exact_limit=500)
    before = idx.stats()
    rng = np.random.default_rng(6)
    for round_ in range(3):
        gone = rng.choice(len(ids), 300, replace=False)
        idx.remove(ids[gone])
        new_ids = ids[gone] + 1_000_000 * (round_ + 1)
        new_vecs = unit(rng.standard_normal((300, DIM), dtype=np.float32))
        idx.add(new_ids, 3, new_vecs)
        ids[gone], gids[gone], vecs[gone] = new_ids, 3, new_vecs
    after = idx.stats()
    assert len(idx) == 2000
    for key in ("slots", "capacity", "hnsw_count", "hnsw_capacity"):
        assert after[key] == before[key], key
    for i in range(0, 2000, 20):  # every face, old or new, is its own nearest neighbour
        assert idx.search(vecs[i], 1)[0][0] == ids[i]
    # Growing past the capacity resizes both the matrix and the graph.
    more = unit(rng.standard_normal((before["capacity"], DIM), dtype=np.float32))
    idx.add(np.arange(1, len(more) + 1) * 10_000_019, 1, more)
    grown = idx.stats()
    assert grown["capacity"] == grown["hnsw_capacity"] >= 2000 + len(more)
    assert idx.search(more[-1], 1)[0][0] == len(more) * 10_000_019


@pytest.mark.parametrize("exact_limit", [100_000, 500])
def test_replace_existing_id(exact_limit):
    idx, ids, gids, vecs = build(2000, exact_limit=exact_limit)
    rng = np.random.default_rng(7)
    fid, old = int(ids[10]), vecs[10]
    new = unit(rng.standard_normal(DIM, dtype=np.float32))
    idx.add([fid], [42], new[None])
    assert len(idx) == 2000
    got = idx.search(new, 1)
    assert got[0][:2] == (fid, 42) and abs(got[0][2] - 1) < 1e-5
    assert all(h[0] != fid or abs(h[2] - float(old @ new)) < 1e-5 for h in idx.search(old, 5))
    assert fid not in {h[0] for h in idx.search(new, 2000, groups=[int(gids[10])])}
    assert [h[0] for h in idx.search(new, 5, groups=[42])] == [fid]
    # The same id twice in one batch: the last one wins.
    idx.add([fid, fid], [43, 44], np.stack([old, new]))
    assert len(idx) == 2000 and idx.search(new, 1, groups=[44])[0][0] == fid
    assert idx.search(new, 1, groups=[43]) == []


@pytest.mark.parametrize("exact_limit", [100_000, 500])
def test_save_load_round_trip(exact_limit, tmp_path):
    idx, ids, gids, vecs = build(3000, exact_limit=exact_limit)
    idx.remove(ids[:100])
    meta = {"seq": 17, "library_uuid": "abc", "nested": [1, {"x": None}]}
    idx.save(tmp_path / "ix", meta)
    idx.save(tmp_path / "ix", meta)  # a second save replaces the first, leaving one set of files
    assert len(list((tmp_path / "ix").glob("index-*"))) == (5 if exact_limit == 500 else 4)  # + owners
    loaded, got_meta = FaceIndex.load(tmp_path / "ix", DIM, exact_limit=exact_limit)
    assert got_meta == meta
    assert loaded.stats()["hnsw"] == idx.stats()["hnsw"]
    np.testing.assert_array_equal(loaded.face_ids(), idx.face_ids())
    for q in near(vecs, 50):
        assert loaded.search(q, 10) == idx.search(q, 10)
        assert loaded.search(q, 10, groups=[2, 5]) == idx.search(q, 10, groups=[2, 5])
    loaded.add([999_999_999], [1], vecs[:1])  # still writable after loading (ids[0] was removed)
    assert loaded.search(vecs[0], 1)[0][:2] == (999_999_999, 1)


def test_empty_index_round_trip(tmp_path):
    FaceIndex(DIM).save(tmp_path, {"seq": 0})
    loaded, meta = FaceIndex.load(tmp_path, DIM)
    assert meta == {"seq": 0} and len(loaded) == 0 and loaded.search(np.ones(DIM), 3) == []


def test_load_rejects_partial_or_corrupt(tmp_path, monkeypatch):
    idx, ids, gids, vecs = build(1000, exact_limit=500)
    d = tmp_path / "ix"
    assert FaceIndex.load(d) is None  # missing
    idx.save(d, {"seq": 1})
    assert FaceIndex.load(d, dim=64) is None  # another dimension
    assert FaceIndex.load(d)[1] == {"seq": 1}

    # A crash mid-save leaves the previous save loadable.
    real = index_module._write_raw
    written = []

    def crash(path, arr):
        if written:
            raise OSError("power cut")
        written.append(path)
        return real(path, arr)

    monkeypatch.setattr(index_module, "_write_raw", crash)
    idx.remove(ids[:10])
    with pytest.raises(OSError):
        idx.save(d, {"seq": 2})
    monkeypatch.undo()
    loaded, meta = FaceIndex.load(d)
    assert meta == {"seq": 1} and len(loaded) == 1000

    manifest = json.loads((d / "manifest.json").read_text())  # the crash left an orphan file
    files = {"." + part: d / f["name"] for part, f in manifest["files"].items()}
    for suffix, damage in ((".hnsw", "flip"), (".vectors", "flip"), (".face_ids", "truncate")):
        good = files[suffix].read_bytes()
        bad = bytearray(good)
        if damage == "flip":
            bad[len(bad) // 2] ^= 0x40
        else:
            del bad[-8:]
        files[suffix].write_bytes(bytes(bad))
        assert FaceIndex.load(d) is None, suffix
        files[suffix].write_bytes(good)
        assert FaceIndex.load(d) is not None
    (d / "manifest.json").write_text('{"format": 1, "dim": 128, "sl')
    assert FaceIndex.load(d) is None
    (d / "manifest.json").unlink()
    assert FaceIndex.load(d) is None


@pytest.mark.parametrize("exact_limit", [100_000, 500])
def test_k_larger_than_population(exact_limit):
    idx, ids, gids, vecs = build(700, exact_limit=exact_limit, n_groups=3)
    q = near(vecs, 1)[0]
    same(idx.search(q, 5000), brute(ids, gids, vecs, q, 5000))
    same(idx.search(q, 5000, groups=[2]), brute(ids, gids, vecs, q, 5000, groups=[2]))
    assert idx.search(q, 0) == [] and idx.search(q, 3, groups=[]) == []
    tiny = FaceIndex(DIM)
    assert tiny.search(q, 3) == []
    tiny.add(ids[:4], gids[:4], vecs[:4])
    same(tiny.search(q, 10), brute(ids[:4], gids[:4], vecs[:4], q, 10))


def test_concurrent_searches_during_writes():
    ids, gids, vecs = library(3000, seed=8)
    idx = FaceIndex(DIM, exact_limit=1000, threads=2)
    idx.add(ids[:500], gids[:500], vecs[:500])
    queries = near(vecs[:500], 50)
    errors, stop = [], threading.Event()

    def searcher():
        try:
            while not stop.is_set():
                for q in queries:
                    assert len(idx.search(q, 5)) == 5
                    idx.search(q, 5, groups=[1, 2])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for a in range(500, 3000, 250):  # crosses exact_limit: the graph is built mid-way
        idx.add(ids[a:a + 250], gids[a:a + 250], vecs[a:a + 250])
        idx.remove(ids[a - 100:a - 50])
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert idx.stats()["hnsw"] and len(idx) == 3000 - 10 * 50


# -- deferred graph inserts (a follower's bulk catch-up, FaceLibrary's builder thread) ------
def test_pending_faces_are_found_before_they_reach_the_graph():
    # 2,500 faces in the graph, 300 more deferred: below SMALL_SHARE, so a search walks the
    # graph, which does not hold them; the exact pass over the pending slots must find them.
    ids, gids, vecs = library(2800)
    idx = FaceIndex(DIM, exact_limit=500, threads=2)
    idx.add(ids[:2500], gids[:2500], vecs[:2500])
    idx.add(ids[2500:], gids[2500:], vecs[2500:], defer=True)
    assert idx.pending == 300 and idx.stats()["hnsw_count"] == 2500
    for i in range(2500, 2800, 10):
        got = idx.search(vecs[i], 3)
        assert got[0][0] == ids[i] and got[0][2] > 0.999
        got = idx.search(vecs[i], 3, [int(gids[i])])  # restricted: the group's own rows
        assert got[0][0] == ids[i]
    while idx.insert_pending(64):
        pass
    assert idx.pending == 0 and idx.stats()["hnsw_count"] == 2800
    for i in range(2500, 2800, 10):
        assert idx.search(vecs[i], 3)[0][0] == ids[i]


def test_deferred_build_gives_the_per_change_results():
    n = 4000
    per_change, ids, gids, vecs = build(n, exact_limit=500)
    bulk = FaceIndex(DIM, exact_limit=500, threads=2)
    for a in range(0, n, 250):  # a follower's pages: the graph is started empty, all pending
        bulk.add(ids[a:a + 250], gids[a:a + 250], vecs[a:a + 250], defer=True)
    assert bulk.stats()["hnsw"] and bulk.pending == n
    queries = near(vecs, 300)
    for q in queries[:30]:  # mostly pending: one exact pass, equal to brute force
        same(bulk.search(q, 5), brute(ids, gids, vecs, q, 5))
    while bulk.insert_pending():
        pass
    assert bulk.stats()["hnsw_count"] == n
    agree = sum(bulk.search(q, 1)[0][0] == per_change.search(q, 1)[0][0] == brute(ids, gids, vecs, q, 1)[0][0]
                for q in queries)
    assert agree >= 0.99 * len(queries)


def test_pending_faces_removed_or_replaced_before_the_build():
    ids, gids, vecs = library(3000)
    idx = FaceIndex(DIM, exact_limit=500, threads=2)
    idx.add(ids[:2000], gids[:2000], vecs[:2000])
    idx.add(ids[2000:], gids[2000:], vecs[2000:], defer=True)
    idx.remove(ids[2000:2100])              # pending, never in the graph
    idx.remove(ids[:50])                    # in the graph
    moved = unit(np.random.default_rng(5).standard_normal((50, DIM), dtype=np.float32))
    idx.add(ids[2100:2150], gids[2100:2150], moved, defer=True)   # pending faces replaced
    idx.add(ids[100:150], 0, vecs[100:150], defer=True)           # graph faces moved to group 0, deferred
    while idx.insert_pending(100):
        pass
    vecs = vecs.copy()
    vecs[2100:2150] = moved
    gids = gids.copy()
    gids[100:150] = 0
    alive = np.ones(3000, bool)
    alive[2000:2100] = alive[:50] = False
    assert len(idx) == alive.sum()
    for q in list(near(vecs[alive], 100)) + list(vecs[2100:2150]):
        got = idx.search(q, 5)
        assert not set(h[0] for h in got) & set(ids[~alive].tolist())
        assert got[0][:2] == brute(ids, gids, vecs, q, 1, alive=alive)[0][:2]
    assert idx.search(vecs[120], 1, [0])[0][0] == ids[120]


def test_save_mid_build_keeps_the_pending_faces(tmp_path):
    ids, gids, vecs = library(3000)
    idx = FaceIndex(DIM, exact_limit=500, threads=2)
    idx.add(ids[:2000], gids[:2000], vecs[:2000])
    idx.add(ids[2000:], gids[2000:], vecs[2000:], defer=True)
    idx.insert_pending(300)
    idx.save(tmp_path / "ix", {"seq": 1})
    loaded, _ = FaceIndex.load(tmp_path / "ix", DIM, exact_limit=500)
    assert len(loaded) == 3000 and loaded.pending == 700
    for i in range(2300, 3000, 25):        # the pending ones are found, as before the save
        assert loaded.search(vecs[i], 1)[0][0] == ids[i]
    while loaded.insert_pending():
        pass
    assert loaded.stats()["hnsw_count"] == 3000
    queries = near(vecs, 200)
    assert sum(loaded.search(q, 1)[0][0] == brute(ids, gids, vecs, q, 1)[0][0] for q in queries) >= 198


def test_searches_during_the_build_never_miss_a_face():
    ids, gids, vecs = library(6000)
    idx = FaceIndex(DIM, exact_limit=500, threads=2)
    idx.add(ids[:3000], gids[:3000], vecs[:3000])
    idx.add(ids[3000:], gids[3000:], vecs[3000:], defer=True)
    misses, stop = [], threading.Event()

    def search():
        rng = np.random.default_rng(9)
        while not stop.is_set():
            i = int(rng.integers(0, 6000))
            if idx.search(vecs[i], 1)[0][0] != ids[i]:
                misses.append(i)
    threads = [threading.Thread(target=search) for _ in range(2)]
    for t in threads:
        t.start()
    while idx.insert_pending(128):
        pass
    stop.set()
    for t in threads:
        t.join()
    assert not misses


def test_an_index_saved_with_other_graph_parameters_loads_with_its_own(tmp_path):
    """The graph's M and ef_construction are the save's, whatever this edge's defaults:
    an index built with older parameters keeps working, no rebuild."""
    idx, ids, gids, vecs = build(3000, exact_limit=500, M=12, ef_construction=40)
    idx.save(tmp_path / "ix", {"seq": 1})
    loaded, _ = FaceIndex.load(tmp_path / "ix", DIM, exact_limit=500)
    assert loaded.M == 12 and loaded.stats()["hnsw"]
    for q in near(vecs, 30):
        assert loaded.search(q, 10) == idx.search(q, 10)
