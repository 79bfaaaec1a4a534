"""FaceIndex: the in-memory vector index over the library's face embeddings.

The index is a cache derived from the SQLite store: face_id -> (group_id, 128-d unit
vector), searched by inner product (= cosine for SFace's L2-normalised embeddings).

Exact or HNSW
    Every vector lives in one contiguous float32 matrix indexed by *slot*. Up to
    `exact_limit` live faces a search is one numpy mat-vec over that matrix: exact, and
    fast enough (20k faces = 10 MB of reads, ~1 ms). Above the limit an hnswlib graph
    (space='ip') is built once, from the live slots, and then kept up to date
    incrementally; its labels are the slots. HNSW candidates are over-fetched
    (max(k*4, 50), ef >= that) and re-ranked exactly from the matrix, so every returned
    similarity is exact and only recall is approximate. Recall at a fixed ef falls as the
    graph grows, so ef grows with the library above EF_REFERENCE faces (see below).

The filter pitfall
    hnswlib's `filter=` only hides non-matching nodes from the result list; the walk
    still runs over the whole graph and stops once it holds `ef` allowed results or runs
    out of better candidates. For a group that is a tiny share of the library the walk
    exhausts its ef on non-members and returns too few (or far-from-best) members. So a
    group-restricted search goes exact over that group's own rows (per-group slot lists,
    no scan of the library) when the groups hold <= exact_limit faces or up to
    SMALL_SHARE (20 %) of the library; only larger restrictions use the filter, with ef
    raised by 1/share, and fall back to exact when it still returns fewer than k.

Slots and deletions
    A removed face's slot goes on a free list and is reused by the next add; in the graph
    the slot is mark_deleted (never returned, still used for navigation) and re-adding
    the same label later un-marks it and moves the point (hnswlib's update path), so the
    graph never grows past the slot high-water mark. We keep allow_replace_deleted off:
    hnswlib's replace_deleted picks an arbitrary deleted node and can leave a stale
    label->node entry when the new label was itself a deleted label.

Memory (scripts/bench_library.py, M=24, 1M faces, x86-64; RSS after load): ~1.47 KB per
face. 512 B float32 matrix; ~820 B hnswlib (its own 512 B copy of the vector, 2*M = 48
level-0 links = 196 B, label, label-map node, a mutex per element); ~140 B face_id dict,
per-slot ids/group ids and group lists; 8 B the face's owner (FaceLibrary's member_ref,
edge/library/owners.py). Below exact_limit (no graph): ~650 B per face.
The duplicate float32 copy (~35 %) buys the exact paths (small libraries, groups) and
the exact re-rank without going through hnswlib's per-label lookups. 1M faces ~ 1.5 GB:
a 4 GB Pi 4 holds 1M beside the models, a 2 GB one ~0.5M.

Deferred graph inserts (bulk catch-up)
    add(..., defer=True) stores the vectors and slot arrays at once but leaves the graph
    inserts *pending*; insert_pending() (FaceLibrary's builder thread) then adds them in
    chunks of BUILD_CHUNK, one hnswlib add_items each over every thread, holding only the
    graph lock for a chunk (searches wait at most one chunk, no longer than for a page of
    inserts before). Meanwhile every search stays exact for the pending faces: graph hits
    merged with an exact pass over the pending slots, or one exact pass over the whole
    matrix while more than SMALL_SHARE of the faces are pending (a snapshot). So a
    catch-up never hides a received face; it only makes searches slower until built. A
    save records the pending slots; a load resumes them. Pending slots may also sit in
    the graph (a replaced face's old position, a reused slot's deleted label): the graph
    only proposes candidates, the exact re-rank reads the matrix, so that costs recall of
    nothing returned.

The graph read after the open (a slow card)
    load(graph_later=True) reads the vectors and slot arrays only and leaves the graph
    file for attach_graph() (FaceLibrary runs it on a thread: edge/library/startup.py).
    Until then there is no graph: every search is exact over the matrix, and adds and
    removals only note their slots; attach reconciles them (live ones pending, free ones
    deleted in the graph), so the graph never answers for a state it does not hold. A
    save waits for it: the folder must keep the graph.

Thread-safety: one mutation (add/remove/save) at a time; searches share a readers-writer
lock that add/remove take exclusively, so searches run concurrently and carry on during a
save (a long write on an SD card). hnswlib queries are serialised among themselves because
`ef` is index-global.
"""
from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import hnswlib
import numpy as np
from threadpoolctl import threadpool_limits

