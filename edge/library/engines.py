"""Three HNSW libraries behind one small interface, for `scripts/bench_library.py --compare`.

hnswlib is what FaceIndex runs on; faiss-cpu and usearch are the usual alternatives
(the `bench` extra, never imported by the runtime). Each engine is built with the same
graph parameters as FaceIndex (M / connectivity 24, ef_construction / expansion_add
200, inner product on float32), saved, loaded, and searched one query at a time on
one thread, returning row numbers best first.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.library.index import GRAPH_EF_CONSTRUCTION as EF_CONSTRUCTION  # the graph FaceIndex builds
from edge.library.index import GRAPH_M as M


class HnswlibEngine:
    name = "hnswlib"
    suffix = ".hnsw"

    def __init__(self, dim: int):
        import hnswlib
        self._mod, self.dim, self.index = hnswlib, dim, None

    def build(self, vecs: np.ndarray, threads: int) -> None:
        self.index = self._mod.Index(space="ip", dim=self.dim)
        self.index.init_index(max_elements=len(vecs), M=M, ef_construction=EF_CONSTRUCTION, random_seed=100)
        self.index.add_items(vecs, np.arange(len(vecs)), num_threads=threads)

    def save(self, path: Path) -> None:
        self.index.save_index(str(path))

    def load(self, path: Path) -> None:
        self.index = self._mod.Index(space="ip", dim=self.dim)
        self.index.load_index(str(path))

    def set_ef(self, ef: int) -> None:
        self.index.set_ef(ef)

    def search(self, q: np.ndarray, k: int) -> np.ndarray:
        return self.index.knn_query(q, k=k, num_threads=1)[0][0]


class FaissEngine:
    name = "faiss"
    suffix = ".faiss"

    def __init__(self, dim: int):
        import faiss
        self._mod, self.dim, self.index = faiss, dim, None

    def build(self, vecs: np.ndarray, threads: int) -> None:
        faiss = self._mod
        faiss.omp_set_num_threads(threads)
        self.index = faiss.IndexHNSWFlat(self.dim, M, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = EF_CONSTRUCTION
        self.index.add(vecs)
        faiss.omp_set_num_threads(1)

    def save(self, path: Path) -> None:
        self._mod.write_index(self.index, str(path))

    def load(self, path: Path) -> None:
        self.index = self._mod.read_index(str(path))
        self._mod.omp_set_num_threads(1)

    def set_ef(self, ef: int) -> None:
        self.index.hnsw.efSearch = ef

    def search(self, q: np.ndarray, k: int) -> np.ndarray:
        return self.index.search(q[None], k)[1][0]


class UsearchEngine:
    name = "usearch"
    suffix = ".usearch"

    def __init__(self, dim: int):
        from usearch.index import Index
        self._cls, self.dim, self.index = Index, dim, None

    def _new(self):
        return self._cls(ndim=self.dim, metric="ip", dtype="f32", connectivity=M, expansion_add=EF_CONSTRUCTION)

    def build(self, vecs: np.ndarray, threads: int) -> None:
        self.index = self._new()
        self.index.add(np.arange(len(vecs)), vecs, threads=threads)

    def save(self, path: Path) -> None:
        self.index.save(str(path))

    def load(self, path: Path) -> None:
        self.index = self._new()
        self.index.load(str(path))

    def set_ef(self, ef: int) -> None:
        self.index.expansion_search = ef

    def search(self, q: np.ndarray, k: int) -> np.ndarray:
        return self.index.search(q, k, threads=1).keys


ENGINES = {e.name: e for e in (HnswlibEngine, FaissEngine, UsearchEngine)}
