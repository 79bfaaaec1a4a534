"""1:N search of an app's faces in PostgreSQL through pgvector (docs/scale_search.md).

No group filter: the HNSW index (`ORDER BY embedding <#> q LIMIT k`) with ef_search
raised for k. A group filter: pgvector 0.6 applies the WHERE clause to the ef_search
rows the index scan yields, so a group that is a small part of the app would come back
short, or with faces that are not its nearest. The search therefore counts the groups'
faces first (an index-only count that stops at EXACT_GROUP_FACES + 1: bounded cost,
exact, nothing kept on the write path) and
- small groups: exact, through the btree faces_group, ordered by an expression the
  HNSW index cannot serve, so the planner cannot pick it;
- large groups: HNSW with ef_search raised by 1/fraction so that about SURVIVOR_MARGIN*k
  rows survive the filter; when fewer than k survive (or the fraction would need more
  than pgvector's ef_search limit), exact.
The survivors of a filtered index scan are the group's faces nearer than the scan's
farthest candidate, so k survivors are the group's top k (as far as the HNSW graph's
recall goes): the fallback only has to catch the short answers.

Everything runs in the caller's connection, reads only; ef_search is set with
set_config(..., is_local) in the same pipeline as the query (one round trip), inside the
caller's transaction or, on an autocommit connection, a transaction of its own.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from edge.postgres.schema import quoted

# ef_search of an unfiltered search, k below it: recall@1 >= 99 % at 1M faces of m=16
# (scripts/bench_hub.py search; the figures in docs/scale_search.md).
EF_SEARCH = 100
# pgvector's upper limit of hnsw.ef_search (0.6: 1000); an index scan yields at most that many rows.
EF_SEARCH_MAX = 1000
# Groups up to this many faces are searched exactly: an exact search of them costs about
# what a filtered HNSW scan does (bench_hub.py search: 1 % of 1M = 10k faces, exact), and
# the bounded count that decides it reads at most this many index entries.
EXACT_GROUP_FACES = 20_000
# A filtered HNSW scan asks for this many times k group faces on average (ef_search =
# margin * k / fraction): the count of survivors varies around its mean, and a short
# answer costs an exact search on top.
SURVIVOR_MARGIN = 2.0


def nearest_faces(conn, schema_name: str, query: np.ndarray, k: int,
                  group_refs: list[int] | None = None) -> list[tuple[int, int, float]]:
    """(face_ref, group_ref, cosine similarity) of the k faces nearest to a unit-length
    query, best first, within group_refs (all groups when None)."""
    s, q, k = quoted(schema_name), np.asarray(query, np.float32), int(k)
    groups = None if group_refs is None else sorted({int(g) for g in group_refs})
    if k <= 0 or groups == []:
        return []
    with _reading(conn):
        if groups is None:
            rows = _hnsw(conn, s, q, k, _ef(k, 1.0), None)
        else:
            count, total = conn.execute(
                f"SELECT (SELECT count(*) FROM (SELECT 1 FROM {s}.faces WHERE group_ref = ANY(%s) LIMIT %s) x), "
                f"(SELECT reltuples FROM pg_class WHERE oid = %s::regclass)",
                [groups, EXACT_GROUP_FACES + 1, f"{s}.faces"]).fetchone()
            if count == 0:
                return []
            ef = _ef(k, count / max(float(total), count))  # reltuples: -1 before the first ANALYZE
            if count > EXACT_GROUP_FACES and ef is not None:
                rows = _hnsw(conn, s, q, k, ef, groups)
            else:
                return _exact(conn, s, q, k, groups)
        return rows if len(rows) >= k else _exact(conn, s, q, k, groups)


def _ef(k: int, fraction: float) -> int | None:
    """ef_search for k rows passing a filter that keeps `fraction` of the faces; None when
    it would pass pgvector's limit (an exact search then)."""
    ef = max(EF_SEARCH, math.ceil(SURVIVOR_MARGIN * k / fraction) if fraction < 1 else k)
    return ef if ef <= EF_SEARCH_MAX else None


@contextlib.contextmanager
def _reading(conn):
    """The caller's transaction, or one of this search's own on an autocommit connection:
    set_config(..., true) lasts until the end of a transaction and is lost without one."""
    if conn.autocommit:
        with conn.transaction():
            yield
    else:
        yield


def _hnsw(conn, s: str, q: np.ndarray, k: int, ef: int, groups: list[int] | None) -> list[tuple[int, int, float]]:
    where, args = ("", []) if groups is None else ("WHERE group_ref = ANY(%s)", [groups])
    with conn.pipeline():
        conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(ef)])
        cur = conn.execute(f"SELECT id, group_ref, -(embedding <#> %s) FROM {s}.faces {where} "
                           f"ORDER BY embedding <#> %s LIMIT %s", [q, *args, q, k])
    return [(int(i), int(g), float(sim)) for i, g, sim in cur.fetchall()]


def _exact(conn, s: str, q: np.ndarray, k: int, groups: list[int] | None) -> list[tuple[int, int, float]]:
    """Every face of the groups (of the app when None) compared: `ORDER BY sim DESC` is not
    the index's operator form, so the planner cannot answer it from the HNSW index."""
    where, args = ("", []) if groups is None else ("WHERE group_ref = ANY(%s)", [groups])
    rows = conn.execute(f"SELECT id, group_ref, -(embedding <#> %s) AS sim FROM {s}.faces {where} "
                        f"ORDER BY sim DESC, id LIMIT %s", [q, *args, k]).fetchall()
    return [(int(i), int(g), float(sim)) for i, g, sim in rows]