from edge.fileio import atomic_open

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
OVERFETCH = 4  # HNSW candidates per requested result before the exact re-rank ...
MIN_CANDIDATES = 50  # ... and at least this many
# Restricted searches go exact up to this share of the library. Measured at 1M faces: the
# exact gather + mat-vec costs ~0.14 us/face (20 % = 28 ms) while a filtered walk with ef
# raised by 1/share costs ~4 us * ef / share (at 20 %: ef 1800, 40 ms; Python callback
# per visited node), so exact wins below ~20 %.
SMALL_SHARE = 0.2
FILTER_EF_MAX = 4000  # filtered HNSW searches needing more than this go exact instead
# Recall at a fixed ef falls as the graph grows (measured on synthetic identities: ef 64
# gives 99.8 % recall@1 at 100k faces but ~87 % at 1M), so ef_search is the ef for
# EF_REFERENCE faces and grows as (faces / EF_REFERENCE) ** EF_GROWTH above that. 0.6:
# ef 255 at 1M, where library-level recall@1 against exact search was 99.6 % at ef 180
# and 100 % at 270 and 360, and each 90 more ef cost ~0.15-0.3 ms (docs/storage.md,
# "1:N at 1M faces"; 0.75 gave ef 360).
EF_REFERENCE = 100_000
EF_GROWTH = 0.6
_CHUNK = 1 << 24  # file I/O block
# Reads beside searches (the graph after the open) go in small blocks: a card serves reads
# in order, and a search's own page faults (code, numpy) must not queue behind 16 MB.
_BACKGROUND_CHUNK = 1 << 20
BUILD_CHUNK = 256  # pending graph inserts per add_items call (the graph lock held ~0.1-0.2 s)
GRAPH_M = 24             # HNSW links per node (2*M at layer 0)
GRAPH_EF_CONSTRUCTION = 200
_GATHER = 4096  # rows gathered at a time for an exact search over scattered slots (2 MB)


class _RWLock:
    """Many readers or one writer. A waiting writer holds back new readers, so a steady
    stream of searches cannot starve an enrolment (saves don't take this lock at all)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0

    @contextmanager
    def read(self):
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self):
        with self._cond:
            self._waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclass(frozen=True)
class _GraphFile:
    """A saved graph not read yet (load(graph_later=True)) and what it must fit."""
    path: Path
    entry: dict          # the manifest's name, size and CRC32
    pending: np.ndarray  # slots the save had not put into the graph
    count: int           # live faces of the save
    slots: int           # the save's slot high-water mark
    dim: int


class _Rows:
    """One group's slots, unordered: O(1) append and swap-with-last removal."""

    __slots__ = ("a", "n")

    def __init__(self):
        self.a = np.empty(16, np.int64)
        self.n = 0

    def view(self) -> np.ndarray:
        return self.a[: self.n]

    def extend(self, slots: np.ndarray, pos: np.ndarray) -> None:
        m = len(slots)
        if self.n + m > len(self.a):
            grown = np.empty(max(2 * len(self.a), self.n + m), np.int64)
            grown[: self.n] = self.a[: self.n]
            self.a = grown
        self.a[self.n : self.n + m] = slots
        pos[slots] = np.arange(self.n, self.n + m)
        self.n += m

    def remove(self, slot: int, pos: np.ndarray) -> None:
        i = pos[slot]
        self.n -= 1
        last = self.a[self.n]
        self.a[i] = last
        pos[last] = i


_blas_limited = False


def single_threaded_blas() -> None:
    """Limit numpy's BLAS to one thread, once per process.

    A search is a (faces x 128) matrix times a vector. OpenBLAS splits that over its own
    threads, which then spin after each call: measured with 10k faces, each search burnt
    ~25 ms of CPU the inference threads needed (HTTP throughput -40 %), and 50 threads
    searching at once queued behind each other (18-40 ms a product instead of 0.1 ms).
    One BLAS thread is faster at this size; parallelism comes from the callers' threads.
    """
    global _blas_limited
    if not _blas_limited:
        threadpool_limits(1, user_api="blas")
        _blas_limited = True


class FaceIndex:
    def __init__(self, dim: int = 128, *, exact_limit: int = 20_000, M: int = GRAPH_M,
                 ef_construction: int = GRAPH_EF_CONSTRUCTION, ef_search: int = 64, threads: int = 1):
        single_threaded_blas()
        self.dim = int(dim)
        self.exact_limit = int(exact_limit)
        self.M = int(M)
        self.ef_construction = int(ef_construction)
        self.ef_search = int(ef_search)
        self.threads = max(1, int(threads))
        self._rw = _RWLock()
        self._hnsw_lock = threading.Lock()  # set_ef + knn_query: ef is index-global
        self._mutate = threading.Lock()  # one add/remove/save at a time
        self._install(np.empty((0, self.dim), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64), 0)
        self.has_owners = True  # False: loaded from a save without them (FaceLibrary fills them)
        self._hnsw: hnswlib.Index | None = None
        self._ef = 0
        self._graph_due: _GraphFile | None = None  # load(graph_later=True): the graph still to read
        self._touched: list[np.ndarray] | None = None  # slots added or removed meanwhile

    # -- state ----------------------------------------------------------------------
    def _install(self, vecs, ids, gids, hi, owners=None) -> None:
        """Adopt slot arrays (capacity = len(ids), slots [0, hi) in use, id 0 = free) and
        derive the face_id map, free list and group lists from them."""
        self._vecs, self._ids, self._gids, self._hi = vecs, ids, gids, hi
        self._owners = np.zeros(len(ids), np.int64) if owners is None else owners
        self._pos = np.zeros(len(ids), np.int64)
        used = ids[:hi]
        live = np.flatnonzero(used > 0)
        self._slot = dict(zip(used[live].tolist(), live.tolist()))
        self._free = np.flatnonzero(used <= 0).tolist()
        self._free_np: np.ndarray | None = None
        self._pending_parts: list[np.ndarray] = []  # slots added but not yet in the graph, oldest first
        self._pending_n = 0
        self._pending_np: np.ndarray | None = None
        self._groups: dict[int, _Rows] = {}
        self._link(live, gids[live])

    def _grow(self, need: int) -> None:
        cap = len(self._ids)
        if need <= cap:
            return
        cap = max(need, cap + cap // 4 + 1024)  # 1.25x: a 2x slack is 0.5 GB at 1M faces
        hi = self._hi
        vecs = np.zeros((cap, self.dim), np.float32)
        vecs[:hi] = self._vecs[:hi]
        ids = np.zeros(cap, np.int64)
        ids[:hi] = self._ids[:hi]
        gids = np.zeros(cap, np.int64)
        gids[:hi] = self._gids[:hi]
        pos = np.zeros(cap, np.int64)
        pos[:hi] = self._pos[:hi]
        owners = np.zeros(cap, np.int64)
        owners[:hi] = self._owners[:hi]
        self._vecs, self._ids, self._gids, self._pos, self._owners = vecs, ids, gids, pos, owners
        if self._hnsw is not None:
            with self._hnsw_lock:
                self._hnsw.resize_index(cap)

    def _link(self, slots: np.ndarray, gids: np.ndarray) -> None:
        """Append slots to their groups' row lists (vectorised per group)."""
        if not len(slots):
            return
        order = np.argsort(gids, kind="stable")
        g_sorted, s_sorted = gids[order], slots[order]
        uniq, starts = np.unique(g_sorted, return_index=True)
        ends = np.append(starts[1:], len(order))
        for g, a, b in zip(uniq.tolist(), starts.tolist(), ends.tolist()):
            rows = self._groups.get(g)
            if rows is None:
                rows = self._groups[g] = _Rows()
            rows.extend(s_sorted[a:b], self._pos)

    def _unlink(self, slot: int) -> None:
        g = int(self._gids[slot])
        rows = self._groups[g]
        rows.remove(slot, self._pos)
        if not rows.n:
            del self._groups[g]

    def _build_hnsw(self) -> None:
        """Build the graph from every live slot at once (multi-threaded); later adds and
        removals keep it current."""
        idx = hnswlib.Index(space="ip", dim=self.dim)
        idx.init_index(max_elements=max(len(self._ids), 1), M=self.M,
                       ef_construction=self.ef_construction, random_seed=100)
        live = np.flatnonzero(self._ids[: self._hi] > 0)
        idx.add_items(self._vecs[live], live, num_threads=self.threads)
        self._hnsw, self._ef = idx, 0
        self._pending_parts, self._pending_n, self._pending_np = [], 0, None

    def _start_graph(self) -> None:
        """An empty graph with every live slot pending: built later by insert_pending."""
        idx = hnswlib.Index(space="ip", dim=self.dim)
        idx.init_index(max_elements=max(len(self._ids), 1), M=self.M,
                       ef_construction=self.ef_construction, random_seed=100)
        self._hnsw, self._ef = idx, 0
        self._pending_parts, self._pending_n, self._pending_np = [], 0, None
        self._defer(np.flatnonzero(self._ids[: self._hi] > 0))

    def _defer(self, slots: np.ndarray) -> None:
        if len(slots):
            self._pending_parts.append(np.array(slots, np.int64))
            self._pending_n += len(slots)
            self._pending_np = None

    def _pending_view(self) -> np.ndarray:
        """The live pending slots (a cached array; stale extras are harmless, see above)."""
        p = self._pending_np
        if p is None:
            parts = list(self._pending_parts)
            p = np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)
            p = p[self._ids[p] > 0]
            self._pending_np = p
        return p

    @property
    def pending(self) -> int:
        """Faces added but not yet in the graph (searched exactly meanwhile)."""
        return self._pending_n

    def insert_pending(self, max_items: int = BUILD_CHUNK) -> int:
        """Insert up to max_items pending faces into the graph (one add_items over every
        thread); returns how many are still pending. Only the graph lock is held while
        hnswlib works: adds and removals of the slot arrays (the follower's next page)
        and exact searches carry on; graph searches wait for the chunk."""
        with self._mutate:
            if not self._pending_parts:
                return 0
            take, n = [], 0
            for part in self._pending_parts:
                take.append(part[: max_items - n])
                n += len(take[-1])
                if n >= max_items:
                    break
            slots = np.unique(np.concatenate(take))
            slots = slots[self._ids[slots] > 0]
            vecs, graph, parts = self._vecs[slots], self._hnsw, self._pending_parts
        if len(slots) and graph is not None:
            # A slot removed meanwhile gets a live label for a free slot: the exact
            # re-rank drops free slots, and a later add of that slot moves it.
            with self._hnsw_lock:  # hnswlib's add_items is not safe beside knn_query
                graph.add_items(vecs, slots, num_threads=self.threads)
        with self._mutate:
            if parts is not self._pending_parts:  # the graph was rebuilt meanwhile
                return self._pending_n
            left = n  # only now leave the pending list: a search never misses a face
            while left:
                part = parts[0]
                if len(part) <= left:
                    parts.pop(0)
                    left -= len(part)
                else:
                    parts[0] = part[left:]
                    left = 0
            self._pending_n -= n
            self._pending_np = None
            return self._pending_n

    # -- mutations --------------------------------------------------------------------
    def add(self, face_ids, group_ids, vectors, defer: bool = False, owners=None) -> None:
        """Add (or replace, when a face_id is already present) faces. vectors (n, dim) float32, normalised.
        defer: leave the graph inserts pending (insert_pending), for bulk catch-ups.
        owners: an opaque positive int per face (the library's member_ref; 0 when None)."""
        ids = np.atleast_1d(np.asarray(face_ids, np.int64))
        gids = np.broadcast_to(np.asarray(group_ids, np.int64), ids.shape)
        tags = np.broadcast_to(np.asarray(0 if owners is None else owners, np.int64), ids.shape)
        vecs = np.ascontiguousarray(vectors, np.float32)
        if vecs.ndim == 1 and len(ids) == 1:
            vecs = vecs[None]
        if ids.ndim != 1 or vecs.shape != (len(ids), self.dim):
            raise ValueError(f"need n face ids, group ids and (n, {self.dim}) vectors")
        if not len(ids):
            return
        if (ids <= 0).any():
            raise ValueError("face ids must be positive")
        uniq, first_of_reversed = np.unique(ids[::-1], return_index=True)
        if len(uniq) != len(ids):  # the same id twice in one batch: the last one wins
            keep = np.sort(len(ids) - 1 - first_of_reversed)
            ids, gids, vecs, tags = ids[keep], gids[keep], vecs[keep], tags[keep]
        with self._mutate, self._rw.write():
            slots = np.empty(len(ids), np.int64)
            new = []
            for i, fid in enumerate(ids.tolist()):
                s = self._slot.get(fid)
                if s is None:
                    new.append(i)
                else:  # replace in place: same slot, maybe another group
                    slots[i] = s
                    self._unlink(s)
            if new:
                reused = min(len(new), len(self._free))
                fresh = len(new) - reused
                taken = self._free[len(self._free) - reused:]
                del self._free[len(self._free) - reused:]
                self._free_np = None
                self._grow(self._hi + fresh)
                slots[new] = np.concatenate([np.asarray(taken, np.int64),
                                             np.arange(self._hi, self._hi + fresh)])
                self._hi += fresh
                self._slot.update(zip(ids[new].tolist(), slots[new].tolist()))
            self._ids[slots] = ids
            self._gids[slots] = gids
            self._vecs[slots] = vecs
            self._owners[slots] = tags
            self._link(slots, np.ascontiguousarray(gids))
            self._pending_np = None
            if self._touched is not None:  # the saved graph is still loading: reconciled at attach
                self._touched.append(slots.copy())
            elif self._hnsw is not None:
                if defer:
                    self._defer(slots)
                else:
                    # New labels are inserted; live or deleted existing labels are un-marked
                    # and moved in place (no new graph node).
                    with self._hnsw_lock:
                        self._hnsw.add_items(vecs, slots, num_threads=self.threads)
            elif len(self._slot) > self.exact_limit:
                if defer:
                    self._start_graph()
                else:
                    self._build_hnsw()

    def remove(self, face_ids) -> None:
        """Remove faces; unknown ids are ignored and the slots are reused by later adds."""
        ids = np.atleast_1d(np.asarray(face_ids, np.int64)).tolist()
        with self._mutate, self._rw.write():
            for fid in ids:
                s = self._slot.pop(fid, None)
                if s is None:
                    continue
                self._unlink(s)
                self._ids[s] = 0
                self._owners[s] = 0
                self._free.append(s)
                if self._touched is not None:
                    self._touched.append(np.array([s], np.int64))
                if self._hnsw is not None:
                    try:
                        with self._hnsw_lock:
                            self._hnsw.mark_deleted(s)
                    except RuntimeError:  # a pending face not in the graph, or its label already deleted
                        pass
            self._free_np = None
            self._pending_np = None

    # -- queries ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, face_id) -> bool:
        try:
            return int(face_id) in self._slot
        except (TypeError, ValueError):
            return False

    def vector(self, face_id: int) -> np.ndarray | None:
        """A face's stored vector (a copy), or None: what recovery rebuilds a store from."""
        with self._rw.read():
            slot = self._slot.get(int(face_id))
            return None if slot is None else self._vecs[slot].copy()

    def owners_of(self, face_ids) -> list[int]:
        """Each face's owner (add's owners), 0 for a face no longer here: a face removed
        since a search found it is never answered."""
        with self._rw.read():
            get, owners = self._slot.get, self._owners
            return [0 if (s := get(int(f))) is None else int(owners[s]) for f in face_ids]

    def owners(self) -> np.ndarray:
        """The owners of the live faces (any order, repeats included)."""
        with self._rw.read():
            return self._owners[: self._hi][self._ids[: self._hi] > 0].copy()

    def set_owners(self, face_ids, owners) -> None:
        """Owners of faces already here (faces not here are ignored): filling a save without them."""
        ids = np.asarray(face_ids, np.int64)
        tags = np.asarray(owners, np.int64)
        order = np.argsort(ids, kind="stable")
        ids, tags = ids[order], tags[order]
        with self._mutate, self._rw.write():
            if len(ids):
                used = self._ids[: self._hi]
                at = np.minimum(np.searchsorted(ids, used), len(ids) - 1)
                hit = (used > 0) & (ids[at] == used)
                self._owners[: self._hi][hit] = tags[at[hit]]
            self.has_owners = True

    def face_ids(self) -> np.ndarray:
        """Live face ids, ascending."""
        with self._rw.read():
            used = self._ids[: self._hi]
            return np.sort(used[used > 0])

    def stats(self) -> dict:
        """Sizes for monitoring: live faces, slots, graph elements/capacity, and an
        estimate of the resident bytes (spare capacity is allocated but never touched)."""
        with self._rw.read():
            h, hi = self._hnsw, self._hi
            own = (hi * (self.dim * 4 + 8 + 8 + 8)  # vector, face id, group id, position
                   + sum(r.a.nbytes for r in self._groups.values())
                   + 106 * len(self._slot))  # face_id -> slot dict (tracemalloc)
            graph = 0
            if h is not None:
                # hnswlib per element: level-0 record (vector, 2M links + count, label),
                # level, link-list pointer, label-map node; upper levels for ~1/M of them;
                # a mutex per *capacity* element (constructed, so resident).
                per = self.dim * 4 + (2 * h.M + 1) * 4 + 8 + 4 + 8 + 40
                graph = (h.get_current_count() * (per + (h.M + 1) * 4 / max(h.M - 1, 1))
                         + h.get_max_elements() * 40)
            return {"faces": len(self._slot), "slots": hi, "capacity": len(self._ids),
                    "hnsw": h is not None,
                    "hnsw_count": h.get_current_count() if h is not None else 0,
                    "hnsw_capacity": h.get_max_elements() if h is not None else 0,
                    "hnsw_pending": self._pending_n,
                    "bytes": int(own + graph)}

    def search(self, query, k: int, groups=None) -> list[tuple[int, int, float]]:
        """Top-k live faces (face_id, group_id, similarity) by exact similarity, best first,
        restricted to `groups` (an iterable of group ids) when given."""
        q = np.ascontiguousarray(query, np.float32).reshape(-1)
        if q.size != self.dim:
            raise ValueError(f"query must have {self.dim} values")
        k = int(k)
        if k <= 0:
            return []
        with self._rw.read():
            live = len(self._slot)
            behind = self._pending_n > SMALL_SHARE * live  # mostly not in the graph yet: exact
            if groups is None:
                if self._hnsw is None or live <= self.exact_limit or k >= live or behind:
                    return self._exact(q, k, None)
                n_cand, ef = self._plan(k, live)
                hits = self._hnsw_search(q, k, n_cand, ef)
                return self._exact(q, k, None) if hits is None else self._with_pending(q, k, hits, None)
            rows = [self._groups[g] for g in {int(g) for g in groups} if g in self._groups]
            n = sum(r.n for r in rows)
            if not n:
                return []
            if self._hnsw is not None and n > self.exact_limit and n > SMALL_SHARE * live and k < n and not behind:
                n_cand, ef = self._plan(k, n)
                ef = ef * live // n + 1  # only ~share of the visited nodes count towards ef
                if ef <= FILTER_EF_MAX:
                    allowed = bytearray(self._hi)
                    mask = np.frombuffer(allowed, np.uint8)
                    for r in rows:
                        mask[r.view()] = 1
                    hits = self._hnsw_search(q, k, n_cand, ef, allowed.__getitem__)
                    if hits is not None:
                        return self._with_pending(q, k, hits, {int(g) for g in groups})
            return self._exact(q, k, np.concatenate([r.view() for r in rows]))

    def exact(self, query, k: int) -> list[tuple[int, int, float]]:
        """search() over every live face exactly, whatever the size: the ground truth of
        recall figures (benchmarks)."""
        q = np.ascontiguousarray(query, np.float32).reshape(-1)
        with self._rw.read():
            return self._exact(q, int(k), None)

    def effective_ef(self, k: int) -> int:
        """The ef an unrestricted search of k faces runs with now (benchmarks, stats)."""
        return self._plan(k, len(self._slot))[1]

    def _with_pending(self, q, k, hits, groups):
        """Graph hits merged with an exact pass over the pending faces (of `groups`)."""
        if not self._pending_n:
            return hits
        pend = self._pending_view()
        if groups is not None and len(pend):
            pend = pend[np.isin(self._gids[pend], list(groups))]
        if not len(pend):
            return hits
        best = {h[0]: h for h in hits}
        for h in self._exact(q, k, pend):
            best.setdefault(h[0], h)
        return sorted(best.values(), key=lambda h: (-h[2], h[0]))[:k]

    def _plan(self, k: int, population: int) -> tuple[int, int]:
        """(candidates to fetch, ef) for an HNSW search among `population` faces."""
        n_cand = min(max(k * OVERFETCH, MIN_CANDIDATES), population)
        ef = max(self.ef_search, n_cand)
        live = len(self._slot)
        if live > EF_REFERENCE:
            ef = max(ef, math.ceil(self.ef_search * (live / EF_REFERENCE) ** EF_GROWTH))
        return n_cand, ef

    def _hnsw_search(self, q, k, n_cand, ef, allowed=None):
        """n_cand HNSW candidates (only labels `allowed` passes, if given) re-ranked
        exactly; None when that yields fewer than k (too few reachable nodes), for the
        caller to go exact."""
        with self._hnsw_lock:
            if ef != self._ef:
                self._hnsw.set_ef(ef)
                self._ef = ef
            try:
                labels, _ = self._hnsw.knn_query(q, k=n_cand, num_threads=1, filter=allowed)
            except RuntimeError:
                return None
        slots = labels[0].astype(np.int64)
        hits = self._exact(q, k, slots[self._ids[slots] > 0])  # (never stale: belt and braces)
        return hits if len(hits) >= k else None

    def _exact(self, q, k, slots):
        """Exact top-k over the given slots (all slots when None; free ones masked)."""
        if slots is None and len(self._free) > len(self._slot):  # mostly holes after mass removals
            slots = np.concatenate([r.view() for r in self._groups.values()] or [np.empty(0, np.int64)])
        if slots is None:
            sims = self._vecs[: self._hi] @ q
            if self._free:
                free = self._free_np
                if free is None:
                    free = self._free_np = np.asarray(self._free, np.int64)
                sims[free] = -np.inf
            n = len(self._slot)
        else:
            sims = self._sims(q, slots)
            n = len(slots)
        k = min(k, n)
        if k <= 0:
            return []
        if k < len(sims):
            top = np.argpartition(sims, len(sims) - k)[len(sims) - k:]
        else:
            top = np.arange(len(sims))
        top_slots = top if slots is None else slots[top]
        fids = self._ids[top_slots]
        order = np.lexsort((fids, -sims[top]))
        return list(zip(fids[order].tolist(), self._gids[top_slots[order]].tolist(),
                        sims[top[order]].astype(np.float64).tolist()))

    def _sims(self, q, slots):
        """q . vectors[slots], gathered in cache-sized blocks: ~30 % faster than one big
        fancy-index copy and no temporary the size of the selection."""
        if len(slots) <= _GATHER:
            return self._vecs[slots] @ q
        out = np.empty(len(slots), np.float32)
        buf = np.empty((_GATHER, self.dim), np.float32)
        for a in range(0, len(slots), _GATHER):
            b = min(a + _GATHER, len(slots))
            np.take(self._vecs, slots[a:b], axis=0, out=buf[: b - a])
            np.matmul(buf[: b - a], q, out=out[a:b])
        return out

    # -- persistence ------------------------------------------------------------------
    def save(self, directory: Path, meta: dict, extras: dict | None = None) -> None:
        """Write the index into `directory`. New files get fresh names and the manifest
        (sizes + CRC32s + meta) is replaced last, so a crash mid-save leaves the previous
        manifest and the files it names intact. Searches continue meanwhile; adds and
        removals wait for it. `extras` maps a part name to a function writing that file
        (the library's catalog): saved, checksummed and replaced with the rest."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta_json = json.loads(json.dumps(meta))  # fail before writing anything
        if self._graph_due is not None:  # a save now would drop the graph from the folder
            raise RuntimeError("the saved graph is still loading: attach_graph() first")
        with self._mutate:  # no writer can change the data; searches carry on
            token = f"index-{time.time_ns():x}-{os.getpid()}"
            files = {}
            hi = self._hi
            parts = [("vectors", self._vecs[:hi]), ("face_ids", self._ids[:hi]), ("group_ids", self._gids[:hi])]
            if self.has_owners:
                parts.append(("owners", self._owners[:hi]))
            for part, arr in parts:
                files[part] = _write_raw(directory / f"{token}.{part}", arr)
            if self._hnsw is not None:  # hnswlib's save only reads: safe beside queries
                path = directory / f"{token}.hnsw"
                self._hnsw.save_index(str(path))
                files["hnsw"] = _describe(path, fsync=True)
                if self._pending_n:
                    self._pending_np = None
                    files["pending"] = _write_raw(directory / f"{token}.pending", self._pending_view())
            for part, write in (extras or {}).items():
                path = directory / f"{token}.{part}"
                write(path)
                files[part] = _describe(path, fsync=True)
            manifest = {"format": FORMAT, "dim": self.dim, "slots": hi, "count": len(self._slot),
                        "M": self.M, "files": files, "meta": meta_json}
            with atomic_open(directory / MANIFEST) as fh:
                json.dump(manifest, fh)
            _fsync_dir(directory)
            keep = {f["name"] for f in files.values()}
            for p in directory.glob("index-*"):
                if p.name not in keep:
                    p.unlink(missing_ok=True)

    @classmethod
    def load(cls, directory: Path, dim: int = 128, *, graph_later: bool = False,
             **kwargs) -> tuple["FaceIndex", dict] | None:
        """The saved index and its meta dict, or None when missing, partial, corrupt or of another dim.
        graph_later: read only the vectors and slot arrays now (searches are exact) and
        leave the graph file to attach_graph() (a slow card: docs/storage.md, "Start-up")."""
        index = cls(dim, **kwargs)
        directory = Path(directory)
        if not (directory / MANIFEST).exists():
            return None
        try:
            loaded = index._load(directory, graph_later)
            reason = "its files do not match its manifest"
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError, MemoryError) as exc:
            loaded, reason = None, f"{type(exc).__name__}: {exc}"
        if loaded is None:
            log.warning("saved index %s is unusable (%s)", directory, reason)
        return loaded

    def _load(self, directory: Path, graph_later: bool = False):
        """Fill this fresh index from a save; None when the save does not check out."""
        dim = self.dim
        manifest = json.loads((directory / MANIFEST).read_text())
        if manifest.get("format") != FORMAT or manifest.get("dim") != dim:
            return None
        files, hi, count = manifest["files"], int(manifest["slots"]), int(manifest["count"])
        meta = manifest["meta"]
        if not isinstance(meta, dict):
            return None
        cap = hi + max(1024, hi // 8)  # headroom: the first enrolments after start-up don't copy
        vecs = np.zeros((cap, dim), np.float32)
        ids = np.zeros(cap, np.int64)
        gids = np.zeros(cap, np.int64)
        owners = np.zeros(cap, np.int64)
        parts = [("vectors", vecs[:hi]), ("face_ids", ids[:hi]), ("group_ids", gids[:hi])]
        if "owners" in files:  # saves before the owners (an older edge) load without them
            parts.append(("owners", owners[:hi]))
        for part, arr in parts:
            _read_raw(directory / files[part]["name"], arr, files[part])
        self._install(vecs, ids, gids, hi, owners)
        self.has_owners = "owners" in files
        if len(self._slot) != count or int((ids[:hi] > 0).sum()) != count:  # lost or duplicate ids
            return None
        if "hnsw" in files:
            path = directory / files["hnsw"]["name"]  # checked by _read_graph, now or after
            pending = np.empty(0, np.int64)
            if "pending" in files:
                entry = files["pending"]
                pending = np.zeros(int(entry["size"]) // 8, np.int64)
                _read_raw(directory / entry["name"], pending, entry)
                if len(pending) and not (0 <= pending.min() and pending.max() < hi):
                    return None
            if graph_later:
                self._graph_due = _GraphFile(path, files["hnsw"], pending, count, hi, dim)
                self._touched = []
                return self, meta
            h = self._read_graph(_GraphFile(path, files["hnsw"], pending, count, hi, dim), cap)
            if h is None:
                return None
            self._hnsw, self.M = h, int(h.M)
            self._defer(pending)
        elif count > self.exact_limit:
            if graph_later:
                self._start_graph()  # built by the library's builder thread; exact meanwhile
            else:
                self._build_hnsw()
        return self, meta

    @staticmethod
    def _read_graph(due: "_GraphFile", capacity: int) -> "hnswlib.Index | None":
        """The saved graph, or None when its file is not the one the manifest names or
        does not fit the save. The CRC pass reads the file first (the GIL released), so
        hnswlib's load, which holds the GIL, reads it from the page cache."""
        if _describe(due.path, chunk=_BACKGROUND_CHUNK) != due.entry:  # never hand hnswlib a corrupt file
            return None
        h = hnswlib.Index(space="ip", dim=due.dim)
        h.load_index(str(due.path), max_elements=capacity)
        if not due.count - len(due.pending) <= h.get_current_count() <= due.slots:
            return None
        return h

    @property
    def graph_loading(self) -> bool:
        """A saved graph is still to be attached (attach_graph): searches are exact until then."""
        return self._graph_due is not None

    @property
    def graph_serves(self) -> bool:
        """Searches walk the graph (it is in, and not mostly behind): the fast phase."""
        return self._hnsw is not None and self._pending_n <= SMALL_SHARE * len(self._slot)

    def attach_graph(self) -> bool:
        """Read the saved graph that load(graph_later=True) left, and let searches use it.
        Adds and removals went on meanwhile (FaceLibrary's catch-up of the changes after
        the save, enrolments): the slots they touched are reconciled as one would after a
        replay: live ones pending (searched exactly until inserted), free ones deleted
        from the graph. False when the file is unusable: the graph is then built afresh
        from the vectors (pending, exact meanwhile), never served half-read."""
        due = self._graph_due
        if due is None:
            return True
        with self._mutate:
            capacity = len(self._ids)
        try:
            h = self._read_graph(due, capacity)
            reason = "its file does not match its manifest"
        except (OSError, ValueError, RuntimeError, MemoryError) as exc:
            h, reason = None, f"{type(exc).__name__}: {exc}"
        with self._mutate, self._rw.write():
            touched = np.unique(np.concatenate(self._touched)) if self._touched else np.empty(0, np.int64)
            self._touched = None
            if h is None:
                log.warning("saved graph %s is unusable (%s): building it afresh from the vectors; searches "
                            "are exact meanwhile", due.path, reason)
                if len(self._slot) > self.exact_limit:
                    self._start_graph()
                self._graph_due = None  # last: a lock-free reader sees the pending faces first
                return False
            if len(self._ids) > h.get_max_elements():
                h.resize_index(len(self._ids))
            live = self._ids[touched] > 0
            for s in touched[~live].tolist():
                try:
                    h.mark_deleted(s)
                except RuntimeError:  # never in the graph, or already deleted
                    pass
            self._hnsw, self.M, self._ef = h, int(h.M), 0
            self._defer(due.pending)
            self._defer(touched[live])
            self._pending_np = None
            self._graph_due = None  # last, as above
            return True


def read_manifest(directory: Path) -> dict | None:
    """A saved index's manifest, or None when there is none or it does not parse."""
    try:
        manifest = json.loads((Path(directory) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def check_file(directory: Path, entry: dict) -> bool:
    """Whether a file a manifest names is there with its recorded size and CRC32."""
    try:
        return _describe(Path(directory) / entry["name"]) == entry
    except (OSError, KeyError, TypeError):
        return False


def _crc_file(path: Path, chunk: int = _CHUNK) -> tuple[int, int]:
    crc, size = 0, 0
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(path, "rb") as fh:
        while n := fh.readinto(buf):
            crc = zlib.crc32(view[:n], crc)
            size += n
    return size, crc


def _describe(path: Path, fsync: bool = False, chunk: int = _CHUNK) -> dict:
    if fsync:
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
    size, crc = _crc_file(path, chunk)
    return {"name": path.name, "size": size, "crc32": crc}


def _write_raw(path: Path, arr: np.ndarray) -> dict:
    data = memoryview(np.ascontiguousarray(arr).reshape(-1).view(np.uint8))  # empty arrays too
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return {"name": path.name, "size": data.nbytes, "crc32": zlib.crc32(data)}


def _read_raw(path: Path, out: np.ndarray, entry: dict) -> None:
    """Fill `out` from a raw file written by _write_raw, checking size and CRC32."""
    view = memoryview(out.reshape(-1).view(np.uint8))  # a view: reads land in `out`
    if entry["size"] != view.nbytes or path.stat().st_size != view.nbytes:
        raise ValueError(f"{path.name}: wrong size")
    with open(path, "rb") as fh:
        got = 0
        while got < view.nbytes and (n := fh.readinto(view[got:got + _CHUNK])):
            got += n
    if got != view.nbytes or zlib.crc32(view) != entry["crc32"]:
        raise ValueError(f"{path.name}: corrupt")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
